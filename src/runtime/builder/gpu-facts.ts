/**
 * --nv/--rocm: find the host's GPU driver files (impure; gpu.ts has the rules).
 *   libraries: the site's extra directories first ([gpu] libdirs in
 *              hpcc.conf, for drivers outside the loader's cache), then
 *              `ldconfig -p`; names from /etc/hpcc/nvliblist.conf or
 *              rocmliblist.conf when it exists, else the built-in list;
 *              symlinks resolved, regular files only
 *   programs:  PATH, then /usr/bin, /bin, /usr/sbin, /sbin
 *   devices:   /dev/nvidia*; /dev/kfd, /dev/dri
 * Memo facts: /etc/ld.so.cache (what `ldconfig -p` lists), the site list,
 * each library directory and /dev (their entries), and every file taken
 * (path look-ups), so a driver update or a new device sends the next launch
 * through Node again.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FactRecorder } from '../memo.js';
import { PERSISTENCED_SOCKET, VENDORS, parseLdconfig, parseNvList, selectByPrefix, type GpuFacts, type GpuVendor, type HostFile } from './gpu.js';
import { hostLookup, onPath } from './facts.js';
import type { LaunchConfig } from './types.js';

/** `ldconfig -p` (from /sbin, /usr/sbin or PATH); '' when it cannot be run. */
function ldconfigListing(): string {
  for (const p of ['/sbin/ldconfig', '/usr/sbin/ldconfig', 'ldconfig']) {
    const r = spawnSync(p, ['-p'], { encoding: 'utf8', timeout: 10_000, maxBuffer: 32 << 20 });
    if (r.status === 0 && typeof r.stdout === 'string') return r.stdout;
  }
  return '';
}

function dirEntries(dir: string, rec?: FactRecorder): HostFile[] {
  rec?.id(dir);
  try {
    return fs
      .readdirSync(dir)
      .sort()
      .map((name) => ({ name, path: path.join(dir, name) }));
  } catch {
    return [];
  }
}

/**
 * The files of the GPU drivers of `vendors` (libraries and programs of each, first
 * name wins), and the vendors none of whose libraries was found.
 */
export function findGpu(
  vendors: readonly GpuVendor[],
  env: Record<string, string | undefined>,
  config: LaunchConfig,
  rec?: FactRecorder,
): { gpu: GpuFacts; missing: GpuVendor[] } {
  const look = hostLookup(rec);
  const realFile = (p: string): string | null => {
    const i = look(p);
    return i?.kind === 'file' ? i.real : null;
  };
  const libsOf = new Map<GpuVendor, readonly string[]>();
  let binNames: string[] = [];
  for (const v of vendors) {
    const vd = VENDORS[v];
    rec?.id(vd.listFile);
    try {
      const site = parseNvList(fs.readFileSync(vd.listFile, 'utf8'));
      libsOf.set(v, site.libs);
      binNames = [...binNames, ...site.bins];
    } catch {
      libsOf.set(v, vd.libs); // no site list: the built-in one
      binNames = [...binNames, ...vd.bins];
    }
  }
  const libNames = [...libsOf.values()].flat();
  rec?.id('/etc/ld.so.cache');
  const candidates = [...(config.gpuLibDirs ?? []).flatMap((d) => dirEntries(d, rec)), ...parseLdconfig(ldconfigListing())];
  const libs: HostFile[] = [];
  for (const c of selectByPrefix(candidates, libNames)) {
    const real = realFile(c.path);
    if (real) libs.push({ name: c.name, path: real });
  }
  const bins: HostFile[] = [];
  for (const name of new Set(binNames)) {
    const p = onPath(name, env.PATH, rec);
    const real = p && realFile(p);
    if (real) bins.push({ name, path: real });
  }
  const devices = dirEntries('/dev', rec)
    .filter((e) => vendors.some((v) => VENDORS[v].device(e.name)))
    .map((e) => ({ path: e.path, dir: look(e.path)?.kind === 'dir' }));
  const persistenced = vendors.includes('nvidia') && look(PERSISTENCED_SOCKET) ? PERSISTENCED_SOCKET : null;
  const missing = vendors.filter((v) => !libs.some((l) => libsOf.get(v)!.some((p) => l.name.startsWith(p))));
  return { gpu: { libs, bins, devices, persistenced }, missing };
}
