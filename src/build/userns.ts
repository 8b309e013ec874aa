/**
 * The unprivileged build container (issue 12, docs/build.md "Unprivileged
 * builds"): root inside, the caller outside.
 *
 * A BuildSession owns a work directory (the caller's temporary area; rootfs
 * trees live under it) and runs commands as root of a user namespace with
 * the session's id map (idmap.ts): `exec` for hpcc's own CLI (extraction,
 * packing: they then see and set the in-image owners), `runInRoot` for
 * %post/%test (chroot, /proc, /sys, /dev, resolv.conf, hosts), `remove` and
 * `close` for trees with subordinate-id owners the caller cannot delete.
 * Each call gets a fresh namespace with the same map (ns-spawn.ts).
 *
 * API notes for callers (additions to the brief's shape, nothing removed):
 *   - RunResult has optional `output` (stdout with stdio 'capture') and
 *     `collapsed` (single-id findings of runInRoot).
 *   - runInRoot's opts.args are the script's positional arguments;
 *     opts.shellFlags (default ['-e', '-x'], Apptainer's `sh -ex`) go
 *     before the script path.
 *   - remove(path) accepts only paths inside workDir.
 *   - closeOnSignals(session) wires SIGINT/SIGTERM to close() and exit.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { BuildEnvironmentError, UsageError, addContext } from '../errors/index.js';
import { removeTree } from '../util/remove-tree.js';
import { planIdMap, type IdMapPlan } from './idmap.js';
import { spawnInNamespace, findExecutable, type NsChild, type RunResult } from './ns-spawn.js';
import { CLEAN_PATH, RUN_IN_ROOT_SCRIPT, SCRIPT_PREFIX, collapseWarning, collapsedOwners, isCollapseLine, validEnvName } from './run-root.js';

export { planIdMap, type IdMapMode, type IdMapPlan } from './idmap.js';
export type { RunResult } from './ns-spawn.js';
export { bootstrapDebian } from './debootstrap.js';

export interface SessionOptions {
  workDir: string;
  idmap?: IdMapPlan;
  onWarn?: (msg: string) => void;
}

export interface ExecOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** 'inherit' (default): output copied to our stderr as it comes; 'capture': kept in RunResult.output */
  stdio?: 'inherit' | 'capture';
}

export interface RunInRootOptions {
  /** the image's shell (default /bin/sh) */
  shell?: string;
  /** flags before the script path (default ['-e', '-x']) */
  shellFlags?: string[];
  /** the script's positional arguments */
  args?: string[];
  /** added to the clean environment (PATH, HOME=/root, LANG=C) */
  env?: Record<string, string>;
  /** the section's name for messages (e.g. "%post") */
  label: string;
  stdio?: 'inherit' | 'capture';
}

export class BuildSession {
  readonly idmap: IdMapPlan;
  readonly workDir: string;
  private readonly onWarn: (msg: string) => void;
  private readonly live = new Set<NsChild>();
  private closed = false;
  private closing: Promise<void> | null = null;

  private constructor(workDir: string, idmap: IdMapPlan, onWarn: (msg: string) => void) {
    this.workDir = workDir;
    this.idmap = idmap;
    this.onWarn = onWarn;
  }

  /** A session over workDir (created 0700 when missing); checks once that the namespace starts. */
  static async create(opts: SessionOptions): Promise<BuildSession> {
    const idmap = opts.idmap ?? (await planIdMap());
    const dir = path.resolve(opts.workDir);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 }).catch((e) => {
      throw addContext(`create build work directory ${dir}`, e);
    });
    const s = new BuildSession(await fs.realpath(dir), idmap, opts.onWarn ?? ((m) => process.stderr.write(`Warning: ${m}\n`)));
    const probe = await s.spawn(['/bin/sh', '-c', '[ "$(id -u)" = 0 ]'], { pidns: false, forward: false, capture: false, env: process.env });
    if (probe.status !== 0) {
      throw new BuildEnvironmentError('HPCC_E_BUILD_USERNS', `the build namespace did not give root: ${probe.tail.trim() || `status ${probe.status}`}`, {
        hint: 'Run `hpcc doctor` to see what this node allows.',
      });
    }
    return s;
  }

  private async spawn(argv: string[], o: { pidns: boolean; forward: boolean; capture: boolean; env: NodeJS.ProcessEnv; cwd?: string; onLine?: (l: string) => void }): Promise<RunResult> {
    if (this.closed) throw new UsageError('the build session is closed');
    const c = await spawnInNamespace(argv, { plan: this.idmap, ...o });
    this.live.add(c);
    try {
      return await c.done;
    } finally {
      this.live.delete(c);
    }
  }

  /** Inside workDir (lexically, after resolving): the guard of remove(). */
  private inside(p: string): string {
    const abs = path.resolve(p);
    const rel = path.relative(this.workDir, abs);
    if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
      throw new UsageError(`${p} is not inside the build work directory ${this.workDir}`);
    }
    return abs;
  }

  /** An empty rootfs directory workDir/NAME (mode 0755, the caller's = root's in the namespace). */
  async newRoot(name: string): Promise<string> {
    if (!/^[A-Za-z0-9._-]+$/.test(name) || name === '.' || name === '..') throw new UsageError(`bad rootfs name ${JSON.stringify(name)}`);
    const p = path.join(this.workDir, name);
    await fs.mkdir(p, { mode: 0o755 }).catch((e) => {
      throw addContext(`create rootfs ${p}`, e);
    });
    await fs.chmod(p, 0o755);
    return p;
  }

  /** argv as root of the namespace, not chrooted (the caller's environment plus opts.env). */
  async exec(argv: string[], opts: ExecOptions = {}): Promise<RunResult> {
    if (argv.length === 0) throw new UsageError('exec needs a command');
    const capture = opts.stdio === 'capture';
    return this.spawn(argv, {
      pidns: false,
      forward: !capture,
      capture,
      env: { ...process.env, ...(opts.env ?? {}) },
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
    });
  }

  /** A script run inside rootfs (chroot) as root: %post, %test. See run-root.ts. */
  async runInRoot(rootfs: string, script: string, opts: RunInRootOptions): Promise<RunResult> {
    const root = await fs.realpath(rootfs).catch((e) => {
      throw addContext(`${opts.label}: rootfs ${rootfs}`, e);
    });
    const env: string[] = [`PATH=${CLEAN_PATH}`, 'HOME=/root', 'LANG=C'];
    for (const [k, v] of Object.entries(opts.env ?? {})) {
      if (!validEnvName(k)) throw new UsageError(`${opts.label}: bad environment variable name ${JSON.stringify(k)}`);
      env.push(`${k}=${v}`);
    }
    const chroot = findExecutable('chroot');
    if (!chroot) throw new BuildEnvironmentError('HPCC_E_BUILD_NO_TOOL', 'chroot (coreutils) is not installed', { hint: 'Install coreutils.' });
    const name = `${SCRIPT_PREFIX}${randomBytes(6).toString('hex')}`;
    const src = path.join(this.workDir, `${name}.src`);
    await fs.writeFile(src, script, { mode: 0o600, flag: 'wx' });
    const single = this.idmap.mode === 'single';
    const refused = { count: 0, examples: [] as string[] };
    const before = single ? await aptConfDir(root) : false;
    try {
      const cmd = ['env', '-i', ...env, chroot, root, opts.shell ?? '/bin/sh', ...(opts.shellFlags ?? ['-e', '-x']), `/${name}`, ...(opts.args ?? [])];
      const r = await this.spawn(['/bin/sh', '-c', RUN_IN_ROOT_SCRIPT, 'hpcc-run', root, src, name, single ? '1' : '0', ...cmd], {
        pidns: true,
        forward: opts.stdio !== 'capture',
        capture: opts.stdio === 'capture',
        env: { PATH: CLEAN_PATH, LANG: 'C' },
        cwd: this.workDir,
        onLine: (l) => {
          if (single && isCollapseLine(l)) {
            refused.count++;
            if (refused.examples.length < 3) refused.examples.push(l);
          }
        },
      });
      if (single) {
        r.collapsed = await collapsedOwners(root, refused, before);
        this.onWarn(collapseWarning(opts.label, this.idmap.reason, r.collapsed));
      }
      return r;
    } finally {
      await fs.rm(src, { force: true });
    }
  }

  /** rm -rf PATH inside the namespace (PATH must be inside workDir). */
  async remove(p: string): Promise<void> {
    const abs = this.inside(p);
    const r = await this.spawn(['rm', '-rf', '--', abs], { pidns: false, forward: false, capture: false, env: { PATH: CLEAN_PATH } });
    if (r.status !== 0) {
      throw new BuildEnvironmentError('HPCC_E_BUILD_REMOVE', `could not remove ${abs}: ${r.tail.trim()}`, { hint: 'Remove it with `hpcc` again or ask the administrator.' });
    }
  }

  /** Kill every running command, remove workDir (inside the namespace, then as ourselves). Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const c of this.live) c.kill();
      await Promise.all([...this.live].map((c) => c.done.catch(() => null)));
      try {
        const r = await spawnInNamespace(['rm', '-rf', '--', this.workDir], { plan: this.idmap, pidns: false, forward: false, capture: false, env: { PATH: CLEAN_PATH } });
        await r.done;
      } catch {
        /* fall back to removing what we can as ourselves */
      }
      this.closed = true;
      removeTree(this.workDir);
    })();
    return this.closing;
  }
}

async function aptConfDir(root: string): Promise<boolean> {
  let cur = root;
  for (const c of ['etc', 'apt', 'apt.conf.d']) {
    cur = path.join(cur, c);
    try {
      if (!(await fs.lstat(cur)).isDirectory()) return false;
    } catch {
      return false;
    }
  }
  return true;
}

/**
 * SIGINT/SIGTERM close the session (every temporary tree removed) and end the
 * process with 130/143. Returns the function that unhooks the handlers.
 */
export function closeOnSignals(session: BuildSession): () => void {
  const handler = (sig: NodeJS.Signals) => {
    void session.close().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}
