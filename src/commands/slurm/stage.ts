import { HpccCommand } from '../../cli/base.js';
import { slurmMain } from '../../slurm/cli.js';

/** Hidden: behind the Slurm wrappers (src/slurm/cli.ts); bin/run.js usually runs it without oclif. */
export default class SlurmStage extends HpccCommand {
  static override hidden = true;
  static override strict = false;
  static override summary = 'Used by the Slurm wrappers (docs/slurm.md, "Wrappers").';

  async run(): Promise<void> {
    process.exitCode = await slurmMain('stage', this.argv);
  }
}
