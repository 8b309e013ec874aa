/**
 * LaunchPlan: the frozen, serialisable description of one container launch.
 * TypeScript decides everything (plan builder, pure); the C helper in
 * native/ executes a plan and holds no policy. Versioned: the helper refuses
 * a plan whose version it does not know.
 *
 * Execution order in the helper:
 *  1. refuse setuid/setgid execution, set PR_SET_NO_NEW_PRIVS
 *  2. unshare(CLONE_NEWUSER | CLONE_NEWNS [| CLONE_NEWPID]); write setgroups=deny,
 *     uid_map "inside outside 1", gid_map likewise
 *  3. make every mount private (MS_REC|MS_PRIVATE on /)
 *  4. set up the root: `rootfs` (squashfuse_ll child serving the SIF partition at
 *     `rootfs.mountpoint`, readiness by polling /proc/self/mountinfo; or a directory)
 *  5. run `mounts` in order (paths of `dst` are inside the new root, relative to
 *     `stage`, the directory that becomes "/")
 *  6. pivot_root into `stage`, detach the old root, chdir(cwd)
 *  7. fork: child execve(argv[0] resolved with PATH from env, argv, env); parent
 *     forwards SIGTERM/SIGINT/SIGHUP/SIGUSR1/SIGUSR2/SIGQUIT/SIGCONT/SIGWINCH,
 *     waits, stops the FUSE server, exits with the child's status (128+N on signal N)
 * Setup failures are reported on the status fd as "op N failed, errno E".
 *
 * As implemented by native/launch (hpcc-launch; wire format in codec.ts):
 *  - the helper mounts a private tmpfs on `stage`; STAGE/root becomes "/"
 *    and STAGE/scratch holds its own files (generated `file` contents,
 *    overlay upper/work). It removes `stage` and `rootfs.mountpoint` again
 *    when it created them. Concurrent launches may share one stage path.
 *  - squashfuse: the helper opens /dev/fuse and mounts it itself, then runs
 *    `fuseHelper -f -o offset=N image /dev/fd/K` (libfuse >= 3.3).
 *  - mount ops run in a mount namespace of the container's own (nested in
 *    the helper's), so the helper keeps the host view to clean up.
 *  - every `dst` is resolved inside the new root (openat2 RESOLVE_IN_ROOT):
 *    image symlinks, absolute or "..", never lead onto the host.
 *  - bind/tmpfs/proc/file create a missing mount point (directory, or an
 *    empty file for a file source) when the layer allows it; `readonly`
 *    binds are read-only recursively; `remount-ro` acts on one mount.
 *  - overlay: tries `methods` in order (kernel overlayfs, fuse-overlayfs
 *    served by the helper process, a tmpfs skeleton of binds); before mounting, the mount points of later ops below `dst`
 *    are created in the upper dir (the image's dirs belong to an unmapped
 *    owner, so nothing could be created through the overlay); a
 *    non-`writable` overlay is made read-only after the last op.
 *  - a command given on the helper's command line (`hpcc-launch --plan FILE
 *    CMD ARGS...`) replaces argv[commandIndex..]; the prefix argv[0..commandIndex)
 *    (the env-script wrapper of builder/actions.ts) is kept, so the image's
 *    env scripts and the injected variables still apply.
 *  - exit: payload status (128+N for signal N), 96..103 for the helper's setup
 *    failures, 126/127 when the payload cannot be executed / is not found.
 *
 * Version 2 added `commandIndex`; version 3 the overlay op's `methods` and
 * `fuseOverlayfs` (a version-2 overlay is kernel overlayfs only); version 4
 * the squashfuse root's `warm` (the helper reads versions 2 to 4).
 *  - warm: the helper joins the keeper of a warm mount of this image, or
 *    starts one (native/launch/warm.c, docs/launcher.md "Warm mounts").
 *    Anything short of joining makes it mount the image itself as without.

 */

export const PLAN_VERSION = 4;

/**
 * How an overlay op is made, tried in the op's order by the helper (which
 * reports the one it used as a status info record):
 *  - kernel:   overlayfs in the user namespace (Linux 5.11+ where allowed)
 *  - fuse:     fuse-overlayfs (`fuseOverlayfs`) on the same upper/work dirs;
 *              only for dst "/"
 *  - skeleton: a tmpfs holding binds of the image's entries plus the missing
 *              mount points; never writable
 */
export type OverlayMethod = 'kernel' | 'fuse' | 'skeleton';
export const OVERLAY_METHODS: readonly OverlayMethod[] = Object.freeze(['kernel', 'fuse', 'skeleton']);

export interface IdMap {
  /** id inside the container */
  inside: number;
  /** id on the host */
  outside: number;
}

export type RootfsSpec =
  | {
      kind: 'squashfuse';
      /** path of the SIF (or raw squashfs) image on the host */
      image: string;
      /** byte offset of the squashfs partition */
      offset: number;
      /** absolute path of squashfuse_ll (or squashfuse) to run */
      fuseHelper: string;
      /** host directory where the image is mounted (inside the new mount namespace) */
      mountpoint: string;
      /** share a mount of the image kept warm by a keeper process (absent: mount it per launch) */
      warm?: WarmSpec;
    }
  | {
      kind: 'dir';
      /** an extracted or sandbox directory on the host */
      path: string;
    };

/** A warm mount to join or start (builder/warm.ts decides; native/launch/warm.c acts). */
export interface WarmSpec {
  /** the rendezvous directory (the caller's own, 0700; created by the helper when missing) */
  dir: string;
  /** 16..64 lower-case hex digits: the image identity, id mapping, helper and node, hashed */
  key: string;
  /** seconds the keeper stays with no launch using it (1..604800) */
  idleSeconds: number;
  /** the image file's identity, dev:ino:size:mtimeNs:ctimeNs:offset; a keeper of any other is never joined */
  identity: string;
  /** --sharens: the launch fails rather than run in namespaces of its own (wire: warm 2) */
  required?: boolean;
}

export type MountOp =
  /** bind a host path to a container path; `optional` skips a missing source silently */
  | { op: 'bind'; src: string; dst: string; readonly: boolean; optional?: boolean }
  /** a fresh tmpfs at dst (mode, size in bytes; 0 = kernel default) */
  | { op: 'tmpfs'; dst: string; mode: number; size: number }
  /** mount a new proc (needs a PID namespace) or bind the host /proc otherwise */
  | { op: 'proc'; dst: string }
  /** create a directory (in a writable layer: tmpfs or overlay upper) */
  | { op: 'mkdir'; dst: string; mode: number }
  /** write a generated file (e.g. /etc/passwd) into a writable layer, then bind it read-only */
  | { op: 'file'; dst: string; content: string; mode: number }
  /**
   * overlay: lower = the current root contents, upper/work on a tmpfs; makes
   * mount points creatable. `methods` (1..3, distinct) are tried in order;
   * `fuseOverlayfs` is the absolute path of fuse-overlayfs when 'fuse' is one.
   */
  | { op: 'overlay'; dst: string; writable: boolean; methods: OverlayMethod[]; fuseOverlayfs?: string }
  /** remount dst read-only (after creating mount points in an overlay) */
  | { op: 'remount-ro'; dst: string };

export interface LaunchPlan {
  version: typeof PLAN_VERSION;
  uid: IdMap;
  gid: IdMap;
  /** also unshare the PID namespace (the helper becomes PID 1's parent) */
  pidNamespace: boolean;
  rootfs: RootfsSpec;
  /** host directory that becomes the container's "/" (created by the helper, private to the mount ns) */
  stage: string;
  mounts: MountOp[];
  /** working directory inside the container */
  cwd: string;
  /** the complete environment, K=V */
  env: string[];
  /** argv[0] may be a bare name: resolved with the PATH in env, inside the container */
  argv: string[];
  /**
   * Where the user's command starts in argv: argv[0..commandIndex) is the
   * wrapper prefix (`/bin/sh -c '<wrapper>' hpcc-<action>`, so 4), kept when
   * the helper is given a command of its own; 0 when there is no wrapper.
   * 0 <= commandIndex < argv.length.
   */
  commandIndex: number;
}

/** Deep-freeze a plan (plans are values: built once, never mutated). */
export function freezePlan(plan: LaunchPlan): Readonly<LaunchPlan> {
  const freeze = (o: unknown): void => {
    if (o && typeof o === 'object' && !Object.isFrozen(o)) {
      Object.freeze(o);
      for (const v of Object.values(o as Record<string, unknown>)) freeze(v);
    }
  };
  freeze(plan);
  return plan;
}
