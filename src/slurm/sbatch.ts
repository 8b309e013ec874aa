/**
 * `hpcc slurm sbatch` (slurm/hpcc-sbatch): pin the job's image on the login
 * node, then submit.
 *
 *  1. The command line (src/slurm/args.ts) and the script's `#HPCC` lines give
 *     the image and hpcc options (the command line's image wins, options add up).
 *  2. The image is pinned (src/slurm/pin.ts): a reference resolved and
 *     converted once into the cache, a SIF checked and hashed. Any failure
 *     stops here: sbatch is not run.
 *  3. The pin goes into sbatch's environment (HPCC_JOB_*), and into its
 *     --export list when the user gave one (names only; NONE becomes the list
 *     of the pin's names plus --get-user-env, which NONE implies).
 *  4. sbatch gets, on its standard input, a batch script that carries the
 *     user's `#SBATCH` lines, the user's script (embedded, so the job runs the
 *     script as it was at submission, as sbatch does) and, after it, one step
 *     on each node of the job that removes the job's staged images
 *     (`hpcc slurm unstage`). With --wrap there is no script to wrap: the
 *     command is submitted as given, and only the next staging's garbage
 *     collection removes the job's staged images.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SlurmError, addContext } from '../errors/index.js';
import { mergeBlocks, parseSbatchArgs, scriptHpccLines } from './args.js';
import { PIN_ENV, pinImage, pinToEnv } from './pin.js';
import { entryPath, frontPath } from './srun.js';

/** sbatch's --export after the pin's names are added (undefined: leave it as it is, ALL). */
export function mergeExport(value: string): string {
  const names = Object.values(PIN_ENV);
  const items = value.split(',');
  if (items[0] === 'ALL') return value;
  if (value === 'NONE') return names.join(',');
  return [...items, ...names].join(',');
}

/** The Slurm words with --export merged (and SBATCH_EXPORT, when the command line has none). */
function withExport(slurm: string[], env: NodeJS.ProcessEnv): { slurm: string[]; env: NodeJS.ProcessEnv } {
  const out = [...slurm];
  let found = false;
  let none = false;
  for (let i = 0; i < out.length; i++) {
    const w = out[i]!;
    if (w.startsWith('--export=')) {
      none ||= w === '--export=NONE';
      out[i] = `--export=${mergeExport(w.slice('--export='.length))}`;
      found = true;
    } else if (w === '--export' && i + 1 < out.length) {
      none ||= out[i + 1] === 'NONE';
      out[i + 1] = mergeExport(out[i + 1]!);
      found = true;
    }
  }
  const e = { ...env };
  if (!found && e.SBATCH_EXPORT !== undefined) {
    none = e.SBATCH_EXPORT === 'NONE';
    e.SBATCH_EXPORT = mergeExport(e.SBATCH_EXPORT);
  }
  if (none && !out.some((w) => w === '--get-user-env' || w.startsWith('--get-user-env='))) out.push('--get-user-env');
  return { slurm: out, env: e };
}

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The batch script sbatch gets: the user's #SBATCH lines, their script embedded, then the clean-up step. */
export function wrapperScript(script: string, scriptName: string, args: string[], front: string, entry: string): string {
  const sbatchLines: string[] = [];
  for (const line of script.split('\n').slice(script.startsWith('#!') ? 1 : 0)) {
    const t = line.trim();
    if (t !== '' && !t.startsWith('#')) break;
    if (/^#SBATCH(\s|$)/.test(t)) sbatchLines.push(line);
  }
  const b64 = Buffer.from(script).toString('base64').replace(/(.{76})/g, '$1\n');
  return `#!/bin/sh
${sbatchLines.join('\n')}
# Written by hpcc-sbatch (docs/slurm.md, "Wrappers"): runs ${scriptName.replace(/\n/g, ' ')} as it was at
# submission, then removes the job's staged images on each node of the job.
# Its interpreter reads it (as the kernel would start it: "#!" line, else /bin/sh), so a
# noexec $TMPDIR does not matter.
d=$(mktemp -d "\${TMPDIR:-/tmp}/hpcc-job-script.XXXXXX") || exit 1
f="$d/${path.basename(scriptName).replace(/[^A-Za-z0-9._-]/g, '_') || 'script'}"
base64 -d >"$f" <<'HPCC_SCRIPT_END'
${b64}
HPCC_SCRIPT_END
read -r first <"$f"
case $first in
'#!'*) interp=\${first#??} ;;
*) interp=/bin/sh ;;
esac
$interp "$f" ${args.map(shq).join(' ')}
rc=$?
rm -rf "$d"
srun --ntasks-per-node=1 --nodes="$SLURM_JOB_NUM_NODES" --ntasks="$SLURM_JOB_NUM_NODES" --overlap --mpi=none --cpu-bind=none \\
  ${shq(entry)} --unstage ${shq(front)} ${process.getuid!()} >/dev/null 2>&1
exit $rc
`;
}

function hasJobName(slurm: string[], script: string, env: NodeJS.ProcessEnv): boolean {
  if (env.SBATCH_JOB_NAME) return true;
  if (slurm.some((w) => w === '-J' || /^-J./.test(w) || w === '--job-name' || w.startsWith('--job-name='))) return true;
  return /^#SBATCH\s+(-J|--job-name)/m.test(script);
}

/** Run hpcc-sbatch; returns sbatch's exit status. */
export async function sbatchMain(argv: string[]): Promise<number> {
  const a = parseSbatchArgs(argv);
  const scriptFile = a.rest[0];
  let script: string | undefined;
  if (scriptFile !== undefined) {
    try {
      script = fs.readFileSync(scriptFile, 'utf8');
    } catch (e) {
      throw addContext(`read the batch script ${scriptFile}`, e);
    }
  }
  const block = mergeBlocks(script !== undefined ? scriptHpccLines(script) : { options: [] }, a);
  if (block.image === undefined) {
    throw new SlurmError('HPCC_E_SLURM_NO_IMAGE', 'no image for the job', {
      exitCode: 2,
      hint: 'Give --image docker://NAME[:TAG] (or --image FILE.sif) before the script, or an "#HPCC --image=REF" line in it.',
    });
  }
  const pin = await pinImage(block.image, block.options);
  const { slurm, env } = withExport(a.slurm, { ...process.env, ...pinToEnv(pin) });
  const sbatchArgs = [...slurm];
  let input: string | undefined;
  if (script !== undefined) {
    if (!hasJobName(slurm, script, env)) sbatchArgs.push(`--job-name=${path.basename(scriptFile!)}`);
    input = wrapperScript(script, scriptFile!, a.rest.slice(1), frontPath(), entryPath());
  }
  const r = spawnSync('sbatch', sbatchArgs, { env, input, stdio: [input === undefined ? 'inherit' : 'pipe', 'inherit', 'inherit'] });
  if (r.error) {
    throw new SlurmError('HPCC_E_SLURM_TOOL', `cannot run sbatch: ${r.error.message}`, { cause: r.error, hint: "Run hpcc-sbatch where Slurm's sbatch is on PATH (a login node)." });
  }
  return r.status ?? 128 + 15;
}
