import { HpccCommand } from '../../cli/base.js';
import { slurmMain } from '../../slurm/cli.js';

/** Hidden: behind the Slurm wrappers (src/slurm/cli.ts); bin/run.js usually runs it without oclif. */
export default class SlurmSrun extends HpccCommand {
  static override hidden = true;
  static override strict = false;
  static override summary = 'Run a job step from the pinned image, staged per node (slurm/hpcc-srun).';
  static override description = 'Used by the Slurm wrappers; see docs/slurm.md, "Wrappers".';
  static override usage = '[srun options] [--image REF [hpcc launch options]] [srun options] -- COMMAND [ARGS]';

  async run(): Promise<void> {
    process.exitCode = await slurmMain('srun', this.argv);
  }
}
