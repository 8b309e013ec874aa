import { HpccCommand } from '../../cli/base.js';
import { slurmMain } from '../../slurm/cli.js';

/** Hidden: behind the Slurm wrappers (src/slurm/cli.ts); bin/run.js usually runs it without oclif. */
export default class SlurmMpirun extends HpccCommand {
  static override hidden = true;
  static override strict = false;
  static override summary = 'Like hpcc-srun, with mpirun starting the ranks (slurm/hpcc-mpirun).';
  static override description = 'Used by the Slurm wrappers; see docs/slurm.md, "Wrappers".';
  static override usage = '[mpirun options] [--image REF [hpcc launch options]] [mpirun options] -- COMMAND [ARGS]';

  async run(): Promise<void> {
    process.exitCode = await slurmMain('mpirun', this.argv);
  }
}
