/**
 * --nv and --rocm: the host's NVIDIA or AMD GPU driver inside the container,
 * the way Apptainer's images expect it. The pure part: which host files go
 * where.
 *   - driver libraries (by name prefix, from `ldconfig -p` and the site's
 *     extra library directories) read-only into /.singularity.d/libs, which
 *     the launch puts on LD_LIBRARY_PATH;
 *   - the driver's programs (nvidia-smi, ...) read-only into /usr/bin;
 *   - NVIDIA's persistenced socket, when there is one;
 *   - with --contain (a minimal /dev), the device nodes (/dev/nvidia*;
 *     /dev/kfd and /dev/dri): without it /dev is the host's already.
 * gpu-facts.ts finds the files; binds.ts places these intents after the
 * default binds. Every one is optional: a file that cannot be placed is
 * skipped (listed as skipped), never an error.
 */
import * as path from 'node:path';
import { LIBS_DIR } from './actions.js';
import type { MountIntent } from './binds.js';

/**
 * Library name prefixes: a file whose name starts with one is a driver library.
 * Not the OpenCL ICD loader (libOpenCL.so): it is vendor-neutral (ocl-icd, which
 * Open MPI's hwloc pulls in too), and the image's own must win.
 */
export const NV_LIBS: readonly string[] = [
  'libcuda.so', 'libcudadebugger.so', 'libEGL_nvidia.so', 'libGLESv1_CM_nvidia.so', 'libGLESv2_nvidia.so',
  'libGLX_nvidia.so', 'libnvcuvid.so', 'libnvidia-allocator.so', 'libnvidia-cfg.so', 'libnvidia-compiler.so',
  'libnvidia-eglcore.so', 'libnvidia-egl-gbm.so', 'libnvidia-egl-wayland.so', 'libnvidia-encode.so',
  'libnvidia-fatbinaryloader.so', 'libnvidia-fbc.so', 'libnvidia-glcore.so', 'libnvidia-glsi.so',
  'libnvidia-glvkspirv.so', 'libnvidia-gpucomp.so', 'libnvidia-gtk2.so', 'libnvidia-gtk3.so', 'libnvidia-ifr.so',
  'libnvidia-ml.so', 'libnvidia-nvvm.so', 'libnvidia-opencl.so', 'libnvidia-opticalflow.so',
  'libnvidia-pkcs11.so', 'libnvidia-ptxjitcompiler.so', 'libnvidia-rtcore.so', 'libnvidia-tls.so',
  'libnvidia-wayland-client.so', 'libnvoptix.so', 'libvdpau_nvidia.so',
];

/** The driver's programs, looked up on PATH. */
export const NV_BINS: readonly string[] = ['nvidia-smi', 'nvidia-debugdump', 'nvidia-persistenced', 'nvidia-cuda-mps-control', 'nvidia-cuda-mps-server'];

/**
 * ROCm's user-space driver libraries (the HIP runtime, HSA, the kernel driver's thunk, SMI).
 * Not libdrm/libdrm_amdgpu: distributions ship them for Mesa too, and the image's own copy must win.
 */
export const ROCM_LIBS: readonly string[] = [
  'libamd_comgr.so', 'libamdhip64.so', 'libhiprtc.so', 'libhsa-runtime64.so', 'libhsakmt.so', 'librocm_smi64.so',
  'librocprofiler-register.so',
];
export const ROCM_BINS: readonly string[] = ['rocm-smi', 'rocminfo', 'amd-smi'];

export type GpuVendor = 'nvidia' | 'amd';

/** Per vendor: the built-in lists, the site file replacing them, which /dev entries are its devices. */
export const VENDORS: Record<GpuVendor, { flag: string; libs: readonly string[]; bins: readonly string[]; listFile: string; device: (name: string) => boolean }> = {
  nvidia: { flag: '--nv', libs: NV_LIBS, bins: NV_BINS, listFile: '/etc/hpcc/nvliblist.conf', device: (n) => n.startsWith('nvidia') },
  amd: { flag: '--rocm', libs: ROCM_LIBS, bins: ROCM_BINS, listFile: '/etc/hpcc/rocmliblist.conf', device: (n) => n === 'kfd' || n === 'dri' },
};

export const PERSISTENCED_SOCKET = '/run/nvidia-persistenced/socket';

export interface HostFile {
  /** the name it gets in the container (a library's soname as listed, a program's name) */
  name: string;
  /** the host file (symlinks resolved) */
  path: string;
}

export interface GpuFacts {
  libs: HostFile[];
  bins: HostFile[];
  /** the vendors' /dev entries: device nodes, and directories (nvidia-caps, dri) */
  devices: { path: string; dir: boolean }[];
  persistenced: string | null;
}

/**
 * A site's list of driver files (/etc/hpcc/nvliblist.conf): one name per
 * line, `#` comments; a name with ".so" in it is a library prefix, any other
 * a program. Replaces the built-in lists.
 */
export function parseNvList(text: string): { libs: string[]; bins: string[] } {
  const libs: string[] = [];
  const bins: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '' || line.includes('/')) continue;
    (line.includes('.so') ? libs : bins).push(line);
  }
  return { libs, bins };
}

/** The ldconfig tag of this machine's own libraries ("(libc6,x86-64)"); null: take every entry. */
export function ldconfigArchTag(arch: string = process.arch): string | null {
  return arch === 'x64' ? 'x86-64' : arch === 'arm64' ? 'AArch64' : arch === 'ppc64' ? '64bit' : null;
}

/**
 * `ldconfig -p` → [name, path] in its order, only entries for this machine's
 * architecture (a 32-bit libcuda.so.1 next to the 64-bit one is left out).
 */
export function parseLdconfig(text: string, archTag: string | null = ldconfigArchTag()): HostFile[] {
  const out: HostFile[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s+(\S+)\s+\(([^)]*)\)\s+=>\s+(\/\S.*?)\s*$/.exec(line);
    if (!m) continue;
    const tags = m[2]!.split(',');
    if (archTag !== null && !tags.includes(archTag)) continue;
    out.push({ name: m[1]!, path: m[3]! });
  }
  return out;
}

/** The candidates whose name starts with a prefix, the first of each name. */
export function selectByPrefix(candidates: readonly HostFile[], prefixes: readonly string[]): HostFile[] {
  const seen = new Set<string>();
  const out: HostFile[] = [];
  for (const c of candidates) {
    if (seen.has(c.name) || !prefixes.some((p) => c.name.startsWith(p))) continue;
    seen.add(c.name);
    out.push(c);
  }
  return out;
}

/** The mount intents for --nv/--rocm. */
export function gpuIntents(gpu: GpuFacts, contain: boolean): MountIntent[] {
  const bind = (src: string, dst: string, readonly: boolean, srcKind: 'file' | 'dir' | 'other' = 'file'): MountIntent => ({
    kind: 'bind',
    src,
    dst,
    readonly,
    srcKind,
    optional: true,
    origin: '--nv/--rocm',
  });
  const out: MountIntent[] = [];
  if (contain) for (const d of gpu.devices) out.push(bind(d.path, d.path, false, d.dir ? 'dir' : 'other'));
  for (const l of gpu.libs) out.push(bind(l.path, path.posix.join(LIBS_DIR, l.name), true));
  for (const b of gpu.bins) out.push(bind(b.path, path.posix.join('/usr/bin', b.name), true));
  if (gpu.persistenced) out.push(bind(gpu.persistenced, PERSISTENCED_SOCKET, false, 'other'));
  return out;
}
