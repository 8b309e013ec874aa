/**
 * Inputs of the pure launch-plan builder. Everything the builder needs to
 * know about the world arrives here as data (or as pure look-up functions
 * over immutable data): the image, the host, the user's flags, the config.
 * src/runtime/builder/facts.ts and src/core/launch.ts gather them.
 */
import type { GpuFacts } from './gpu.js';

export type Action = 'exec' | 'run' | 'shell' | 'test';

/** What a path is, after following symlinks (inside the image: within the image). */
export type PathKind = 'dir' | 'file' | 'other';

export interface PathInfo {
  kind: PathKind;
  /** the canonical path once symlinks are followed (inside the image: an image path) */
  real: string;
}

/** Facts about the image, read without mounting it. */
export interface ImageFacts {
  /** absolute host path of the SIF (or extracted directory when rootDir is set) */
  path: string;
  /** byte offset of the primary squashfs partition in the SIF */
  offset: number;
  /** the SIF file's identity, dev:ino:size:mtimeNs:ctimeNs (warm mounts key by it; absent: no warm mount) */
  identity?: string;
  /** an extracted copy of the image to use instead of squashfuse (extraction fallback) */
  rootDir?: string;
  /** the image's /etc/passwd and /etc/group (null when absent) */
  passwd: string | null;
  group: string | null;
  /** names of the regular files in /.singularity.d/env, any order (the builder sorts) */
  envScripts: string[];
  /**
   * the contents of those scripts; may be partial. The builder execs the
   * payload without the sh wrapper only when every sourced script is here
   * and inert (actions.ts needsShell); --explain-env scans them.
   */
  envScriptText?: Record<string, string>;
  /** look a path up inside the image (symlinks followed inside the image); null when absent */
  lookup: (path: string) => PathInfo | null;
  /**
   * the target of the image's symlink at `path` (a path whose parents hold
   * no symlink), null when it is no symlink or absent: targets.ts resolves
   * mount destinations component by component with it, through the mounts
   * placed before them, as the helper will
   */
  readlink: (path: string) => string | null;
}

export interface WarmFacts {
  /** the caller's rendezvous directory (the helper creates it 0700 and checks it) */
  dir: string;
  /** seconds a keeper stays unused; > 0 */
  idleSeconds: number;
  /** the node's name (a directory on a shared file system must not mix nodes' keepers) */
  node: string;
}

export interface UserEntry {
  name: string;
  uid: number;
  gid: number;
  gecos: string;
  home: string;
  shell: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
}

/** Facts about the host and the caller, gathered once per launch by facts.ts. */
export interface HostFacts {
  uid: number;
  gid: number;
  /** the caller's passwd entry (one lookup per launch); null when unknown */
  user: UserEntry | null;
  /** the caller's primary group entry; null when unknown */
  group: GroupEntry | null;
  /** $HOME, else the passwd home */
  home: string;
  cwd: string;
  /** the caller's environment */
  env: Record<string, string>;
  /** look a host path up (symlinks followed); null when absent */
  lookup: (path: string) => PathInfo | null;
  /** absolute path of squashfuse_ll / squashfuse; null when neither is installed */
  fuseHelper: string | null;
  /**
   * whether the kernel should let an unprivileged user mount overlayfs in a
   * user namespace (Linux 5.11+; false with HPCC_NO_OVERLAY=1). Only a
   * belief: the helper falls back to the next method when the kernel refuses.
   */
  overlayInUserns: boolean;
  /** absolute path of fuse-overlayfs (with a usable /dev/fuse); null when either is missing */
  fuseOverlayfs: string | null;
  /**
   * candidates for the helper's stage, in order of preference: existing host
   * directories on which the helper mounts a private tmpfs inside the new
   * mount namespace (nothing is written to them on the host). The builder
   * takes the first that no bind source overlaps (a recursive bind of a
   * parent would otherwise carry the stage into the container). The last is
   * a per-user fallback directory.
   */
  stageDirs: string[];
  /** warm mounts (builder/warm.ts): the rendezvous directory, the idle time, this node; null when off */
  warm: WarmFacts | null;
  /** the GPU drivers' files, gathered only for --nv/--rocm (gpu-facts.ts) */
  gpu?: GpuFacts;
}

/** User choices: command-line flags (Apptainer names) plus the action's arguments. */
export interface LaunchFlags {
  action: Action;
  /** exec: [CMD, ...ARGS]; run/test: ARGS; shell: [] (extra shell arguments) */
  args: string[];
  /** -B/--bind values, each a comma list of src[:dst[:ro|rw]] */
  bind: string[];
  /** --mount values: type=bind,source=…,destination=…[,ro] (binds.ts parseMount) */
  mount?: string[];
  /** -W/--workdir: host directory whose tmp/ and var_tmp/ (and home/ with --contain) replace /tmp, /var/tmp (and $HOME) */
  workdir?: string;
  /** -H/--home src[:dst] */
  home?: string;
  noHome?: boolean;
  pwd?: string;
  contain?: boolean;
  containAll?: boolean;
  cleanEnv?: boolean;
  /** --env K=V, in order */
  env?: string[];
  /** --env-file contents, in order (read by the caller) */
  envFiles?: { path: string; text: string }[];
  writableTmpfs?: boolean;
  /** also unshare the PID namespace */
  pid?: boolean;
  /** --nv: the host's NVIDIA driver libraries, programs and devices (gpu.ts) */
  nv?: boolean;
  /** --rocm: the same for AMD's ROCm driver (/dev/kfd, /dev/dri) */
  rocm?: boolean;
  /** --fakeroot: uid and gid 0 inside, mapped to the caller's (build.ts asFakeRoot) */
  fakeroot?: boolean;
  /** --sharens: every launch of the image on this node in one user namespace, the warm keeper's (warm.ts) */
  sharens?: boolean;
  /** --no-rdma: no RDMA binds even when the host has /dev/infiniband (rdma.ts) */
  noRdma?: boolean;
}

/** Merged site + user configuration (config.ts). */
export interface LaunchConfig {
  /** extra binds, src[:dst[:ro|rw]] */
  bindPaths: string[];
  mount: {
    home: boolean;
    cwd: boolean;
    tmp: boolean;
    dev: boolean;
    proc: boolean;
    sys: boolean;
    scratch: boolean;
    /** RDMA devices and configuration when the host has /dev/infiniband (rdma.ts) */
    rdma: boolean;
    hosts: boolean;
    localtime: boolean;
    resolv: boolean;
    passwd: boolean;
  };
  /** defaults applied when the flag is not given */
  contain: boolean;
  cleanEnv: boolean;
  /** explicit squashfuse binary (else PATH look-up) */
  squashfuse?: string;
  /** where per-launch directories go (else $HPCC_TMPDIR, $TMPDIR, /tmp) */
  tmpdir?: string;
  /** how to overlay the image when a target is missing (HPCC_OVERLAY wins; default auto) */
  overlay?: OverlayMode;
  /** seconds a warm mount's keeper stays unused (HPCC_WARM_IDLE wins; 0 = no warm mounts; default 300) */
  warm?: number;
  /** write launch memos for the native front (default yes; docs/launcher.md, "Launch memos") */
  memo?: boolean;
  /** [gpu] libdirs: directories searched for driver libraries before `ldconfig -p` (--nv) */
  gpuLibDirs?: string[];
}

/**
 * Overlay policy: `auto` tries kernel overlayfs (when the kernel should allow
 * it), then fuse-overlayfs (when installed), then a tmpfs skeleton (not for
 * --writable-tmpfs); a method name forces that method alone; `none` never
 * overlays (every bind target must exist in the image).
 */
export type OverlayMode = 'auto' | 'kernel' | 'fuse' | 'skeleton' | 'none';
export const OVERLAY_MODES: readonly OverlayMode[] = ['auto', 'kernel', 'fuse', 'skeleton', 'none'];

export interface BuildInput {
  image: ImageFacts;
  host: HostFacts;
  flags: LaunchFlags;
  config: LaunchConfig;
}
