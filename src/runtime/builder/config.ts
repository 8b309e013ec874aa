/**
 * Site and user configuration: ini files read in order, later files win:
 *   /etc/hpcc/hpcc.conf            (site)
 *   $XDG_CONFIG_HOME/hpcc/hpcc.conf (user; ~/.config when unset)
 * HPCC_CONFIG=FILE replaces both (tests, experiments). Keys:
 *
 *   [bind]
 *   path = /opt/site,/data:/data:ro    ; comma list, or repeat as path[] = ...
 *   [mount]
 *   home = true   cwd = true   tmp = true   dev = true   proc = true   sys = true
 *   scratch = true   hosts = true   localtime = true   resolv = true   passwd = true
 *   rdma = true (rdma.ts)
 *   [launch]
 *   contain = false   cleanenv = false
 *   squashfuse = /usr/bin/squashfuse_ll   tmpdir = /tmp
 *   overlay = auto                     ; auto | kernel | fuse | skeleton | none
 *   memo = yes                         ; launch memos for the native front (docs/launcher.md)
 *   warm = 300                         ; seconds a warm mount stays unused (0 = none; HPCC_WARM_IDLE wins)
 *   [gpu]
 *   libdirs = /opt/nvidia/lib64        ; --nv: driver libraries outside the loader's cache (comma list)
 *
 * Bind paths accumulate across files; toggles and defaults are overridden.
 * parseConfig/mergeConfig are pure; loadConfig reads the files.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import type * as Ini from 'ini';
import { UsageError } from '../../errors/index.js';
import type { FactRecorder } from '../memo.js';
import { OVERLAY_MODES, type LaunchConfig, type OverlayMode } from './types.js';

export const SITE_CONFIG = '/etc/hpcc/hpcc.conf';

// `ini` is loaded only when a config file exists (most launches read none; start-up matters).
const requireCjs = createRequire(import.meta.url);
function parseIni(text: string): Record<string, unknown> {
  return (requireCjs('ini') as typeof Ini).parse(text) as Record<string, unknown>;
}

export function defaultConfig(): LaunchConfig {
  return {
    bindPaths: [],
    mount: { home: true, cwd: true, tmp: true, dev: true, proc: true, sys: true, scratch: true, rdma: true, hosts: true, localtime: true, resolv: true, passwd: true },
    contain: false,
    cleanEnv: false,
  };
}

/** One file's settings; absent keys stay undefined. */
export interface PartialConfig {
  bindPaths: string[];
  mount: Partial<LaunchConfig['mount']>;
  contain?: boolean;
  cleanEnv?: boolean;
  squashfuse?: string;
  tmpdir?: string;
  overlay?: OverlayMode;
  memo?: boolean;
  warm?: number;
  gpuLibDirs?: string[];
}

/** An overlay mode from config or HPCC_OVERLAY; `where` names the source in the error. */
export function parseOverlayMode(v: unknown, where: string): OverlayMode {
  const s = String(v).trim().toLowerCase();
  if ((OVERLAY_MODES as readonly string[]).includes(s)) return s as OverlayMode;
  throw new UsageError(`${where}: unknown overlay mode "${String(v)}"`, { hint: `Use one of: ${OVERLAY_MODES.join(', ')}.` });
}

/** Seconds a warm mount's keeper may stay unused: 0 (no warm mounts) to 604800 (a week); `where` names the source. */
export function parseWarmIdle(v: unknown, where: string): number {
  const s = String(v).trim();
  if (/^(0|[1-9][0-9]{0,5})$/.test(s) && Number(s) <= 604800) return Number(s);
  throw new UsageError(`${where}: "${String(v)}" is not a number of seconds`, { hint: 'Give 0 (no warm mounts) up to 604800 seconds, e.g. 300.' });
}

function bool(v: unknown, where: string): boolean {
  if (v === true || v === false) return v;
  const s = String(v).trim().toLowerCase();
  if (['yes', 'true', '1', 'on'].includes(s)) return true;
  if (['no', 'false', '0', 'off'].includes(s)) return false;
  throw new UsageError(`${where}: expected yes/no, got "${String(v)}"`, { hint: 'Boolean settings are yes/no (or true/false, on/off, 1/0).' });
}

function section(o: Record<string, unknown>, name: string): Record<string, unknown> {
  const s = o[name];
  return s && typeof s === 'object' && !Array.isArray(s) ? (s as Record<string, unknown>) : {};
}

/** A list setting: comma lists, or the key repeated (key[] = ...); empty items dropped. */
function listValue(v: unknown): string[] {
  return (Array.isArray(v) ? v : [v]).flatMap((item) => String(item).split(',').map((x) => x.trim())).filter((x) => x !== '');
}

/** Parse one config file's text. `file` names it in errors. */
export function parseConfig(text: string, file: string): PartialConfig {
  let o: Record<string, unknown>;
  try {
    o = parseIni(text);
  } catch (e) {
    throw new UsageError(`config ${file}: cannot parse`, { cause: e, hint: 'Check the ini syntax of the file.' });
  }
  const out: PartialConfig = { bindPaths: [], mount: {} };
  const bind = section(o, 'bind');
  for (const k of ['path', 'paths']) {
    const v = bind[k];
    if (v === undefined) continue;
    out.bindPaths.push(...listValue(v));
  }
  const mount = section(o, 'mount');
  const known = Object.keys(defaultConfig().mount) as (keyof LaunchConfig['mount'])[];
  for (const k of Object.keys(mount)) {
    if (!(known as string[]).includes(k)) {
      throw new UsageError(`config ${file}: unknown key [mount] ${k}`, { hint: `Known [mount] keys: ${known.join(', ')}.` });
    }
    out.mount[k as keyof LaunchConfig['mount']] = bool(mount[k], `config ${file} [mount] ${k}`);
  }
  const launch = section(o, 'launch');
  if (launch.contain !== undefined) out.contain = bool(launch.contain, `config ${file} [launch] contain`);
  if (launch.cleanenv !== undefined) out.cleanEnv = bool(launch.cleanenv, `config ${file} [launch] cleanenv`);
  if (typeof launch.squashfuse === 'string' && launch.squashfuse !== '') out.squashfuse = launch.squashfuse;
  if (typeof launch.tmpdir === 'string' && launch.tmpdir !== '') out.tmpdir = launch.tmpdir;
  if (launch.overlay !== undefined) out.overlay = parseOverlayMode(launch.overlay, `config ${file} [launch] overlay`);
  if (launch.memo !== undefined) out.memo = bool(launch.memo, `config ${file} [launch] memo`);
  if (launch.warm !== undefined) out.warm = parseWarmIdle(launch.warm, `config ${file} [launch] warm`);
  const gpu = section(o, 'gpu');
  if (gpu.libdirs !== undefined) {
    out.gpuLibDirs = listValue(gpu.libdirs);
    const rel = out.gpuLibDirs.find((d) => !d.startsWith('/'));
    if (rel !== undefined) throw new UsageError(`config ${file} [gpu] libdirs: "${rel}" is not an absolute path`, { hint: 'List absolute directories, e.g. libdirs = /opt/nvidia/lib64' });
  }
  return out;
}

export function mergeConfig(parts: PartialConfig[]): LaunchConfig {
  const c = defaultConfig();
  for (const p of parts) {
    c.bindPaths.push(...p.bindPaths);
    Object.assign(c.mount, p.mount);
    if (p.contain !== undefined) c.contain = p.contain;
    if (p.cleanEnv !== undefined) c.cleanEnv = p.cleanEnv;
    if (p.squashfuse !== undefined) c.squashfuse = p.squashfuse;
    if (p.tmpdir !== undefined) c.tmpdir = p.tmpdir;
    if (p.overlay !== undefined) c.overlay = p.overlay;
    if (p.memo !== undefined) c.memo = p.memo;
    if (p.warm !== undefined) c.warm = p.warm;
    if (p.gpuLibDirs !== undefined) c.gpuLibDirs = [...(c.gpuLibDirs ?? []), ...p.gpuLibDirs];
  }
  return c;
}

/** The config files that apply, in order. */
export function configFiles(env: Record<string, string | undefined>): string[] {
  if (env.HPCC_CONFIG) return [env.HPCC_CONFIG];
  const xdg = env.XDG_CONFIG_HOME || (env.HOME ? path.join(env.HOME, '.config') : '');
  return [SITE_CONFIG, ...(xdg ? [path.join(xdg, 'hpcc', 'hpcc.conf')] : [])];
}

/** Read and merge the config files (missing files are skipped). */
export function loadConfig(env: Record<string, string | undefined> = process.env, rec?: FactRecorder): LaunchConfig {
  const parts: PartialConfig[] = [];
  for (const f of configFiles(env)) {
    rec?.id(f);
    let text: string;
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && f !== env.HPCC_CONFIG) continue;
      throw new UsageError(`cannot read config ${f}: ${(e as Error).message}`, { cause: e, hint: 'Fix the file permissions or the HPCC_CONFIG path.' });
    }
    parts.push(parseConfig(text, f));
  }
  return mergeConfig(parts);
}
