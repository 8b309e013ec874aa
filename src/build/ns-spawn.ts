/**
 * Start a command as root of a fresh user namespace (and mount namespace,
 * optionally a PID namespace) with the build's id map.
 *
 * util-linux `unshare --user` creates the namespaces and execs a tiny /bin/sh
 * that says "ready" on fd 3 and waits there; meanwhile the parent writes the
 * maps: newuidmap/newgidmap PID for subordinate ids (no `--map-auto`, which
 * util-linux before 2.38 lacks), or /proc/PID/{setgroups,uid_map,gid_map}
 * itself for a single id (and as real root). Then it says "go" and the shell
 * execs the command, which gains root's capabilities in the namespace at
 * that exec (the map exists by then).
 *
 * Every namespace lives only as long as its command: nothing is held between
 * calls, so nothing can leak when hpcc dies. The id map is the same on every
 * call of a session, so the on-disk owners agree between calls.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import * as fs from 'node:fs/promises';
import type { Socket } from 'node:net';
import { constants as osConstants } from 'node:os';
import { BuildEnvironmentError } from '../errors/index.js';
import { findIdHelper, mapLines, type IdMapPlan } from './idmap.js';

export interface RunResult {
  /** exit status (128+N when killed by signal N) */
  status: number;
  signal?: string;
  /** last ~40 lines of the combined output */
  tail: string;
  /** the whole stdout, with stdio 'capture' (bounded to 16 MiB) */
  output?: string;
  /** single-id mode, runInRoot: the owners that collapsed to root (also given to onWarn) */
  collapsed?: string[];
}

export const TAIL_LINES = 40;
const MAX_OUTPUT = 16 * 1024 * 1024;

/** The last N lines of a stream, plus a callback per complete line. */
export class Tail {
  private lines: string[] = [];
  private partial = '';
  constructor(private readonly onLine?: (line: string) => void, private readonly keep = TAIL_LINES) {}
  push(chunk: string): void {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop()!;
    for (const l of parts) this.add(l);
  }
  private add(l: string): void {
    this.onLine?.(l);
    this.lines.push(l);
    if (this.lines.length > this.keep) this.lines.shift();
  }
  text(): string {
    if (this.partial !== '') {
      this.add(this.partial);
      this.partial = '';
    }
    return this.lines.join('\n');
  }
}

export interface NsSpawnOptions {
  plan: IdMapPlan;
  /** a PID namespace too (unshare --fork --kill-child): SIGKILL to the child ends everything in it */
  pidns: boolean;
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** copy the output to our stderr as it comes */
  forward: boolean;
  /** keep the whole stdout in RunResult.output */
  capture: boolean;
  onLine?: (line: string) => void;
}

export interface NsChild {
  child: ChildProcess;
  /** host pid of the command (the PID namespace's init with pidns) */
  nsPid: number;
  done: Promise<RunResult>;
  /** SIGKILL the command (and with pidns everything in its namespace) */
  kill(): void;
}

/**
 * The waiting shell: its pid as the host sees it (the first field of
 * /proc/self/stat, opened by the shell itself while the host's /proc is still
 * mounted) on fd 3, then wait for a line on fd 3, close it, exec the command.
 * With a PID namespace that pid is the namespace's init: SIGKILL to it ends
 * every process in the namespace (unshare's --kill-child is no help: the
 * kernel clears the parent-death signal when the exec gains capabilities).
 */
const WAIT_SCRIPT = 'read -r p _ </proc/self/stat && printf "%s\\n" "$p" >&3 && read _ <&3 && exec 3>&- && exec "$@"';
/**
 * The same for a PID namespace, keeping fd 3 open for the command: it reaches
 * end-of-file only when hpcc is gone (even by SIGKILL), so the namespace's
 * init can watch it and end the namespace (run-root.ts does).
 */
const WAIT_SCRIPT_KEEP = 'read -r p _ </proc/self/stat && printf "%s\\n" "$p" >&3 && read _ <&3 && exec "$@"';

/** An executable on PATH (or the usual system directories), or null. */
export function findExecutable(name: string, env: NodeJS.ProcessEnv = process.env): string | null {
  for (const d of [...(env.PATH ?? '').split(':'), '/usr/bin', '/bin', '/usr/sbin', '/sbin']) {
    if (!d.startsWith('/')) continue;
    try {
      accessSync(`${d}/${name}`, fsConstants.X_OK);
      return `${d}/${name}`;
    } catch {
      /* next */
    }
  }
  return null;
}

function findUnshare(): string {
  const p = findExecutable('unshare');
  if (p === null) {
    throw new BuildEnvironmentError('HPCC_E_BUILD_NO_TOOL', 'unshare (util-linux) is not installed', {
      hint: 'Install util-linux (it provides unshare), which unprivileged builds need.',
    });
  }
  return p;
}

function run(cmd: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ ok: err === null, out: `${stdout}${stderr}${err && !stderr ? err.message : ''}`.trim() });
    });
  });
}

/** Write the id maps of the namespace of `pid`. */
export async function writeMaps(pid: number, plan: IdMapPlan): Promise<void> {
  const lines = mapLines(plan);
  const fail = (what: string, out: string) =>
    new BuildEnvironmentError('HPCC_E_BUILD_IDMAP', `could not write the build namespace's ${what}: ${out}`, {
      hint:
        plan.mode === 'subids'
          ? 'Check /etc/subuid and /etc/subgid and that newuidmap/newgidmap are setuid root, or set HPCC_BUILD_IDMAP=single.'
          : 'Unprivileged user namespaces may be restricted here; run `hpcc doctor`.',
    });
  if (plan.mode === 'subids' && plan.uid !== 0) {
    const nu = findIdHelper('newuidmap');
    const ng = findIdHelper('newgidmap');
    if (!nu || !ng) throw fail('id maps', 'newuidmap/newgidmap not found');
    const u = await run(nu, [String(pid), ...lines.uid.split(/\s+/)]);
    if (!u.ok) throw fail('uid_map (newuidmap)', u.out);
    const g = await run(ng, [String(pid), ...lines.gid.split(/\s+/)]);
    if (!g.ok) throw fail('gid_map (newgidmap)', g.out);
    return;
  }
  try {
    if (plan.mode === 'single') await fs.writeFile(`/proc/${pid}/setgroups`, 'deny');
    await fs.writeFile(`/proc/${pid}/uid_map`, lines.uid + '\n');
    await fs.writeFile(`/proc/${pid}/gid_map`, lines.gid + '\n');
  } catch (e) {
    throw fail('id maps', (e as Error).message);
  }
}

function signalNumber(sig: NodeJS.Signals): number {
  return (osConstants.signals as Record<string, number>)[sig] ?? 0;
}

/** Start argv as root of a fresh namespace; resolves once the command runs (maps written). */
export async function spawnInNamespace(argv: string[], o: NsSpawnOptions): Promise<NsChild> {
  const args = ['--user', '--mount', '--propagation', 'private'];
  if (o.pidns) args.push('--pid', '--fork', '--kill-child');
  args.push('--', '/bin/sh', '-c', o.pidns ? WAIT_SCRIPT_KEEP : WAIT_SCRIPT, 'hpcc-ns', ...argv);
  const child = spawn(findUnshare(), args, {
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    env: o.env,
    ...(o.cwd ? { cwd: o.cwd } : {}),
  });
  const tail = new Tail(o.onLine);
  let out = '';
  const onData = (isStdout: boolean) => (b: Buffer) => {
    const s = b.toString('utf8');
    if (o.forward) process.stderr.write(b);
    tail.push(s);
    if (isStdout && o.capture && out.length < MAX_OUTPUT) out += s;
  };
  child.stdout!.on('data', onData(true));
  child.stderr!.on('data', onData(false));
  const done = new Promise<RunResult>((resolve, reject) => {
    child.on('error', reject);
    let finished = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (finished) return;
      finished = true;
      const r: RunResult = { status: code ?? 128 + (signal ? signalNumber(signal) : 0), tail: tail.text() };
      if (signal) r.signal = signal;
      if (o.capture) r.output = out;
      resolve(r);
    };
    child.on('close', finish);
    // a process that outlived the command (no PID namespace) may hold the pipes open: give it 2 s
    child.on('exit', (code, signal) => {
      setTimeout(() => {
        child.stdout!.destroy();
        child.stderr!.destroy();
        finish(code, signal);
      }, 2000).unref();
    });
  });
  const sock = child.stdio[3] as Socket;
  sock.on('error', () => {}); // the shell closes its end at exec
  let nsPid = 0;
  try {
    nsPid = await new Promise<number>((resolve, reject) => {
      let got = '';
      sock.on('data', (b: Buffer) => {
        got += b.toString('latin1');
        const m = /^(\d+)\n/.exec(got);
        if (m) resolve(Number(m[1]));
      });
      child.once('error', reject);
      child.once('close', (code) => reject(new Error(`the namespace did not start (unshare exited ${code})`)));
    });
    await writeMaps(child.pid!, o.plan);
    if (o.pidns) sock.write('g\n');
    else sock.end('g\n');
  } catch (e) {
    child.kill('SIGKILL');
    const r = await done.catch(() => null);
    if (e instanceof BuildEnvironmentError) throw e;
    throw new BuildEnvironmentError('HPCC_E_BUILD_USERNS', `could not create the build user namespace: ${r?.tail.trim() || (e as Error).message}`, {
      hint: 'Unprivileged user namespaces may be disabled or restricted here; run `hpcc doctor`.',
      cause: e,
    });
  }
  const kill = () => {
    try {
      process.kill(nsPid, 'SIGKILL');
    } catch {
      /* gone already */
    }
    child.kill('SIGKILL');
  };
  return { child, nsPid, done, kill };
}
