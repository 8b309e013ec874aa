/**
 * Launch memos: a plan built once for a command line, kept with the host
 * facts it was built from, so that the native front end (native/front,
 * dist/native/hpcc) can run the same launch again without Node when nothing
 * it depends on has changed. docs/launcher.md, "Launch memos", has the design.
 *
 * The front computes the memo's name from the key material below, and when
 * it finds no valid memo it runs Node with HPCC_MEMO_OUT=<memo path> in the
 * environment (bin/run.js removes it before anything reads the environment).
 * After a launch whose setup succeeded, hpcc writes the memo there.
 *
 * File format (version 1), sections "<tag> <length>\n<bytes>", the first
 * two followed by "\n", the plan last and running to the end of the file:
 *
 *   HPCCMEMO1\n
 *   key <n>\n<key material>\n
 *   facts <n>\n<fact records>\n
 *   plan <n>\n<encoded plan (codec.ts wire format)>
 *
 * Key material: NUL-terminated fields, byte for byte what native/front
 * computes: "hpcc-memo/1", "build", the identities of the launch helper,
 * the launch bundle and dist/src/cli/fast-launch.js, "ids", uid, gid,
 * "release", the kernel release, "host", the node name (a home directory
 * shared by many nodes keeps one memo per node), "cwd", the working directory, "argv", the
 * count and the arguments after `hpcc` (for exec: up to the image, the
 * command being replaced at the plan's commandIndex; otherwise all of them),
 * "env", the count and every variable of the environment in order: K=V for
 * names keyed by value (envKeyedByValue), the bare name K for the others.
 * Their values only pass through into the payload's environment (checked
 * before a memo is written: hostEnvPassesThrough), so a memo serves any
 * values and the launch helper's --host-env puts the current ones in.
 * A launch whose environment has a variable keyed by value with a
 * credential-like name (envIsCredential: APPTAINER_DOCKER_PASSWORD...) is
 * not memoised at all, by the front nor here: a memo never holds a secret.
 *
 * Memos live in <cache root>/launch (src/util/cache-root.ts, the front's
 * cache_root() computes the same), a directory of ours checked before use;
 * they are staged under a random name opened O_EXCL|O_NOFOLLOW and renamed
 * into place; staging files older than an hour are pruned.
 *
 * Fact records: NUL-separated fields, each record ending in "\n":
 *   id PATH STATE     stat(PATH): "absent" or dev:ino:size:mtime_ns:ctime_ns
 *   look PATH STATE   realpath(PATH) then stat: "absent" or KIND:REAL (dir|file|other)
 *   acc PATH MODE OK  access(PATH, MODE) succeeded ("1") or not ("0")
 *   own PATH UID      lstat(PATH) is a directory owned by UID
 *   sum PATH HEX      FNV-1a 64 of the file's first MiB (e.g. /proc/filesystems)
 * Any fact that no longer holds makes the front ignore the memo.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodePlan } from './codec.js';
import type { LaunchPlan } from './plan.js';
import { CACHE_LAYOUT, cacheRoot, ensureCacheDir } from '../util/cache-root.js';
import { installRoot } from '../util/install-root.js';

/** Facts a plan was built from, recorded while the host facts are gathered. */
export interface FactRecorder {
  /** a file whose contents matter (stat identity; absent allowed) */
  id(p: string): void;
  /** a path look-up (realpath + kind) */
  look(p: string, result: { kind: string; real: string } | null): void;
  /** an access(2) check and its outcome */
  acc(p: string, mode: number, ok: boolean): void;
  /** a directory that must stay ours (lstat: directory owned by uid) */
  own(p: string, uid: number): void;
  /** a small file whose contents matter and whose stat says nothing (procfs) */
  sum(p: string): void;
  /** the plan rests on something a memo cannot check (getent, an unreadable file...) */
  spoil(why: string): void;
}

export const MEMO_MAGIC = 'HPCCMEMO1\n';
/** The key material's first field: its format's version. */
export const MEMO_KEY_VERSION = 'hpcc-memo/1';
export const MEMO_MAX_BYTES = 4 << 20;
/** How much of a `sum` fact's file is hashed. */
export const MEMO_SUM_BYTES = 1 << 20;

/** FNV-1a 64 as 16 hex digits (native/front/front.c has the same). */
export function fnv64(data: Uint8Array): string {
  let h = 0xcbf29ce484222325n;
  const p = 0x100000001b3n;
  for (const b of data) h = BigInt.asUintN(64, (h ^ BigInt(b)) * p);
  return h.toString(16).padStart(16, '0');
}

function identity(p: string): string | null {
  try {
    const s = fs.statSync(p, { bigint: true });
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? 'absent' : null;
  }
}

/** Collects facts; `spoiled` says why no memo may be written. */
export class MemoFacts implements FactRecorder {
  readonly records: string[] = [];
  spoiled: string | null = null;
  /**
   * The plan as the memo stores it (withoutHostValues), after the pass-through
   * check (hostEnvPassesThrough; a failure spoils the memo: null). Set by
   * prepareLaunch, run by launch() once the helper is started.
   */
  planToStore?: () => LaunchPlan | null;
  private readonly seen = new Set<string>();
  private add(...fields: string[]): void {
    if (fields.some((f) => f.includes('\0') || f.includes('\n'))) return this.spoil(`a path with NUL or newline: ${JSON.stringify(fields[1])}`);
    const rec = fields.join('\0') + '\n';
    if (!this.seen.has(rec)) this.records.push(rec);
    this.seen.add(rec);
  }
  id(p: string): void {
    const st = identity(p);
    if (st === null) this.spoil(`cannot stat ${p}`);
    else this.add('id', p, st);
  }
  look(p: string, r: { kind: string; real: string } | null): void {
    this.add('look', p, r ? `${r.kind}:${r.real}` : 'absent');
  }
  acc(p: string, mode: number, ok: boolean): void {
    this.add('acc', p, String(mode), ok ? '1' : '0');
  }
  own(p: string, uid: number): void {
    this.add('own', p, String(uid));
  }
  sum(p: string): void {
    let fd: number | undefined;
    try {
      fd = fs.openSync(p, 'r');
      const buf = Buffer.alloc(MEMO_SUM_BYTES);
      let n = 0;
      for (let r; n < MEMO_SUM_BYTES && (r = fs.readSync(fd, buf, n, MEMO_SUM_BYTES - n, null)) > 0; ) n += r;
      this.add('sum', p, fnv64(buf.subarray(0, n)));
    } catch {
      this.spoil(`cannot read ${p}`);
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }
  spoil(why: string): void {
    this.spoiled ??= why;
  }
}

/**
 * The install's files whose identities make the build part of the key: the helper, the launch
 * bundle, its compiled entry; in the release (docs/release.md: no dist/src/cli/fast-launch.js) the
 * helper and the single-executable application that holds all of the JavaScript
 * (dist/native/hpcc-node), or in a --few-files release the helper, its launch bundle
 * (dist/launch.js) and the bundle of the rest (dist/hpcc.js: the launch path's cold modules).
 * native/front/front.c applies the same rule.
 */
export function buildFiles(helper: string, root = installRoot()): string[] {
  const cli = path.join(root, 'dist', 'src', 'cli');
  if (!fs.existsSync(path.join(cli, 'fast-launch.js'))) {
    const sea = path.join(root, 'dist', 'native', 'hpcc-node'); // a SEA release: the JavaScript is in it
    return fs.existsSync(sea) ? [helper, sea] : [helper, path.join(root, 'dist', 'launch.js'), path.join(root, 'dist', 'hpcc.js')];
  }
  return [helper, path.join(cli, 'fast-launch.bundle.js'), path.join(cli, 'fast-launch.js')];
}

/**
 * Names whose values are part of a memo's key. The native front and the
 * helper's --host-env apply the same rule (native/envrule.h) to these lists,
 * which reach them through the generated header (cli/contract-header.ts).
 */
export const ENV_KEYED_PREFIXES: readonly string[] = Object.freeze(['HPCC', '__HPCC', 'SINGULARITY', 'APPTAINER', 'XDG_', 'LD_', 'NODE_', 'UV_']);
export const ENV_KEYED_NAMES: readonly string[] = Object.freeze(['HOME', 'PATH', 'TMPDIR', 'SHELL', 'USER', 'LOGNAME', 'PWD', 'PS1']);
/** Names of this many bytes or more are keyed by value (as is the empty name). */
export const ENV_NAME_KEYED_BYTES = 256;

export function envKeyedByValue(name: string): boolean {
  return name.length === 0 || Buffer.byteLength(name) >= ENV_NAME_KEYED_BYTES || ENV_KEYED_PREFIXES.some((p) => name.startsWith(p)) || ENV_KEYED_NAMES.includes(name);
}

/**
 * native/envrule.h: words (matched in any case, anywhere in the name) that
 * make a variable keyed by value a credential: a launch with one set is not
 * memoised, since the memo would hold its value (key and plan).
 */
export const ENV_CREDENTIAL_WORDS = ['PASSW', 'PASSPHRASE', 'TOKEN', 'SECRET', 'CRED', 'AUTH', 'KEY', 'USERNAME', 'LOGIN', 'COOKIE'];

export function envIsCredential(name: string): boolean {
  const up = name.replace(/[a-z]/g, (c) => c.toUpperCase()); // ASCII only, as envrule.h
  return envKeyedByValue(name) && ENV_CREDENTIAL_WORDS.some((w) => up.includes(w));
}

/** The first variable that keeps a launch from being memoised (envIsCredential), or null. */
export function credentialInEnv(env: Record<string, string | undefined>): string | null {
  return Object.keys(env).find((n) => env[n] !== undefined && envIsCredential(n)) ?? null;
}

const HOST_PREFIX = '__HPCC_HOST_';

/**
 * Whether every host variable keyed by name only reaches the plan as a
 * copy of its value and nothing else does: `rebuild` builds the plan again
 * from an environment where each such value is replaced by a marker, and
 * the two plans must differ exactly in those entries (NAME=V or
 * __HPCC_HOST_NAME=V, what the helper's --host-env rewrites). Returns why
 * not, or null.
 */
export function hostEnvPassesThrough(
  plan: LaunchPlan,
  hostEnv: Record<string, string>,
  rebuild: (env: Record<string, string>) => LaunchPlan,
): string | null {
  const marked: Record<string, string> = {};
  let i = 0;
  for (const [k, v] of Object.entries(hostEnv)) marked[k] = envKeyedByValue(k) ? v : `\u0001hpcc-memo-${i++}\u0001`;
  let again: LaunchPlan;
  try {
    again = rebuild(marked);
  } catch (e) {
    return `the plan cannot be rebuilt with other values: ${(e as Error).message}`;
  }
  const { env: a, ...restA } = plan;
  const { env: b, ...restB } = again;
  if (JSON.stringify(restA) !== JSON.stringify(restB) || a.length !== b.length) return 'a variable value shapes the plan';
  for (let j = 0; j < a.length; j++) {
    const eq = a[j]!.indexOf('=');
    const name = eq < 0 ? a[j]! : a[j]!.slice(0, eq);
    const v = name.startsWith(HOST_PREFIX) ? name.slice(HOST_PREFIX.length) : name;
    if (!envKeyedByValue(v) && Object.prototype.hasOwnProperty.call(hostEnv, v)) {
      if (a[j] !== `${name}=${hostEnv[v]}` || b[j] !== `${name}=${marked[v]}`) return `${v} does not pass through unchanged`;
    } else if (a[j] !== b[j]) return `${name} depends on another variable's value`;
  }
  return null;
}

/**
 * The plan as a memo stores it: the values of host variables keyed by name
 * only are left out (NAME= / __HPCC_HOST_NAME=), since the helper's
 * --host-env puts the current ones in anyway, so a memo never holds a
 * token or password the user's environment happened to carry.
 */
export function withoutHostValues(plan: LaunchPlan, hostEnv: Record<string, string>): LaunchPlan {
  const env = plan.env.map((e) => {
    const eq = e.indexOf('=');
    if (eq < 0) return e;
    const name = e.slice(0, eq);
    const v = name.startsWith(HOST_PREFIX) ? name.slice(HOST_PREFIX.length) : name;
    return !envKeyedByValue(v) && Object.prototype.hasOwnProperty.call(hostEnv, v) ? `${name}=` : e;
  });
  return { ...plan, env };
}

export interface KeyInput {
  build: string[];
  uid: number;
  gid: number;
  cwd: string;
  argv: string[];
  env: Record<string, string | undefined>;
}

/** The key material (see the header); null when a build file cannot be identified or a credential is set. */
export function keyMaterial(k: KeyInput): Buffer | null {
  if (credentialInEnv(k.env) !== null) return null;
  const fields = [MEMO_KEY_VERSION, 'build'];
  for (const f of k.build) {
    const st = identity(f);
    if (st === null || st === 'absent') return null;
    fields.push(st);
  }
  fields.push('ids', String(k.uid), String(k.gid), 'release', os.release(), 'host', os.hostname(), 'cwd', k.cwd, 'argv', String(k.argv.length), ...k.argv);
  const env = Object.entries(k.env).filter((e): e is [string, string] => e[1] !== undefined);
  fields.push('env', String(env.length), ...env.map(([n, v]) => (envKeyedByValue(n) ? `${n}=${v}` : n)));
  return Buffer.from(fields.map((f) => `${f}\0`).join(''), 'utf8');
}

/** The key of a command line this process runs (its ids, working directory and environment); null as for keyMaterial. */
export function processKey(argv: string[], helper: string): Buffer | null {
  return keyMaterial({ build: buildFiles(helper), uid: process.getuid!(), gid: process.getgid!(), cwd: process.cwd(), argv, env: process.env });
}

/** The memo of `key` where the native front looks for it: <cache root>/launch/<fnv64>.memo (made and checked). */
export const memoFileFor = (key: Buffer): string => path.join(memoDir(), `${fnv64(key)}.memo`);

/** The memo's bytes; null when it would exceed MEMO_MAX_BYTES. */
export function encodeMemo(key: Buffer, facts: MemoFacts, plan: LaunchPlan): Buffer | null {
  return memoBytes(key, facts, encodePlan(plan));
}

/**
 * Command memos: commands after `hpcc` whose whole work is to compute one
 * command line and run it (the login side of hpcc-srun: the step's srun
 * command, from the job's pin or a pinned --image). The front keys them as
 * it keys a launch, over the arguments up to the first `--` (src/slurm/srun.ts
 * writes them) and, when one holds, execs its command line followed by the
 * arguments after that `--` instead of starting Node. Their plan section is
 * COMMAND_MEMO_TAG then the arguments, each NUL-terminated.
 * native/front gets the list through the generated header.
 */
export const COMMAND_MEMOS: readonly string[] = Object.freeze(['slurm srun', 'slurm mpirun']);
export const COMMAND_MEMO_TAG = 'exec-argv/1';

/** A command memo's bytes (see COMMAND_MEMOS); null when too large or an argument holds a NUL. */
export function encodeCommandMemo(key: Buffer, facts: MemoFacts, argv: string[]): Buffer | null {
  if (argv.length === 0 || argv.some((a) => a.includes('\0'))) return null;
  return memoBytes(key, facts, Buffer.from([COMMAND_MEMO_TAG, ...argv].map((a) => `${a}\0`).join(''), 'utf8'));
}

function memoBytes(key: Buffer, facts: MemoFacts, planBytes: Uint8Array): Buffer | null {
  const factBytes = Buffer.from(facts.records.join(''), 'utf8');
  const out = Buffer.concat([
    Buffer.from(`${MEMO_MAGIC}key ${key.length}\n`),
    key,
    Buffer.from(`\nfacts ${factBytes.length}\n`),
    factBytes,
    Buffer.from(`\nplan ${planBytes.length}\n`),
    planBytes,
  ]);
  return out.length > MEMO_MAX_BYTES ? null : out;
}

/** Memos kept per user; the oldest beyond this are removed when one is written. */
export const MEMO_KEEP = 256;

/** A memo written to a temp file beside `file`, put in place once the launch's setup has succeeded. */
export interface StagedMemo {
  commit(): boolean;
  discard(): void;
}

/** The memo directory, <cache root>/launch, made and checked (cache-root.ts). */
export function memoDir(env: Record<string, string | undefined> = process.env): string {
  return ensureCacheDir(cacheRoot(env), CACHE_LAYOUT.launch);
}

/** A memo's staging file: `<memo>.<pid>-<random>.tmp` (the pid for `hpcc cache clean`). */
export const MEMO_TEMP_RE = /\.memo\.(\d+)-[a-f0-9]{16}\.tmp$/;
/** Staging files older than this are left by a dead launch (a memo is staged in milliseconds). */
export const MEMO_TEMP_STALE_MS = 3_600_000;

/**
 * Write the memo's bytes to a temp file beside `file` (a random name, opened
 * O_CREAT|O_EXCL|O_NOFOLLOW mode 0600, in the checked memo directory, which
 * `file` must be in): called while the launch helper sets up, so the write
 * overlaps it; commit() renames it into place (and prunes old memos and
 * stale staging files), discard() removes it. Best effort: a memo is an
 * optimisation, so failures are silent (null, or commit() false).
 */
export function stageMemo(file: string, bytes: Buffer): StagedMemo | null {
  const dir = path.dirname(file);
  const tmp = `${file}.${process.pid}-${randomBytes(8).toString('hex')}.tmp`;
  let made = false;
  const discard = () => {
    try {
      if (made) fs.rmSync(tmp, { force: true });
    } catch {
      /* nothing to remove */
    }
  };
  let fd: number | undefined;
  try {
    // the front and hpcc must agree on the directory (HPCC_MEMO_OUT comes from the front)
    if (path.resolve(dir) !== memoDir() || !/^[a-f0-9]{16}\.memo$/.test(path.basename(file))) return null;
    const c = fs.constants;
    fd = fs.openSync(tmp, c.O_CREAT | c.O_EXCL | c.O_NOFOLLOW | c.O_WRONLY, 0o600);
    made = true;
    for (let off = 0; off < bytes.length; ) off += fs.writeSync(fd, bytes, off, bytes.length - off);
  } catch {
    discard();
    return null;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
  return {
    commit() {
      try {
        fs.renameSync(tmp, file);
      } catch {
        discard();
        return false;
      }
      pruneMemos(dir);
      return true;
    },
    discard,
  };
}

/** Remove staging files of ours older than MEMO_TEMP_STALE_MS (a launch killed while staging). */
export function pruneMemoTemps(dir: string, now = Date.now()): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith('.tmp'));
  } catch {
    return;
  }
  for (const n of names) {
    try {
      const st = fs.lstatSync(path.join(dir, n));
      if (st.uid === process.geteuid?.() && now - st.mtimeMs > MEMO_TEMP_STALE_MS) fs.unlinkSync(path.join(dir, n));
    } catch {
      /* gone meanwhile */
    }
  }
}

function pruneMemos(dir: string): void {
  pruneMemoTemps(dir);
  try {
    const names = fs.readdirSync(dir).filter((n) => n.endsWith('.memo'));
    if (names.length <= MEMO_KEEP) return;
    const aged = names.map((n) => ({ n, t: fs.statSync(path.join(dir, n)).mtimeMs })).sort((a, b) => a.t - b.t);
    for (const { n } of aged.slice(0, aged.length - MEMO_KEEP)) fs.rmSync(path.join(dir, n), { force: true });
  } catch {
    /* another launch pruned it */
  }
}
