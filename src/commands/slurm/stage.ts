import { HpccCommand } from '../../cli/base.js';
import { slurmMain } from '../../slurm/cli.js';

/** Hidden: behind the Slurm wrappers (src/slurm/cli.ts); bin/run.js usually runs it without oclif. */
export default class SlurmStage extends HpccCommand {
  static override hidden = true;
  static override strict = false;
  static override summary = 'Stage the pinned image on this node (run by slurm/hpcc-srun-entry).';
  static override description = 'Used by the Slurm wrappers; see docs/slurm.md, "Wrappers".';
  static override usage = 'BASE JOBID IMAGE SHA256 SIZE';

  async run(): Promise<void> {
    process.exitCode = await slurmMain('stage', this.argv);
  }
}
