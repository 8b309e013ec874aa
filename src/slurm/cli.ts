/**
 * `hpcc slurm sbatch|srun|mpirun|stage|unstage ARGS`: the hidden commands behind the
 * Slurm wrappers (slurm/hpcc-sbatch, slurm/hpcc-srun, slurm/hpcc-mpirun, slurm/hpcc-srun-entry;
 * docs/slurm.md, "Wrappers"). bin/run.js calls slurmMain() directly, without
 * loading oclif (hpcc-srun starts every job step); the oclif commands in
 * src/commands/slurm/ call it too. Arguments are passed through untouched:
 * the wrappers' command lines are parsed by src/slurm/args.ts alone.
 */
import { SlurmError, reportError } from '../errors/index.js';

export const SLURM_SUBCOMMANDS = Object.freeze(['sbatch', 'srun', 'mpirun', 'stage', 'unstage'] as const);

async function dispatch(sub: string | undefined, argv: string[], memoOut?: string): Promise<number> {
  switch (sub) {
    case 'sbatch':
      return (await import('./sbatch.js')).sbatchMain(argv);
    case 'srun':
      return (await import('./srun.js')).srunMain(argv, 'srun', memoOut);
    case 'mpirun':
      return (await import('./srun.js')).srunMain(argv, 'mpirun', memoOut);
    case 'stage':
      return (await import('./stage.js')).stageCommand(argv);
    case 'unstage': {
      const { unstage } = await import('./stage.js');
      unstage(argv[0] ?? '', argv[1] ?? '');
      return 0;
    }
    default:
      throw new SlurmError('HPCC_E_SLURM_ARGS', `hpcc slurm ${sub ?? ''}: not a command (${SLURM_SUBCOMMANDS.join(', ')})`, {
        exitCode: 2,
        hint: 'These commands are run by the wrappers slurm/hpcc-sbatch and slurm/hpcc-srun; run those.',
      });
  }
}

/**
 * Run `hpcc slurm SUB ARGS`; errors are rendered here. Returns the exit status.
 * `memoOut`: where srun/mpirun write their command memo (HPCC_MEMO_OUT from native/front).
 */
export async function slurmMain(sub: string | undefined, argv: string[], memoOut?: string): Promise<number> {
  try {
    return await dispatch(sub, argv, memoOut && memoOut.startsWith('/') ? memoOut : undefined);
  } catch (e) {
    reportError(e, false);
    return typeof process.exitCode === 'number' ? process.exitCode : 70;
  }
}
