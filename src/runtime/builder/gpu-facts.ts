/**
 * --nv: find the host's NVIDIA driver files (impure; gpu.ts has the rules).
 *   libraries: the site's extra directories first ([gpu] libdirs in
 *              hpcc.conf, for drivers outside the loader's cache), then
 *              `ldconfig -p`; names from /etc/hpcc/nvliblist.conf when it
 *              exists, else the built-in list; symlinks resolved, regular
 *              files only
 *   programs:  PATH, then /usr/bin, /bin, /usr/sbin, /sbin
 *   devices:   /dev/nvidia*
 * A launch with --nv is never memoised: these files are not memo facts.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FactRecorder } from '../memo.js';
import { NV_BINS, NV_LIBS, PERSISTENCED_SOCKET, parseLdconfig, parseNvList, selectByPrefix, type GpuFacts, type HostFile } from './gpu.js';
import { onPath } from './facts.js';
import type { LaunchConfig } from './types.js';

export const NV_LIST_FILE = '/etc/hpcc/nvliblist.conf';

/** `ldconfig -p` (from /sbin, /usr/sbin or PATH); '' when it cannot be run. */
function ldconfigListing(): string {
  for (const p of ['/sbin/ldconfig', '/usr/sbin/ldconfig', 'ldconfig']) {
    const r = spawnSync(p, ['-p'], { encoding: 'utf8', timeout: 10_000, maxBuffer: 32 << 20 });
    if (r.status === 0 && typeof r.stdout === 'string') return r.stdout;
  }
  return '';
}

function realFile(p: string): string | null {
  try {
    const real = fs.realpathSync(p);
    return fs.statSync(real).isFile() ? real : null;
  } catch {
    return null;
  }
}

function dirEntries(dir: string): HostFile[] {
  try {
    return fs
      .readdirSync(dir)
      .sort()
      .map((name) => ({ name, path: path.join(dir, name) }));
  } catch {
    return [];
  }
}

export function findGpu(env: Record<string, string | undefined>, config: LaunchConfig, rec?: FactRecorder): GpuFacts {
  rec?.spoil('--nv (the driver files are not memo facts)');
  let libNames: readonly string[] = NV_LIBS;
  let binNames: readonly string[] = NV_BINS;
  try {
    const site = parseNvList(fs.readFileSync(NV_LIST_FILE, 'utf8'));
    libNames = site.libs;
    binNames = site.bins;
  } catch {
    /* no site list: the built-in one */
  }
  const candidates = [...(config.gpuLibDirs ?? []).flatMap(dirEntries), ...parseLdconfig(ldconfigListing())];
  const libs: HostFile[] = [];
  for (const c of selectByPrefix(candidates, libNames)) {
    const real = realFile(c.path);
    if (real) libs.push({ name: c.name, path: real });
  }
  const bins: HostFile[] = [];
  for (const name of binNames) {
    const p = onPath(name, env.PATH);
    const real = p && realFile(p);
    if (real) bins.push({ name, path: real });
  }
  const devices = dirEntries('/dev')
    .filter((e) => e.name.startsWith('nvidia'))
    .map((e) => e.path);
  const persistenced = fs.existsSync(PERSISTENCED_SOCKET) ? PERSISTENCED_SOCKET : null;
  return { libs, bins, devices, persistenced };
}
