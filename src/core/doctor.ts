/**
 * `hpcc doctor`: what this node allows an unprivileged launch to do, each
 * problem with the fix. Reads kernel settings and probes for real (unshare,
 * an overlay mount inside a user namespace), as the calling user.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findFuseHelper, findFuseOverlayfs, kernelVersion } from '../runtime/builder/facts.js';
import { loadConfig } from '../runtime/builder/config.js';
import { VENDORS, type GpuFacts, type GpuVendor } from '../runtime/builder/gpu.js';
import { findGpu } from '../runtime/builder/gpu-facts.js';
import { RDMA_CONFIG, RDMA_DEVICES, RDMA_SYSFS } from '../runtime/builder/rdma.js';
import { installRoot } from '../util/install-root.js';
import { removeTree } from '../util/remove-tree.js';
import { checkWarm } from './doctor-warm.js';
import { checkBuildMode } from './doctor-build.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
  /** how to fix it (when not ok) */
  fix?: string;
}

function readSysctl(p: string): string | null {
  try {
    return fs.readFileSync(p, 'utf8').trim();
  } catch {
    return null;
  }
}

function run(cmd: string, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}`.trim() };
}

export function checkKernel(release = os.release()): Check {
  const [maj, min] = kernelVersion(release);
  const v = maj * 1000 + min;
  if (v < 4018) {
    return { name: 'kernel', status: 'fail', detail: `Linux ${release}: FUSE mounts in a user namespace need 4.18+`, fix: 'Upgrade the kernel to 4.18 or later (5.11+ for overlay mounts), or use --unsquash.' };
  }
  if (v < 5011) {
    return {
      name: 'kernel',
      status: 'warn',
      detail: `Linux ${release}: overlayfs in a user namespace needs 5.11+ (fuse-overlayfs or a tmpfs skeleton is used instead)`,
      fix: 'Install fuse-overlayfs for --writable-tmpfs, or upgrade the kernel to 5.11+ for kernel overlay mounts.',
    };
  }
  return { name: 'kernel', status: 'ok', detail: `Linux ${release}` };
}

export function checkUsernsSysctls(read: (p: string) => string | null = readSysctl): Check[] {
  const out: Check[] = [];
  const max = read('/proc/sys/user/max_user_namespaces');
  if (max !== null && Number(max) === 0) {
    out.push({ name: 'user.max_user_namespaces', status: 'fail', detail: 'user namespaces are disabled (0)', fix: 'As root: sysctl -w user.max_user_namespaces=15000 (persist it in /etc/sysctl.d/).' });
  } else out.push({ name: 'user.max_user_namespaces', status: 'ok', detail: max ?? 'not present' });
  const clone = read('/proc/sys/kernel/unprivileged_userns_clone');
  if (clone !== null) {
    out.push(
      clone === '0'
        ? { name: 'kernel.unprivileged_userns_clone', status: 'fail', detail: 'unprivileged user namespaces are disabled (0)', fix: 'As root: sysctl -w kernel.unprivileged_userns_clone=1 (persist it in /etc/sysctl.d/).' }
        : { name: 'kernel.unprivileged_userns_clone', status: 'ok', detail: clone },
    );
  }
  const aa = read('/proc/sys/kernel/apparmor_restrict_unprivileged_userns');
  if (aa !== null) {
    out.push(
      aa === '1'
        ? {
            name: 'kernel.apparmor_restrict_unprivileged_userns',
            status: 'fail',
            detail: "AppArmor restricts unprivileged user namespaces (Ubuntu 23.10+): launches fail with 'Permission denied'",
            fix: 'As root, either add an AppArmor profile granting "userns," to hpcc-launch (see docs/launcher.md) or: sysctl -w kernel.apparmor_restrict_unprivileged_userns=0',
          }
        : { name: 'kernel.apparmor_restrict_unprivileged_userns', status: 'ok', detail: aa },
    );
  }
  return out;
}

function checkUnshare(): Check {
  const r = run('unshare', ['-U', 'true']);
  if (r.ok) {
    const m = run('unshare', ['-rm', 'true']);
    return m.ok
      ? { name: 'user+mount namespace probe', status: 'ok', detail: 'unshare -rm true works' }
      : { name: 'user+mount namespace probe', status: 'fail', detail: `unshare -rm failed: ${m.out}`, fix: 'Mount namespaces are blocked (seccomp or LSM policy); ask the admin to allow them for unprivileged users.' };
  }
  return {
    name: 'user+mount namespace probe',
    status: 'fail',
    detail: `unshare -U true failed: ${r.out || 'unshare not found'}`,
    fix: 'Enable unprivileged user namespaces (see the sysctl checks above); on Ubuntu, AppArmor may block them.',
  };
}

function checkFuseDevice(): Check {
  let st: fs.Stats;
  try {
    st = fs.statSync('/dev/fuse');
  } catch {
    return { name: '/dev/fuse', status: 'fail', detail: 'missing', fix: 'As root: modprobe fuse (and add it to /etc/modules), or run images with --unsquash.' };
  }
  const mode = (st.mode & 0o777).toString(8);
  try {
    fs.accessSync('/dev/fuse', fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    return { name: '/dev/fuse', status: 'fail', detail: `mode ${mode}: not readable and writable by you`, fix: 'As root: chmod 0666 /dev/fuse (udev does this on most distributions), or run images with --unsquash.' };
  }
  return { name: '/dev/fuse', status: 'ok', detail: `character device, mode ${mode}` };
}

function checkSquashfuse(): Check {
  const p = findFuseHelper(process.env, loadConfig());
  if (!p) return { name: 'squashfuse', status: 'fail', detail: 'neither squashfuse_ll nor squashfuse is on PATH', fix: 'Install squashfuse (Debian/Ubuntu: apt-get install squashfuse), or run images with --unsquash.' };
  if (path.basename(p) !== 'squashfuse_ll') {
    return { name: 'squashfuse', status: 'warn', detail: `${p} (single-threaded)`, fix: 'Install squashfuse_ll (multithreaded, much faster): Debian/Ubuntu ship it in the squashfuse package.' };
  }
  return { name: 'squashfuse', status: 'ok', detail: p };
}

/** Kernel overlayfs in a user namespace, probed for real (a mount in `unshare -rm`). */
export function checkOverlay(): Check {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hpcc-doctor-'));
  try {
    const script = 'cd "$1" && mkdir l u w m && mount -t overlay overlay -o lowerdir=l,upperdir=u,workdir=w,userxattr m && umount m';
    const r = run('unshare', ['-rm', 'sh', '-c', script, 'probe', dir]);
    const fuse = findFuseOverlayfs(process.env);
    return r.ok
      ? { name: 'kernel overlayfs in a user namespace', status: 'ok', detail: 'mounts (the first overlay method)' }
      : {
          name: 'kernel overlayfs in a user namespace',
          status: 'warn',
          detail: `refused: ${r.out.replace(/\s*\n\s*/g, ' ') || 'unshare failed'}; binds to paths the image lacks use ${fuse ? 'fuse-overlayfs' : 'a tmpfs skeleton'} instead`,
          fix: fuse
            ? 'Nothing needed (fuse-overlayfs serves instead); kernel overlayfs needs Linux 5.11+ and a distribution that allows it in user namespaces.'
            : 'Install fuse-overlayfs (Debian/Ubuntu: apt-get install fuse-overlayfs) for --writable-tmpfs, or use Linux 5.11+ with overlayfs.',
        };
  } finally {
    removeTree(dir); // overlayfs leaves work/work mode 0: Node 24's rmSync alone fails on it
  }
}

/** fuse-overlayfs: the overlay method used when the kernel refuses overlayfs in a user namespace. */
export function checkFuseOverlayfs(kernelOverlay: Check): Check {
  const name = 'fuse-overlayfs';
  const p = findFuseOverlayfs(process.env);
  if (p) return { name, status: 'ok', detail: `${p} (used when the kernel refuses overlayfs)` };
  const onPath = spawnSync('sh', ['-c', 'command -v fuse-overlayfs'], { encoding: 'utf8' }).stdout.trim();
  const why = onPath ? `${onPath} is installed but /dev/fuse is not usable` : 'not installed';
  if (kernelOverlay.status === 'ok') return { name, status: 'ok', detail: `${why} (not needed: kernel overlayfs works)` };
  return {
    name,
    status: 'warn',
    detail: `${why}: without kernel overlayfs, binds to paths the image lacks use a tmpfs skeleton and --writable-tmpfs fails`,
    fix: onPath ? 'As root: chmod 0666 /dev/fuse (see the /dev/fuse check).' : 'Install fuse-overlayfs (Debian/Ubuntu: apt-get install fuse-overlayfs).',
  };
}

function checkOverlayMode(): Check {
  const env = process.env.HPCC_OVERLAY;
  let mode: string;
  try {
    mode = env ? env : (loadConfig().overlay ?? 'auto');
  } catch (e) {
    return { name: 'overlay setting', status: 'fail', detail: (e as Error).message, fix: 'Fix [launch] overlay in hpcc.conf: auto, kernel, fuse, skeleton or none.' };
  }
  const ok = ['auto', 'kernel', 'fuse', 'skeleton', 'none'].includes(mode);
  return ok
    ? { name: 'overlay setting', status: 'ok', detail: `${mode}${env ? ' (HPCC_OVERLAY)' : ''}${process.env.HPCC_NO_OVERLAY === '1' ? '; HPCC_NO_OVERLAY=1 skips the kernel' : ''}` }
    : { name: 'overlay setting', status: 'fail', detail: `HPCC_OVERLAY=${mode} is not a mode`, fix: 'Set HPCC_OVERLAY to auto, kernel, fuse, skeleton or none (or unset it).' };
}

/**
 * Whether `hpcc` on PATH is the native front (dist/native/hpcc: launch memos)
 * or Node's bin/run.js (every launch builds its plan in Node, ~4× ch-run's
 * start). Never a failure: both work.
 */
export function checkFront(env: NodeJS.ProcessEnv = process.env, root = installRoot()): Check {
  const front = path.join(root, 'dist', 'native', 'hpcc');
  const real = (p: string) => {
    try {
      return fs.realpathSync(p);
    } catch {
      return null;
    }
  };
  const frontReal = real(front);
  if (frontReal === null) {
    return { name: 'hpcc command', status: 'warn', detail: `${front} is missing: every launch runs Node`, fix: 'Build it: npm run build (make -C native).' };
  }
  // a release's bin/hpcc (ROOT is its lib/hpcc, docs/release.md) is the path to give
  const releaseBin = path.resolve(root, '..', '..', 'bin', 'hpcc');
  const link = `ln -s ${real(releaseBin) === frontReal ? releaseBin : front} ~/.local/bin/hpcc (a directory on PATH)`;
  const memo = env.HPCC_MEMO === '0' ? '; HPCC_MEMO=0: no launch memos' : '';
  for (const d of (env.PATH ?? '').split(':')) {
    if (!d.startsWith('/')) continue;
    const p = path.join(d, 'hpcc');
    const r = real(p);
    if (r === null) continue;
    try {
      fs.accessSync(p, fs.constants.X_OK);
    } catch {
      continue;
    }
    if (r === frontReal) return { name: 'hpcc command', status: 'ok', detail: `${p} is the native front (launch memos)${memo}` };
    return {
      name: 'hpcc command',
      status: 'warn',
      detail: `${p} is ${r}, not the native front: every launch builds its plan in Node`,
      fix: `Put the native front first on PATH: ${link}.`,
    };
  }
  return { name: 'hpcc command', status: 'warn', detail: 'no hpcc on PATH', fix: `Link the native front: ${link}.` };
}

/**
 * What --nv / --rocm would bind here (pure: the driver files found). A node with
 * the vendor's devices but no driver libraries is a warning (the launch would run
 * without them); no devices and no libraries: no such GPU, fine.
 */
export function gpuCheck(vendor: GpuVendor, gpu: GpuFacts): Check {
  const v = VENDORS[vendor];
  const name = `${v.flag} (${vendor === 'nvidia' ? 'NVIDIA' : 'AMD ROCm'})`;
  const devs = gpu.devices.map((d) => d.path);
  if (gpu.libs.length > 0) {
    const libs = gpu.libs.map((l) => l.name);
    const shown = libs.length > 4 ? `${libs.slice(0, 4).join(', ')}… (${libs.length})` : libs.join(', ');
    const bins = gpu.bins.length > 0 ? `; ${gpu.bins.map((b) => b.name).join(', ')}` : '';
    return { name, status: 'ok', detail: `driver libraries ${shown}${bins}; devices ${devs.length > 0 ? devs.join(' ') : 'none'}` };
  }
  if (devs.length > 0) {
    return {
      name,
      status: 'warn',
      detail: `${devs.join(' ')} present, but no driver libraries found (ldconfig -p, [gpu] libdirs): ${v.flag} would bind none`,
      fix: `Run ldconfig after installing the driver, or list the driver's library directory under [gpu] libdirs in hpcc.conf (or the names in ${v.listFile}).`,
    };
  }
  return { name, status: 'ok', detail: `no ${vendor === 'nvidia' ? 'NVIDIA' : 'AMD'} GPU driver or device here (${v.flag} would bind nothing)` };
}

function checkGpus(): Check[] {
  let config;
  try {
    config = loadConfig();
  } catch {
    return []; // the overlay-mode check reports a broken config
  }
  return (['nvidia', 'amd'] as const).map((v) => gpuCheck(v, findGpu([v], process.env, config).gpu));
}

/**
 * What a launch gets of the host's RDMA here (rdma.ts): the devices, the
 * configuration and the sysfs class it binds, or why nothing. `list` names a
 * directory's entries (empty when it is missing).
 */
export function rdmaCheck(list: (dir: string) => string[] | null, enabled: boolean): Check {
  const name = 'RDMA (InfiniBand, RoCE)';
  const devs = list(RDMA_DEVICES);
  if (devs === null) return { name, status: 'ok', detail: `no ${RDMA_DEVICES} here: nothing to bind` };
  const shown = (dir: string) => {
    const e = list(dir);
    return e === null ? null : `${dir} (${e.length > 0 ? e.sort().join(' ') : 'empty'})`;
  };
  const found = [shown(RDMA_DEVICES)!, ...RDMA_CONFIG.map(shown), shown(RDMA_SYSFS)].filter((x): x is string => x !== null);
  if (!enabled) return { name, status: 'ok', detail: `${found.join(', ')}; [mount] rdma = no: containers get none of it` };
  return {
    name,
    status: 'ok',
    detail: `bound into containers: ${found.join(', ')} (configuration and sysfs read-only; ${RDMA_DEVICES} under --contain, else with the host's /dev); --no-rdma or [mount] rdma = no turns it off`,
  };
}

function checkRdma(): Check[] {
  let enabled = true;
  try {
    enabled = loadConfig().mount.rdma;
  } catch {
    return []; // the overlay-mode check reports a broken config
  }
  const list = (dir: string): string[] | null => {
    try {
      return fs.readdirSync(dir);
    } catch {
      return null;
    }
  };
  return [rdmaCheck(list, enabled)];
}

/** All checks, in order. */
export function runDoctor(): Check[] {
  const overlay = checkOverlay();
  return [
    checkKernel(), ...checkUsernsSysctls(), checkUnshare(), checkFuseDevice(), checkSquashfuse(), overlay, checkFuseOverlayfs(overlay), checkOverlayMode(), checkWarm(), checkBuildMode(), checkFront(), ...checkGpus(), ...checkRdma(),
  ];
}

export function renderChecks(checks: Check[]): string {
  const mark: Record<CheckStatus, string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' };
  const out: string[] = [];
  for (const c of checks) {
    out.push(`[${mark[c.status]}] ${c.name}: ${c.detail}`);
    if (c.fix && c.status !== 'ok') out.push(`       fix: ${c.fix}`);
  }
  const bad = checks.filter((c) => c.status === 'fail').length;
  out.push(bad === 0 ? 'This node can run hpcc containers unprivileged.' : `${bad} problem(s) stop unprivileged launches here; see the fixes above.`);
  return out.join('\n') + '\n';
}
