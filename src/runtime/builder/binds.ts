/**
 * Which host paths appear in the container, and where: the default binds
 * (Apptainer's set plus /scratch), config binds, HPCC_BIND, -B/--bind,
 * --mount, -W/--workdir, -H/--home, --no-home, -c/--contain, -C/--containall and
 * --nv/--rocm (gpu.ts) and the host's RDMA devices (rdma.ts). Pure: host paths
 * are checked through HostFacts.lookup. The result is an ordered list of
 * mount intents; targets.ts turns them into the helper's MountOps.
 */
import * as path from 'node:path';
import { UsageError } from '../../errors/index.js';
import { gpuIntents } from './gpu.js';
import { rdmaIntents } from './rdma.js';
import type { BuildInput, LaunchConfig, LaunchFlags, PathKind } from './types.js';

export type MountIntent =
  | {
      kind: 'bind';
      src: string;
      dst: string;
      readonly: boolean;
      /** what the source is (dir or file): decides the placeholder made for a missing target */
      srcKind: PathKind;
      /** default binds are skipped when they cannot be made; user binds fail */
      optional: boolean;
      /** where the bind came from, for messages: "default", "config", "HPCC_BIND", "--bind", "--mount", "--home", "--workdir" */
      origin: string;
    }
  | { kind: 'tmpfs'; dst: string; mode: number; size: number; origin: string }
  | { kind: 'proc'; dst: string; origin: string };

export interface BindSpec {
  src: string;
  dst: string;
  readonly: boolean;
}

const SYSTEM_DIRS = ['/', '/bin', '/boot', '/dev', '/etc', '/lib', '/lib32', '/lib64', '/libx32', '/proc', '/root', '/run', '/sbin', '/sys', '/usr', '/var'];

/** Normalise an absolute container or host path ("/a//b/../c/" → "/a/c"). */
export function normPath(p: string): string {
  const n = path.posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/** Is `p` equal to `dir` or below it? */
export function isUnder(p: string, dir: string): boolean {
  return p === dir || dir === '/' || p.startsWith(dir + '/');
}

/**
 * Parse one -B/--bind value: a comma list of `src[:dst[:ro|rw]]`. A relative
 * source is taken from `cwd`. Throws UsageError for malformed entries.
 */
export function parseBindList(value: string, cwd: string, origin: string): BindSpec[] {
  const out: BindSpec[] = [];
  for (const raw of value.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const parts = item.split(':');
    if (parts.length > 3 || parts[0] === '') {
      throw new UsageError(`${origin}: cannot parse bind "${item}"`, {
        hint: 'Write binds as SRC[:DST[:ro|rw]], several separated by commas, e.g. -B /data:/mnt:ro,/scratch',
      });
    }
    const [src, dstRaw, opt] = parts as [string, string | undefined, string | undefined];
    if (opt !== undefined && opt !== 'ro' && opt !== 'rw') {
      throw new UsageError(`${origin}: unknown bind option "${opt}" in "${item}"`, { hint: 'The bind option is "ro" (read-only) or "rw" (read-write, the default).' });
    }
    const absSrc = normPath(path.posix.resolve(cwd, src));
    const dst = dstRaw === undefined || dstRaw === '' ? absSrc : dstRaw;
    if (!dst.startsWith('/')) {
      throw new UsageError(`${origin}: bind destination "${dst}" is not an absolute path`, { hint: 'Give the container path as an absolute path, e.g. -B ./data:/data' });
    }
    if (src.includes('\0') || dst.includes('\0')) throw new UsageError(`${origin}: NUL byte in bind "${item}"`);
    out.push({ src: absSrc, dst: normPath(dst), readonly: opt === 'ro' });
  }
  return out;
}

/** Split one CSV record: fields separated by commas, a field may be "double-quoted" ("" inside is a quote). */
function csvFields(value: string, origin: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (quoted) {
      if (c === '"' && value[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  if (quoted) throw new UsageError(`${origin}: unbalanced quote in "${value}"`, { hint: 'Close the double quote, e.g. --mount "type=bind,src=/a,b,dst=/x"' });
  out.push(cur);
  return out;
}

const MOUNT_HINT = 'Write --mount type=bind,source=/host/path,destination=/container/path[,ro] (src/dst/target are accepted; quote a field holding a comma).';

/**
 * Parse one --mount value (Docker's and Apptainer's syntax): comma-separated
 * key=value fields, CSV-quoted where a value holds a comma: type=bind
 * (required; the only type), source|src, destination|dst|target, and
 * ro|readonly (alone, or =true/false). A relative source is taken from `cwd`.
 * Paths may hold ':' (what -B cannot express).
 */
export function parseMount(value: string, cwd: string, origin = '--mount'): BindSpec {
  let type: string | undefined;
  let src: string | undefined;
  let dst: string | undefined;
  let readonly = false;
  for (const field of csvFields(value, origin)) {
    const f = field.trim();
    if (f === '') continue;
    const eq = f.indexOf('=');
    const key = (eq < 0 ? f : f.slice(0, eq)).toLowerCase();
    const v = eq < 0 ? undefined : f.slice(eq + 1);
    if (key === 'type') type = v;
    else if (key === 'source' || key === 'src') src = v;
    else if (key === 'destination' || key === 'dst' || key === 'target') dst = v;
    else if (key === 'ro' || key === 'readonly') {
      if (v !== undefined && !['true', 'false', '1', '0'].includes(v.toLowerCase())) {
        throw new UsageError(`${origin}: ${key}=${v} in "${value}": expected true or false`, { hint: MOUNT_HINT });
      }
      readonly = v === undefined || ['true', '1'].includes(v.toLowerCase());
    } else if (key === 'bind-propagation') {
      if (v !== 'rprivate' && v !== 'private') {
        throw new UsageError(`${origin}: bind-propagation=${v ?? ''} is not supported (mounts are private to the container)`, { hint: MOUNT_HINT });
      }
    } else {
      throw new UsageError(`${origin}: unknown field "${key}" in "${value}"`, { hint: MOUNT_HINT });
    }
  }
  if (type !== 'bind') {
    throw new UsageError(`${origin}: ${type === undefined ? 'no type= in' : `type=${type} is not supported in`} "${value}"; hpcc mounts type=bind`, { hint: MOUNT_HINT });
  }
  if (!src || !dst) throw new UsageError(`${origin}: "${value}" needs both a source and a destination`, { hint: MOUNT_HINT });
  if (!dst.startsWith('/')) throw new UsageError(`${origin}: destination "${dst}" is not an absolute path`, { hint: MOUNT_HINT });
  if (src.includes('\0') || dst.includes('\0')) throw new UsageError(`${origin}: NUL byte in "${value}"`);
  return { src: normPath(path.posix.resolve(cwd, src)), dst: normPath(dst), readonly };
}

/** -W/--workdir as an absolute host path, and its subdirectories for /tmp, /var/tmp and (with --contain) $HOME. */
export function workdirPaths(workdir: string, cwd: string): { root: string; tmp: string; varTmp: string; home: string } {
  const root = normPath(path.posix.resolve(cwd, workdir));
  return { root, tmp: path.posix.join(root, 'tmp'), varTmp: path.posix.join(root, 'var_tmp'), home: path.posix.join(root, 'home') };
}

/** -c/--contain, -C/--containall or `[launch] contain`: minimal /dev, empty /tmp, /var/tmp and $HOME. */
export function isContained(flags: LaunchFlags, config: LaunchConfig): boolean {
  return Boolean(flags.contain || flags.containAll || config.contain);
}

/** Parse -H/--home `src[:dst]`. */
export function parseHome(value: string, cwd: string): { src: string; dst: string } {
  const parts = value.split(':');
  if (parts.length > 2 || parts[0] === '') {
    throw new UsageError(`--home: cannot parse "${value}"`, { hint: 'Write --home SRC[:DST], e.g. --home /scratch/me:/home/me' });
  }
  const src = normPath(path.posix.resolve(cwd, parts[0]!));
  const dst = parts[1] ? parts[1] : src;
  if (!dst.startsWith('/')) throw new UsageError(`--home: destination "${dst}" is not an absolute path`);
  return { src, dst: normPath(dst) };
}

/** The container's home directory and whether (and from where) it is mounted. */
export interface HomePlan {
  /** $HOME inside the container */
  dst: string;
  /** host source; null: an empty tmpfs (contain) or not mounted (no-home) */
  src: string | null;
  mounted: boolean;
}

export function planHome(input: BuildInput): HomePlan {
  const { host, flags, config } = input;
  const contain = isContained(flags, config);
  if (flags.home !== undefined) {
    const h = parseHome(flags.home, host.cwd);
    return { dst: h.dst, src: h.src, mounted: !flags.noHome };
  }
  const home = normPath(host.home || '/');
  const dst = flags.fakeroot ? '/root' : home; // --fakeroot: root's home is /root
  if (flags.noHome || !config.mount.home || home === '/') return { dst, src: null, mounted: false };
  if (contain && flags.workdir !== undefined) return { dst, src: workdirPaths(flags.workdir, host.cwd).home, mounted: true };
  if (contain) return { dst, src: null, mounted: true };
  return { dst, src: home, mounted: true };
}

function userBind(input: BuildInput, b: BindSpec, origin: string): MountIntent {
  const info = input.host.lookup(b.src);
  if (!info) {
    throw new UsageError(`${origin}: bind source ${b.src} does not exist`, {
      hint: `Create ${b.src} on the host or correct the path in ${origin === '--bind' ? 'the -B/--bind option' : origin}.`,
      details: { source: b.src, destination: b.dst },
    });
  }
  return { kind: 'bind', src: info.real, dst: b.dst, readonly: b.readonly, srcKind: info.kind, optional: false, origin };
}

function defaultBind(input: BuildInput, src: string, dst: string, readonly: boolean, origin = 'default'): MountIntent | null {
  const info = input.host.lookup(src);
  if (!info) return null;
  return { kind: 'bind', src: info.real, dst, readonly, srcKind: info.kind, optional: true, origin };
}

const DEV_NODES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];

/** All mount intents, in the order the helper must perform them. */
export function planMounts(input: BuildInput, home: HomePlan): { intents: MountIntent[]; cwdBound: boolean } {
  const { host, flags, config } = input;
  const m = config.mount;
  const contain = isContained(flags, config);
  const out: MountIntent[] = [];
  const push = (i: MountIntent | null): void => {
    if (i) out.push(i);
  };

  // System file systems first.
  if (m.dev) {
    if (contain) {
      out.push({ kind: 'tmpfs', dst: '/dev', mode: 0o755, size: 1 << 20, origin: 'default (--contain)' });
      for (const n of DEV_NODES) push(defaultBind(input, `/dev/${n}`, `/dev/${n}`, false));
      push(defaultBind(input, '/dev/pts', '/dev/pts', false));
      out.push({ kind: 'tmpfs', dst: '/dev/shm', mode: 0o1777, size: 0, origin: 'default (--contain)' });
    } else {
      push(defaultBind(input, '/dev', '/dev', false));
    }
  }
  if (m.proc) out.push({ kind: 'proc', dst: '/proc', origin: 'default' });
  if (m.sys) push(defaultBind(input, '/sys', '/sys', false));
  for (const [f, on] of [
    ['/etc/hosts', m.hosts],
    ['/etc/localtime', m.localtime],
    ['/etc/resolv.conf', m.resolv],
  ] as const) {
    if (on) push(defaultBind(input, f, f, true));
  }
  if (m.tmp) {
    const wd = flags.workdir !== undefined ? workdirPaths(flags.workdir, host.cwd) : null;
    for (const t of ['/tmp', '/var/tmp']) {
      if (wd) out.push(userBind(input, { src: t === '/tmp' ? wd.tmp : wd.varTmp, dst: t, readonly: false }, '--workdir'));
      else if (contain) out.push({ kind: 'tmpfs', dst: t, mode: 0o1777, size: 0, origin: 'default (--contain)' });
      else push(defaultBind(input, t, t, false));
    }
  }
  if (home.mounted) {
    if (home.src === null) {
      out.push({ kind: 'tmpfs', dst: home.dst, mode: 0o755, size: 0, origin: 'default (--contain)' });
    } else if (flags.home !== undefined) {
      out.push(userBind(input, { src: home.src, dst: home.dst, readonly: false }, '--home'));
    } else {
      push(defaultBind(input, home.src, home.dst, false));
    }
  }
  if (m.scratch && !contain) push(defaultBind(input, '/scratch', '/scratch', false));
  if ((flags.nv || flags.rocm) && host.gpu) out.push(...gpuIntents(host.gpu, contain));
  out.push(...rdmaIntents(input, contain));

  // Site/user config binds, then HPCC_BIND, then -B (Apptainer's order).
  for (const v of config.bindPaths) for (const b of parseBindList(v, host.cwd, 'config bind path')) out.push(userBind(input, b, 'config'));
  const envBind = host.env.HPCC_BIND;
  if (envBind) for (const b of parseBindList(envBind, host.cwd, 'HPCC_BIND')) out.push(userBind(input, b, 'HPCC_BIND'));
  for (const v of flags.bind) for (const b of parseBindList(v, host.cwd, '--bind')) out.push(userBind(input, b, '--bind'));
  for (const v of flags.mount ?? []) out.push(userBind(input, parseMount(v, host.cwd), '--mount'));

  // The working directory, unless it is already visible or a system path.
  let cwdBound = false;
  const cwd = normPath(host.cwd);
  if (m.cwd && !contain && !SYSTEM_DIRS.includes(cwd) && !SYSTEM_DIRS.some((d) => d !== '/' && isUnder(cwd, d))) {
    const covered = out.some((i) => i.kind === 'bind' && i.src === i.dst && isUnder(cwd, i.src));
    if (covered) cwdBound = true;
    else {
      const b = defaultBind(input, cwd, cwd, false);
      if (b) {
        out.push(b);
        cwdBound = true;
      }
    }
  }
  return { intents: out, cwdBound };
}
