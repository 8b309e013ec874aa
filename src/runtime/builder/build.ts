/**
 * buildPlan: image facts + host facts + flags + config → a frozen LaunchPlan.
 * A pure function: the same input gives the same plan (golden-tested).
 *
 * Mount order in the plan:
 *   [overlay over the image root, when a target must be created or with --writable-tmpfs;
 *    its methods in the order to try come from overlay.ts]
 *   system mounts (/dev, /proc, /sys, /etc/hosts, /etc/localtime, /etc/resolv.conf, /tmp, /var/tmp),
 *   $HOME, /scratch, config binds, HPCC_BIND, -B binds, the working directory,
 *   generated /etc/passwd and /etc/group
 * with mkdir ops for missing parent directories just before each mount (the
 * helper creates the mount point itself). A non-writable overlay is made
 * read-only by the helper after the last op.
 */
import * as path from 'node:path';
import { HpccError, UsageError } from '../../errors/index.js';
import { PLAN_VERSION, freezePlan, type IdMap, type LaunchPlan, type MountOp, type RootfsSpec } from '../plan.js';
import { sharensError, warmSpec } from './warm.js';
import { buildAction, libsOnPath } from './actions.js';
import { isContained, isUnder, normPath, planHome, planMounts } from './binds.js';
import { planEnv, type EnvPlan } from './env.js';
import { generateGroup, generatePasswd } from './passwd.js';
import { chooseOverlay } from './overlay.js';
import { TargetResolver, type TargetSymlink } from './targets.js';
import type { BuildInput, PathKind } from './types.js';
import type { MountIntent } from './binds.js';

/**
 * Exit codes of the launch errors found while building the plan, before the
 * helper runs (launcher band 96..111; hpcc-launch itself uses 96..103).
 */
export const EXIT_NO_SQUASHFUSE = 104;
/** a destination crosses an image symlink that leads out of the image (HPCC_E_LAUNCH_TARGET_SYMLINK) */
export const EXIT_TARGET_SYMLINK = 106;
export { EXIT_NO_OVERLAY } from './overlay.js';

export interface BuiltLaunch {
  plan: Readonly<LaunchPlan>;
  /** the environment decisions (for --explain-env) */
  env: EnvPlan;
  /** whether the payload starts through the sh wrapper that sources the image's env scripts */
  sourcesScripts: boolean;
  /** default binds left out, and why */
  skipped: Skipped[];
}

/** A default mount or generated file left out; `symlink` when an image symlink would have led it out of the image. */
export interface Skipped {
  dst: string;
  reason: string;
  symlink?: TargetSymlink;
}

/** The first stage candidate that no bind source contains or lies under. */
export function pickStage(stageDirs: string[], intents: MountIntent[]): string {
  if (stageDirs.length === 0) throw new HpccError('HPCC_E_INTERNAL', 'no stage directory candidates', { exitCode: 70 });
  const sources = intents.flatMap((i) => (i.kind === 'bind' ? [i.src] : []));
  const ok = stageDirs.find((d) => !sources.some((s) => isUnder(s, d) || isUnder(d, s)));
  return ok ?? stageDirs[stageDirs.length - 1]!;
}

function rootfsOf(input: BuildInput, stage: string, uid: IdMap, gid: IdMap): RootfsSpec {
  const { image, host } = input;
  if (image.rootDir && input.flags.sharens) throw sharensError(`${image.path} runs from an extracted tree (--unsquash, or no FUSE), which no keeper holds`);
  if (image.rootDir) return { kind: 'dir', path: image.rootDir };
  if (!host.fuseHelper) {
    throw new HpccError('HPCC_E_LAUNCH_NO_SQUASHFUSE', 'neither squashfuse_ll nor squashfuse is installed', {
      exitCode: EXIT_NO_SQUASHFUSE,
      hint: 'Install squashfuse (Debian/Ubuntu: apt-get install squashfuse), or run with --unsquash to use an extracted copy.',
    });
  }
  const warm = warmSpec(image, host, host.fuseHelper, uid, gid, input.flags.sharens === true);
  return {
    kind: 'squashfuse',
    image: image.path,
    offset: image.offset,
    fuseHelper: host.fuseHelper,
    mountpoint: path.posix.join(stage, 'image'),
    ...(warm ? { warm } : {}),
  };
}

function pushMount(r: TargetResolver, i: MountIntent, skipped: Skipped[]): void {
  const want: PathKind = i.kind === 'bind' && i.srcKind !== 'dir' ? 'file' : 'dir';
  const t = r.ensure(normPath(i.dst), want);
  if ('reason' in t) {
    const what = i.kind === 'bind' ? `bind ${i.src} to ${i.dst}` : `mount ${i.kind === 'tmpfs' ? 'a tmpfs' : 'proc'} on ${i.dst}`;
    if (t.symlink && !(i.kind === 'bind' && i.optional)) {
      throw new HpccError('HPCC_E_LAUNCH_TARGET_SYMLINK', `${i.origin}: cannot ${what}: ${t.reason}`, {
        exitCode: EXIT_TARGET_SYMLINK,
        hint: `The image's symlink ${t.symlink.link} points out of the image; choose a destination that does not pass through it, or use an image without that link.`,
        details: { destination: i.dst, symlink: t.symlink.link, target: t.symlink.target },
      });
    }
    if (t.symlink) {
      skipped.push({ dst: i.dst, reason: t.reason, symlink: t.symlink });
      return;
    }
    if (i.kind === 'bind' && !i.optional) {
      throw new UsageError(`${i.origin}: cannot bind ${i.src} to ${i.dst}: ${t.reason}`, {
        hint: 'Choose a destination that exists in the image, or one below a directory that does.',
        details: { source: i.src, destination: i.dst },
      });
    }
    skipped.push({ dst: i.dst, reason: t.reason });
    return;
  }
  const dst = t.path;
  if (i.kind === 'bind') {
    r.ops.push({ op: 'bind', src: i.src, dst, readonly: i.readonly, ...(i.optional ? { optional: true } : {}) });
    r.mounted({ dst, kind: 'bind', src: i.src });
  } else if (i.kind === 'tmpfs') {
    r.ops.push({ op: 'tmpfs', dst, mode: i.mode, size: i.size });
    r.mounted({ dst, kind: 'tmpfs' });
  } else {
    r.ops.push({ op: 'proc', dst });
    r.mounted({ dst, kind: 'proc' });
  }
}

/** Generated /etc/passwd or /etc/group: placed when its directory can be made. */
function pushGenerated(r: TargetResolver, dst: string, content: string, skipped: Skipped[]): void {
  const dir = r.ensure(path.posix.dirname(dst), 'dir');
  if ('reason' in dir) {
    skipped.push({ dst, reason: dir.reason, ...(dir.symlink ? { symlink: dir.symlink } : {}) });
    return;
  }
  const at = path.posix.join(dir.path, path.posix.basename(dst));
  const cur = r.kindOf(at);
  if (cur.reason !== undefined) {
    skipped.push({ dst, reason: cur.reason, ...(cur.symlink ? { symlink: cur.symlink } : {}) });
    return;
  }
  if (cur.kind === null && cur.real !== at) {
    // a dangling symlink of the image: the file goes where it resolves, when that can be made
    const made = r.ensure(cur.real, 'file');
    if ('reason' in made) {
      skipped.push({ dst, reason: made.reason, ...(made.symlink ? { symlink: made.symlink } : {}) });
      return;
    }
    r.ops.push({ op: 'file', dst: made.path, content, mode: 0o644 });
    return;
  }
  if (cur.kind === 'dir') {
    skipped.push({ dst, reason: `${at} is a directory in the image` });
    return;
  }
  if (cur.kind === null && !r.writableAt(at)) {
    skipped.push({ dst, reason: `the image has no ${at}, and ${r.noOverlayWhy}` });
    return;
  }
  r.ops.push({ op: 'file', dst: cur.kind === null ? at : cur.real, content, mode: 0o644 });
}

/**
 * --fakeroot: the caller is root inside (uid and gid 0 mapped to theirs: one
 * id, no subordinate ids), named root in the generated passwd and group and
 * in USER/LOGNAME; planHome puts their home at /root. Capabilities are still
 * dropped: root inside owns what the caller owns (and the image's root files,
 * which the user namespace shows as theirs), nothing more.
 */
function asFakeRoot(input: BuildInput): BuildInput {
  const { host } = input;
  const shell = host.user?.shell ?? '/bin/sh';
  return {
    ...input,
    host: { ...host, uid: 0, gid: 0, user: { name: 'root', uid: 0, gid: 0, gecos: 'root', home: '/root', shell }, group: { name: 'root', gid: 0 } },
  };
}

/** Build the plan and the decisions behind it. */
export function buildLaunch(orig: BuildInput): BuiltLaunch {
  const input = orig.flags.fakeroot ? asFakeRoot(orig) : orig;
  const { image, host, flags, config } = input;
  const overlay = chooseOverlay(input);
  const home = planHome(input);
  const { intents } = planMounts(input, home);
  const r = new TargetResolver(input, overlay.methods.length > 0, overlay.why);
  const skipped: Skipped[] = [];
  for (const i of intents) pushMount(r, i, skipped);

  // Working directory: --pwd, else the host's when visible in the container, else $HOME, else /.
  let cwd: string;
  if (flags.pwd !== undefined) {
    if (!flags.pwd.startsWith('/')) throw new UsageError(`--pwd ${flags.pwd} is not an absolute path`, { hint: 'Give the working directory inside the container as an absolute path.' });
    cwd = normPath(flags.pwd);
  } else {
    const contain = isContained(flags, config);
    const hostCwd = normPath(host.cwd);
    if (!contain && r.kindOf(hostCwd).kind === 'dir') cwd = hostCwd;
    else if (home.mounted && r.kindOf(home.dst).kind === 'dir') cwd = home.dst;
    else cwd = '/';
  }

  const shellCandidate = host.env.SHELL;
  const shell = shellCandidate && shellCandidate.startsWith('/') && image.lookup(shellCandidate)?.kind === 'file' ? shellCandidate : '/bin/sh';
  if (config.mount.passwd && host.user) {
    pushGenerated(r, '/etc/passwd', generatePasswd(image.passwd, host.user, home.dst, shell), skipped);
    if (host.group) pushGenerated(r, '/etc/group', generateGroup(image.group, host.group, host.user.name), skipped);
  }

  const ops: MountOp[] = [...r.ops];
  if (r.overlay || flags.writableTmpfs) {
    // The helper makes a non-writable overlay read-only once every op ran.
    ops.unshift({
      op: 'overlay',
      dst: '/',
      writable: Boolean(flags.writableTmpfs),
      methods: overlay.methods,
      ...(overlay.fuseOverlayfs ? { fuseOverlayfs: overlay.fuseOverlayfs } : {}),
    });
  }
  // An extracted root is the user's own (writable) directory: make its bind
  // read-only before anything is mounted below it (the op is recursive).
  if (image.rootDir) ops.unshift({ op: 'remount-ro', dst: '/' });

  const stage = pickStage(host.stageDirs, intents);
  const env = planEnv(input, home.dst, cwd);
  const action = buildAction(flags.action, flags.args, image, env, shell, libsOnPath(image, ops));
  const uid: IdMap = { inside: host.uid, outside: orig.host.uid };
  const gid: IdMap = { inside: host.gid, outside: orig.host.gid };
  const plan: LaunchPlan = {
    version: PLAN_VERSION,
    uid,
    gid,
    pidNamespace: Boolean(flags.pid || flags.containAll),
    rootfs: rootfsOf(input, stage, uid, gid),
    stage,
    mounts: ops,
    cwd,
    env: action.env,
    argv: action.argv,
    commandIndex: action.commandIndex,
  };
  return { plan: freezePlan(plan), env, sourcesScripts: action.sourcesScripts, skipped };
}

/** The plan alone. */
export function buildPlan(input: BuildInput): Readonly<LaunchPlan> {
  return buildLaunch(input).plan;
}
