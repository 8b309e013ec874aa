/**
 * `hpcc exec|run|shell|test`: gather facts (config, host, image), build the
 * plan with the pure builder, then run it with the C helper, write it to a
 * file (--plan-out), or explain the environment (--explain-env).
 * Orchestration only: decisions live in src/runtime/builder/.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { addContext, UsageError } from '../errors/index.js';
import { buildLaunch, type BuiltLaunch } from '../runtime/builder/build.js';
import { loadConfig } from '../runtime/builder/config.js';
import { explainEnv, renderExplanation, type EnvExplanation } from '../runtime/builder/explain.js';
import { gatherHostFacts } from '../runtime/builder/facts.js';
import { isContained, workdirPaths } from '../runtime/builder/binds.js';
import type { LaunchConfig, LaunchFlags } from '../runtime/builder/types.js';
import { encodeMemo, hostEnvPassesThrough, MemoFacts, memoFileFor, processKey, stageMemo, withoutHostValues, type StagedMemo } from '../runtime/memo.js';
import type { LaunchPlan } from '../runtime/plan.js';
import { helperTimings, sinceProcessStart, Timings } from '../runtime/timings.js';
import { readImageFacts } from './image-facts.js';

export interface LaunchRequest {
  image: string;
  flags: LaunchFlags;
  /** env files named by --env-file (read here) */
  envFilePaths?: string[];
  /** write the plan to this file instead of running it */
  planOut?: string;
  /** print where each variable comes from instead of running */
  explainEnv?: boolean;
  /** run from an extraction of the image in the cache instead of a squashfuse mount */
  unsquash?: boolean;
  /**
   * Write a launch memo after a launch whose setup succeeds (native front;
   * src/runtime/memo.ts): `file` from HPCC_MEMO_OUT, `argv` the key's
   * arguments (the action and the arguments after it, for exec up to the image).
   */
  memo?: { file: string; argv: string[] };
  /** --timings: the phases are printed on stderr (one JSON line when `json`) */
  timings?: { json: boolean };
}

export type LaunchOutcome =
  | { kind: 'exited'; status: number }
  | { kind: 'plan-written'; path: string }
  | { kind: 'explained'; rows: EnvExplanation[]; text: string };

function readEnvFiles(paths: string[], rec?: MemoFacts): { path: string; text: string }[] {
  return paths.map((p) => {
    rec?.id(path.resolve(p));
    try {
      return { path: p, text: fs.readFileSync(p, 'utf8') };
    } catch (e) {
      throw addContext(`read --env-file ${p}`, e);
    }
  });
}

/** -W/--workdir: its tmp/ and var_tmp/ (and home/ with --contain) exist before the plan is built (0700, yours). */
function makeWorkdir(flags: LaunchFlags, config: LaunchConfig): void {
  const wd = workdirPaths(flags.workdir!, process.cwd());
  for (const d of [wd.tmp, wd.varTmp, ...(isContained(flags, config) ? [wd.home] : [])]) {
    try {
      fs.mkdirSync(d, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw addContext(`create the --workdir directory ${d}`, e);
    }
  }
}

/**
 * The SIF to run: a path as given, or for a docker:// reference the SIF
 * converted once into the cache (keyed by manifest digest) and reused.
 * The OCI modules load only for references, keeping the common path lean.
 */
async function resolveImageArg(arg: string): Promise<string> {
  if (/^docker:\/\//.test(arg)) {
    const { runImageRef } = await import('./pull.js');
    const r = await runImageRef(arg, {});
    if (r.built) process.stderr.write(`Converted ${arg} into ${r.path}\n`);
    return r.path;
  }
  if (/^(oci|oci-archive|docker-archive):/.test(arg)) {
    throw new UsageError(`${arg}: run local OCI images after converting them`, {
      hint: `hpcc build image.sif ${arg} && hpcc exec image.sif …`,
    });
  }
  return path.resolve(arg);
}

/** Facts + builder: the plan and the decisions behind it. */
export async function prepareLaunch(req: LaunchRequest, rec?: MemoFacts): Promise<{ built: BuiltLaunch; rows?: EnvExplanation[] }> {
  if (/^[a-z-]+:/.test(req.image)) rec?.spoil('the image is a reference, not a file');
  const image = await resolveImageArg(req.image);
  let st: fs.BigIntStats;
  try {
    rec?.id(image);
    st = fs.statSync(image, { bigint: true });
  } catch (e) {
    throw addContext(`open image ${req.image}`, e);
  }
  if (st.isDirectory()) {
    throw new UsageError(`${req.image} is a directory; hpcc runs SIF images`, { hint: `Pack it first: hpcc build image.sif ${req.image}` });
  }
  const config = loadConfig(process.env, rec);
  if (config.memo === false) rec?.spoil('[launch] memo = no');
  const flags: LaunchFlags = { ...req.flags };
  if (req.envFilePaths && req.envFilePaths.length > 0) flags.envFiles = [...(flags.envFiles ?? []), ...readEnvFiles(req.envFilePaths, rec)];
  if (flags.workdir !== undefined) makeWorkdir(flags, config);
  const host = gatherHostFacts(config, process.env, rec);
  if (flags.nv || flags.rocm) {
    const { findGpu } = await import('../runtime/builder/gpu-facts.js');
    const { VENDORS } = await import('../runtime/builder/gpu.js');
    const vendors = [...(flags.nv ? (['nvidia'] as const) : []), ...(flags.rocm ? (['amd'] as const) : [])];
    const found = findGpu(vendors, process.env, config, rec);
    host.gpu = found.gpu;
    for (const v of found.missing) {
      rec?.spoil(`${VENDORS[v].flag} found no driver (so that every such launch says so)`);
      process.stderr.write(
        `hpcc: warning: ${VENDORS[v].flag}: no ${v === 'nvidia' ? 'NVIDIA' : 'ROCm'} driver libraries found on this host (ldconfig -p, [gpu] libdirs); the container runs without them\n`,
      );
    }
  }
  const img = await readImageFacts(image, Boolean(req.explainEnv));
  img.facts.identity = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  try {
    // Extraction fallback: no squashfuse here, or --unsquash (a plan file only records the choice).
    if ((req.unsquash || !host.fuseHelper) && !req.explainEnv) {
      rec?.spoil('the root is an extraction in the cache');
      const { extractedRoot } = await import('./extract-cache.js');
      img.facts.rootDir = await extractedRoot(img.image, image, (m) => process.stderr.write(`${m}\n`));
    }
    const built = buildLaunch({ image: img.facts, host, flags, config });
    for (const s of built.skipped) {
      if (!s.symlink || req.explainEnv) continue;
      rec?.spoil('an image symlink left a default mount out (so that every such launch says so)');
      process.stderr.write(`hpcc: warning: ${s.dst} left out: ${s.reason}\n`);
    }
    if (rec) {
      // Run by launch() while the helper starts. The image is closed by then: the rebuild's
      // image look-ups are the first build's, answered from the facts' cache (a look-up the
      // first build did not make throws, and no memo is written).
      const plan = built.plan as LaunchPlan;
      rec.planToStore = () => {
        const why = hostEnvPassesThrough(plan, host.env, (env) => buildLaunch({ image: img.facts, host: { ...host, env }, flags, config }).plan as LaunchPlan);
        if (why) rec.spoil(why);
        return why ? null : withoutHostValues(plan, host.env);
      };
    }
    return req.explainEnv ? { built, rows: explainEnv(built, img.facts) } : { built };
  } finally {
    await img.close();
  }
}

export async function launch(req: LaunchRequest): Promise<LaunchOutcome> {
  if (!req.timings) return launchTimed(req);
  const t = new Timings();
  t.add('start', sinceProcessStart());
  try {
    return await launchTimed(req, { t, json: req.timings.json });
  } finally {
    t.print(req.timings.json); // a setup failure, --plan-out, --explain-env: the phases so far
  }
}

async function launchTimed(req: LaunchRequest, tm?: { t: Timings; json: boolean }): Promise<LaunchOutcome> {
  const rec = req.memo && !req.planOut && !req.explainEnv ? new MemoFacts() : undefined;
  const { built, rows } = await prepareLaunch(req, rec);
  tm?.t.mark('plan');
  if (rows) return { kind: 'explained', rows, text: renderExplanation(rows) };
  if (req.planOut) {
    const { writePlanFile } = await import('../runtime/plan-file.js');
    await writePlanFile(req.planOut, built.plan as LaunchPlan);
    tm?.t.mark('write');
    return { kind: 'plan-written', path: req.planOut };
  }
  const { startLaunch, findLaunchHelper } = await import('../runtime/spawn.js');
  const spawnedAt = process.hrtime.bigint();
  const running = startLaunch(built.plan as LaunchPlan, tm ? { onStatusLine: helperTimings(tm.t, spawnedAt, tm.json) } : {});
  // The memo is made while the helper sets the container up, and put in place only when that succeeded.
  const memo = rec && req.memo ? stagedMemoFor(rec, req.memo.file, processKey(req.memo.argv, findLaunchHelper())) : null;
  let status: number;
  try {
    status = await running.result;
  } catch (e) {
    memo?.discard();
    throw e;
  }
  memo?.commit();
  return { kind: 'exited', status };
}

/** The memo of a prepared launch under `key` (processKey), staged beside `file`; null when none may be written. */
function stagedMemoFor(rec: MemoFacts, file: string, key: Buffer | null): StagedMemo | null {
  const stored = !rec.spoiled && rec.planToStore ? rec.planToStore() : null;
  if (rec.spoiled && process.env.HPCC_DEBUG) process.stderr.write(`hpcc: no launch memo: ${rec.spoiled}\n`);
  if (!stored) return null;
  const bytes = key && encodeMemo(key, rec, stored);
  return bytes ? stageMemo(file, bytes) : null;
}

/**
 * Write the launch memo the native front would look for when this process's
 * environment and working directory run `hpcc ACTION ARGV`, without launching:
 * hpcc-srun's staging rank (src/slurm/stage.ts) plans once for the ranks of its
 * node, which then all start from the memo. The same plan and facts as a
 * launch's memo, put in place without a launch having succeeded first: a plan
 * that then fails in setup sends the ranks to Node (HPCC_MEMO_RETRY), which
 * reports why and removes the memo. Best effort: returns why no memo was
 * written, or null.
 */
export async function writeLaunchMemo(action: 'exec' | 'run' | 'shell' | 'test', argv: string[]): Promise<string | null> {
  if (process.env.HPCC_MEMO === '0') return 'HPCC_MEMO=0';
  const { parseFast, launchRequest, checkPayload } = await import('../cli/fast-launch.js');
  const { unmemoisable } = await import('../cli/launch-options.js');
  const p = parseFast(argv);
  if (!p) return 'the command line is not one the front parses';
  const no = unmemoisable(p);
  if (no) return `--${no.name} takes no memo`;
  checkPayload(action, p);
  const keyArgv = [action, ...(action === 'exec' ? argv.slice(0, argv.length - p.rest.length) : argv)];
  const { findLaunchHelper } = await import('../runtime/spawn.js');
  const key = processKey(keyArgv, findLaunchHelper());
  if (!key) return 'no key (a credential in the environment, or an install file missing)';
  const rec = new MemoFacts();
  await prepareLaunch(launchRequest(action, p), rec);
  const staged = stagedMemoFor(rec, memoFileFor(key), key);
  if (!staged) return rec.spoiled ?? 'the memo could not be staged';
  return staged.commit() ? null : 'the memo could not be put in place';
}
