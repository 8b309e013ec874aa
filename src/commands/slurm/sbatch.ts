import { HpccCommand } from '../../cli/base.js';
import { slurmMain } from '../../slurm/cli.js';

/** Hidden: behind the Slurm wrappers (src/slurm/cli.ts); bin/run.js usually runs it without oclif. */
export default class SlurmSbatch extends HpccCommand {
  static override hidden = true;
  static override strict = false;
  static override summary = 'Pin the image on the login node, then submit SCRIPT (slurm/hpcc-sbatch).';
  static override description = 'Used by the Slurm wrappers; see docs/slurm.md, "Wrappers".';
  static override usage = '[sbatch options] [--image REF [hpcc launch options]] [sbatch options] SCRIPT [ARGS]';

  async run(): Promise<void> {
    process.exitCode = await slurmMain('sbatch', this.argv);
  }
}
