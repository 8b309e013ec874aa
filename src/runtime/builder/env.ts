/**
 * The container environment, with Apptainer's precedence (lowest first):
 *   1. hpcc's base: PATH (default), HOME, USER, LOGNAME, PWD, TERM, LANG, PS1,
 *      HPCC_CONTAINER, HPCC_NAME
 *   2. the image's /.singularity.d/env/*.sh, sourced in lexical order
 *   3. injected: HPCCENV_K=V from the host, then --env-file, then --env
 *      (a later source wins over an earlier one)
 *   4. PREPEND_PATH / APPEND_PATH (from any injected source) around PATH
 *   5. unless --cleanenv: host variables the steps above left unset.
 *      Never imported from the host: PATH, LD_LIBRARY_PATH, LD_PRELOAD, HOME,
 *      PWD, OLDPWD, SHLVL, PS1, _, HPCCENV_*, and names that are not shell
 *      identifiers.
 * Steps 2–5 run inside the container (actions.ts's sh wrapper), since only
 * the image's own shell can evaluate its scripts; this module computes the
 * data, and the static view for --explain-env.
 */
import * as path from 'node:path';
import { UsageError } from '../../errors/index.js';
import type { BuildInput } from './types.js';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const NEVER_IMPORTED = new Set(['PATH', 'LD_LIBRARY_PATH', 'LD_PRELOAD', 'HOME', 'PWD', 'OLDPWD', 'SHLVL', 'PS1', '_']);
const KEPT_FROM_HOST = ['TERM', 'LANG'];

export interface EnvVar {
  name: string;
  value: string;
  /** where it came from: "hpcc", "host", "HPCCENV_X", "--env", "--env-file FILE:LINE", "image env/NN.sh" */
  source: string;
}

export interface EnvPlan {
  /** step 1 */
  base: EnvVar[];
  /** step 3, in application order (later wins) */
  inject: EnvVar[];
  /** step 4 */
  prependPath: EnvVar | null;
  appendPath: EnvVar | null;
  /** step 5: host variables restored when still unset */
  restore: EnvVar[];
}

export function isEnvName(n: string): boolean {
  return NAME_RE.test(n);
}

/** Parse an --env-file: KEY=VALUE lines, `export ` prefix, '#' comments, optional single or double quotes. */
export function parseEnvFile(text: string, file: string): EnvVar[] {
  const out: EnvVar[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    let line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    if (line.startsWith('export ')) line = line.slice(7).trim();
    const eq = line.indexOf('=');
    const name = eq < 0 ? line : line.slice(0, eq);
    if (eq < 0 || !isEnvName(name)) {
      throw new UsageError(`--env-file ${file}:${i + 1}: expected NAME=VALUE, got "${raw.slice(0, 80)}"`, {
        hint: 'Each line of an env file is NAME=VALUE (optionally quoted, optionally prefixed by "export "); # starts a comment.',
      });
    }
    let value = line.slice(eq + 1);
    const q = value[0];
    if ((q === '"' || q === "'") && value.length >= 2 && value.endsWith(q)) value = value.slice(1, -1);
    out.push({ name, value, source: `--env-file ${file}:${i + 1}` });
  });
  return out;
}

/** Parse one --env K=V. */
export function parseEnvFlag(item: string): EnvVar {
  const eq = item.indexOf('=');
  const name = eq < 0 ? item : item.slice(0, eq);
  if (eq < 0 || !isEnvName(name)) {
    throw new UsageError(`--env: expected NAME=VALUE, got "${item.slice(0, 80)}"`, { hint: 'Write --env NAME=VALUE (repeat --env for several variables).' });
  }
  return { name, value: item.slice(eq + 1), source: '--env' };
}

export function planEnv(input: BuildInput, homeDst: string, cwd: string): EnvPlan {
  const { host, flags, config, image } = input;
  const hostEnv = host.env;
  const base: EnvVar[] = [{ name: 'PATH', value: DEFAULT_PATH, source: 'hpcc' }];
  base.push({ name: 'HOME', value: homeDst, source: 'hpcc' });
  if (host.user) {
    base.push({ name: 'USER', value: host.user.name, source: 'hpcc' });
    base.push({ name: 'LOGNAME', value: host.user.name, source: 'hpcc' });
  }
  base.push({ name: 'PWD', value: cwd, source: 'hpcc' });
  for (const k of KEPT_FROM_HOST) {
    const v = hostEnv[k];
    if (v !== undefined) base.push({ name: k, value: v, source: 'host (always kept)' });
  }
  base.push({ name: 'PS1', value: 'hpcc> ', source: 'hpcc' });
  base.push({ name: 'HPCC_CONTAINER', value: image.path, source: 'hpcc' });
  base.push({ name: 'HPCC_NAME', value: path.posix.basename(image.path), source: 'hpcc' });

  const injected: EnvVar[] = [];
  for (const k of Object.keys(hostEnv).sort()) {
    if (!k.startsWith('HPCCENV_')) continue;
    const name = k.slice('HPCCENV_'.length);
    if (!isEnvName(name)) continue;
    injected.push({ name, value: hostEnv[k]!, source: k });
  }
  for (const f of flags.envFiles ?? []) injected.push(...parseEnvFile(f.text, f.path));
  for (const e of flags.env ?? []) injected.push(parseEnvFlag(e));

  let prependPath: EnvVar | null = null;
  let appendPath: EnvVar | null = null;
  const inject: EnvVar[] = [];
  for (const v of injected) {
    if (v.name === 'PREPEND_PATH') prependPath = v;
    else if (v.name === 'APPEND_PATH') appendPath = v;
    else inject.push(v);
  }

  const restore: EnvVar[] = [];
  const cleanEnv = Boolean(flags.cleanEnv || flags.containAll || config.cleanEnv);
  if (!cleanEnv) {
    const taken = new Set([...base.map((b) => b.name), ...KEPT_FROM_HOST]);
    for (const k of Object.keys(hostEnv).sort()) {
      if (!isEnvName(k) || NEVER_IMPORTED.has(k) || k.startsWith('HPCCENV_') || taken.has(k)) continue;
      restore.push({ name: k, value: hostEnv[k]!, source: 'host' });
    }
  }
  return { base, inject, prependPath, appendPath, restore };
}

/** Join PATH with PREPEND_PATH/APPEND_PATH (empty parts dropped). */
export function applyPathEdits(pathValue: string | undefined, pre: string | undefined, app: string | undefined): string {
  return [pre, pathValue, app].filter((p): p is string => p !== undefined && p !== '').join(':');
}

/**
 * The environment as it would be without running image scripts (images with
 * no /bin/sh are launched this way): steps 1, 3, 4, 5 in order.
 */
export function finalEnvWithoutScripts(e: EnvPlan): Map<string, EnvVar> {
  const m = new Map<string, EnvVar>();
  for (const v of e.base) m.set(v.name, v);
  for (const v of e.inject) m.set(v.name, v);
  if (e.prependPath || e.appendPath) {
    const cur = m.get('PATH');
    m.set('PATH', {
      name: 'PATH',
      value: applyPathEdits(cur?.value, e.prependPath?.value, e.appendPath?.value),
      source: [cur?.source, e.prependPath?.source, e.appendPath?.source].filter(Boolean).join(' + '),
    });
  }
  for (const v of e.restore) if (!m.has(v.name)) m.set(v.name, v);
  return m;
}

/**
 * Static scan of an env script for `export NAME=...` / `NAME=...` lines
 * (best effort: scripts may compute values; the explanation says so).
 */
export function scanEnvScript(text: string): { name: string; expr: string }[] {
  const out: { name: string; expr: string }[] = [];
  for (const raw of text.split('\n')) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(raw);
    if (m) out.push({ name: m[1]!, expr: m[2]!.trim() });
  }
  return out;
}
