import { HpccCommand } from '../../cli/base.js';
import { slurmMain } from '../../slurm/cli.js';

/** Hidden: behind the Slurm wrappers (src/slurm/cli.ts); bin/run.js usually runs it without oclif. */
export default class SlurmUnstage extends HpccCommand {
  static override hidden = true;
  static override strict = false;
  static override summary = 'Remove the staged images of this job on this node (end of an hpcc-sbatch job).';
  static override description = 'Used by the Slurm wrappers; see docs/slurm.md, "Wrappers".';
  static override usage = 'BASE JOBID';

  async run(): Promise<void> {
    process.exitCode = await slurmMain('unstage', this.argv);
  }
}
