/**
 * `hpcc build OUT.sif FILE.def`: every stage in a tree of its own under one
 * work directory, in Apptainer's order: the base image (agent), %setup on
 * the host as the caller, %files, %post as root of the build's user
 * namespace (src/build/userns.ts); then the last stage's /.singularity.d
 * (image-meta.ts), the packing, %test on the packed image (`hpcc test`,
 * unless --notest), and the move to OUT. Nothing of an earlier stage
 * reaches the image but what `%files from` copies. A failure or
 * SIGINT/SIGTERM leaves nothing at OUT and removes the work directory.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BuildStepError, HpccError, addContext } from '../../errors/index.js';
import { checkOutput, deterministicTime } from '../../core/build.js';
import type { CodecName } from '../../formats/squashfs/index.js';
import type { OciPlatform } from '../../oci/types.js';
import { installRoot } from '../../util/install-root.js';
import { BuildSession, planIdMap, type RunResult } from '../userns.js';
import { fileSections, loadDefinition, sectionScript, type LoadedDefinition, type Stage } from './index.js';
import { acquireBase } from './agents.js';
import { imageMeta } from './image-meta.js';
import type { WorkerOp } from './ns-worker.js';
import { hpccCommand, nsWorkerCommand } from '../../util/sea.js';

export interface DefBuildOptions {
  buildArgs?: Map<string, string>;
  notest?: boolean;
  compressor?: CodecName;
  level?: number;
  blockSize?: number;
  deterministic?: boolean;
  force?: boolean;
  platform?: OciPlatform;
  /** stream step output (%setup, %post, %test) to stderr */
  verbose?: boolean;
  onInfo?: (msg: string) => void;
  onWarning?: (msg: string) => void;
}

export interface DefBuildResult {
  output: string;
  stages: number;
  idmap: string;
  tested: boolean;
}

const WORKER = fileURLToPath(new URL('./ns-worker.js', import.meta.url));
const TAIL = 30;
const DOCKER_ENV = '/.singularity.d/env/10-docker2singularity.sh';

/** The build's work directory parent: HPCC_TMPDIR, else TMPDIR, else /tmp. */
function tmpBase(): string {
  return process.env.HPCC_TMPDIR || os.tmpdir();
}

function lastLines(text: string, n = TAIL): string {
  return text.replace(/\s+$/, '').split('\n').slice(-n).join('\n');
}

/** The error a failed step gives: its exit status and the tail of its output. */
export function stepError(what: string, r: RunResult, hint: string): BuildStepError {
  const how = r.signal ? `was killed by ${r.signal}` : `failed with exit status ${r.status}`;
  const tail = lastLines(r.tail);
  return new BuildStepError('HPCC_E_STEP_FAILED', `${what} ${how}${tail ? `; last output:\n${tail.replace(/^/gm, '  | ')}` : ''}`, {
    hint,
    details: { step: what, status: r.status, ...(r.signal ? { signal: r.signal } : {}), tail },
  });
}

/** Run a command as the caller (not in the namespace), output teed to stderr when verbose, the tail kept. */
function runHost(argv: string[], o: { env: NodeJS.ProcessEnv; cwd: string; verbose: boolean }): Promise<RunResult> {
  return new Promise((resolve) => {
    const c = spawn(argv[0]!, argv.slice(1), { env: o.env, cwd: o.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const on = (b: Buffer) => {
      tail = (tail + b.toString('utf8')).slice(-16384);
      if (o.verbose) process.stderr.write(b);
    };
    c.stdout!.on('data', on);
    c.stderr!.on('data', on);
    c.on('error', (e) => resolve({ status: 127, tail: `${tail}${e.message}\n` }));
    c.on('close', (code, sig) => resolve({ status: code ?? 128, ...(sig ? { signal: sig } : {}), tail }));
  });
}

export class DefBuild {
  private session?: BuildSession;
  private workDir?: string;
  private partial?: string;
  private opSeq = 0;
  private readonly warn: (m: string) => void;
  private readonly info: (m: string) => void;

  constructor(
    private readonly out: string,
    private readonly defFile: string,
    private readonly o: DefBuildOptions,
  ) {
    this.warn = o.onWarning ?? (() => {});
    this.info = o.onInfo ?? (() => {});
  }

  /** Run one ns-worker op as root of the build namespace. */
  async op(op: WorkerOp): Promise<unknown> {
    const spec = path.join(this.workDir!, `op-${++this.opSeq}.json`);
    await fs.writeFile(spec, JSON.stringify(op), { mode: 0o600 });
    const r = await this.session!.exec([...nsWorkerCommand(WORKER), spec], { stdio: 'capture' });
    const res = JSON.parse(await fs.readFile(`${spec}.result`, 'utf8').catch(() => 'null')) as {
      ok: boolean;
      result?: unknown;
      warnings?: string[];
      error?: { code: string; message: string; hint?: string; exitCode?: number };
    } | null;
    for (const w of res?.warnings ?? []) this.warn(w);
    if (res?.ok) return res.result;
    if (res?.error) {
      throw new HpccError(res.error.code, res.error.message, { exitCode: res.error.exitCode ?? 72, ...(res.error.hint ? { hint: res.error.hint } : {}) });
    }
    throw stepError(`the build step "${op.op}"`, r, 'The build namespace could not run hpcc; `hpcc doctor` checks user namespaces.');
  }

  /** Run the build; `cleanup()` is also what a signal handler calls. */
  async run(): Promise<DefBuildResult> {
    const o = this.o;
    const out = path.resolve(this.out);
    await checkOutput(out, o.force ?? false);
    const def = await loadDefinition(this.defFile, o.buildArgs ?? new Map());
    for (const a of def.unusedArgs) this.warn(`build argument ${a} is not used by ${this.defFile}`);
    const deterministic = o.deterministic || process.env.SOURCE_DATE_EPOCH !== undefined;
    const time = deterministic ? deterministicTime() : Math.floor(Date.now() / 1000);
    this.workDir = await fs.mkdtemp(path.join(tmpBase(), 'hpcc-build-')).catch((e) => {
      throw addContext(`create a build directory under ${tmpBase()} (set HPCC_TMPDIR to use another)`, e);
    });
    const idmap = await planIdMap();
    this.session = await BuildSession.create({ workDir: this.workDir, idmap, onWarn: this.warn });
    this.info(`Build namespace: ${idmap.mode === 'subids' ? 'subordinate ids' : 'single id'} (${idmap.reason})`);
    const roots = new Map<string, string>();
    let root = '';
    let last!: Stage;
    for (const st of def.stages) {
      root = await this.session.newRoot(`stage-${st.index}`);
      await this.stage(def, st, root, roots);
      if (st.name !== undefined) roots.set(st.name, root);
      last = st;
    }
    const meta = imageMeta(last, def.text.replace(/\n*$/, '\n'), { time, arch: process.arch, version: await hpccVersion() });
    await this.op({ op: 'meta', root, skeleton: true, meta });
    const sif = path.join(this.workDir, 'image.sif');
    this.info(`Packing the image`);
    await this.op({
      op: 'pack',
      root,
      out: sif,
      compressor: o.compressor ?? 'gzip',
      ...(o.level !== undefined ? { level: o.level } : {}),
      ...(o.blockSize !== undefined ? { blockSize: o.blockSize } : {}),
      deterministic,
      ...(deterministic ? { mtime: time } : {}),
    });
    let tested = false;
    if (!o.notest && meta.test !== undefined) {
      this.info('Running %test');
      const r = await runHost([...hpccCommand(path.join(installRoot(), 'bin', 'run.js')), 'test', sif], { env: process.env, cwd: process.cwd(), verbose: o.verbose ?? false });
      if (r.status !== 0) throw stepError(`%test (${this.defFile}:${sectionScript(last, 'test')!.line})`, r, 'Fix the test or the image; --notest builds without running it.');
      tested = true;
    }
    await this.place(sif, out);
    return { output: out, stages: def.stages.length, idmap: idmap.mode, tested };
  }

  private async stage(def: LoadedDefinition, st: Stage, root: string, roots: Map<string, string>): Promise<void> {
    const o = this.o;
    const label = `stage ${st.index + 1}/${def.stages.length}${st.name ? ` (${st.name})` : ''}`;
    await acquireBase(this, def, st, root, { ...(o.platform ? { platform: o.platform } : {}), info: (m) => this.info(`${label}: ${m}`) });
    const setup = sectionScript(st, 'setup');
    if (setup && setup.script.trim() !== '') {
      this.info(`${label}: running %setup on the host`);
      const script = path.join(this.workDir!, `setup-${st.index}.sh`);
      await fs.writeFile(script, setup.script + '\n', { mode: 0o700 });
      const env = { ...process.env, APPTAINER_ROOTFS: root, SINGULARITY_ROOTFS: root };
      const r = await runHost(['/bin/sh', '-e', '-x', script], { env, cwd: process.cwd(), verbose: o.verbose ?? false });
      if (r.status !== 0) throw stepError(`%setup (${this.defFile}:${setup.line})`, r, '%setup runs on the host as you, with $APPTAINER_ROOTFS set to the tree.');
    }
    for (const f of fileSections(st)) {
      if (f.entries.length === 0) continue;
      this.info(`${label}: copying %files${f.from !== undefined ? ` from ${f.from}` : ''}`);
      await this.op({ op: 'files', root, ...(f.from !== undefined ? { from: roots.get(f.from)! } : {}), cwd: process.cwd(), entries: f.entries, where: this.defFile });
    }
    const post = sectionScript(st, 'post');
    if (post && post.script.trim() !== '') {
      this.info(`${label}: running %post`);
      const shell = /(?:^|\s)-c\s+(\S+)/.exec(post.args.split('#')[0]!)?.[1];
      const env = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LANG: 'C', APPTAINER_ROOTFS: '/', SINGULARITY_ROOTFS: '/', APPTAINER_ENVIRONMENT: '/.singularity.d/env/91-environment.sh' };
      // the base image's OCI environment (Env), as Apptainer's %post sees it; %environment is not read here
      const script = `if [ -r ${DOCKER_ENV} ]; then . ${DOCKER_ENV}; fi\n${post.script}\n`;
      const r = await this.session!.runInRoot(root, script, { ...(shell ? { shell, shellFlags: [] } : {}), env, label: '%post', stdio: o.verbose ? 'inherit' : 'capture' });
      if (r.status !== 0) throw stepError(`%post (${this.defFile}:${post.line})`, r, 'Fix the failing command; the step runs as root of a user namespace (`hpcc doctor` says which id mapping).');
    }
  }

  /** Move the packed image to OUT (rename, or copy next to it then rename). */
  private async place(sif: string, out: string): Promise<void> {
    await checkOutput(out, this.o.force ?? false);
    try {
      await fs.rename(sif, out);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw addContext(`write ${out}`, e);
    }
    this.partial = path.join(path.dirname(out), `.${path.basename(out)}.hpcc-build-${randomBytes(4).toString('hex')}`);
    try {
      await fs.copyFile(sif, this.partial, fs.constants.COPYFILE_EXCL);
      await fs.chmod(this.partial, 0o666 & ~process.umask());
      await fs.rename(this.partial, out);
      this.partial = undefined;
    } catch (e) {
      throw addContext(`write ${out}`, e);
    }
  }

  /** Remove every tree and temporary file (safe to call twice, and from a signal handler). */
  async cleanup(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    if (this.partial) await fs.rm(this.partial, { force: true }).catch(() => {});
    if (s) {
      // a namespace's init outlives a killed `unshare` (its parent-death signal does not survive the id
      // mapping): kill every process below us first, so the PID namespace and its steps end with it
      await killDescendants();
      await s.close().catch(() => {});
    }
    if (this.workDir) await fs.rm(this.workDir, { recursive: true, force: true }).catch(() => {});
  }

  get sessionOf(): BuildSession {
    return this.session!;
  }
  get work(): string {
    return this.workDir!;
  }
}

/** SIGKILL every process whose parent chain leads to this one (read from /proc; errors ignored). */
async function killDescendants(): Promise<void> {
  const parent = new Map<number, number>();
  for (const name of await fs.readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await fs.readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    const m = /\) \S+ (\d+)/.exec(stat);
    if (m) parent.set(Number(name), Number(m[1]));
  }
  const mine = new Set([process.pid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of parent) {
      if (!mine.has(pid) && mine.has(ppid)) {
        mine.add(pid);
        grew = true;
      }
    }
  }
  mine.delete(process.pid);
  for (const pid of mine) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone, or not ours */
    }
  }
}

let versionMemo: string | undefined;
async function hpccVersion(): Promise<string> {
  if (versionMemo === undefined) {
    const pkg = JSON.parse(await fs.readFile(path.join(installRoot(), 'package.json'), 'utf8')) as { version?: string };
    versionMemo = pkg.version ?? 'unknown';
  }
  return versionMemo;
}

/**
 * Build with clean-up on every exit path: SIGINT/SIGTERM while building
 * remove the trees and any partial output, then end the process with the
 * signal's status (130 / 143).
 */
export async function buildFromDefinition(out: string, defFile: string, o: DefBuildOptions = {}): Promise<DefBuildResult> {
  const b = new DefBuild(out, defFile, o);
  const onSignal = (sig: NodeJS.Signals) => {
    process.stderr.write(`hpcc build: ${sig}: removing the build's temporary trees\n`);
    void b.cleanup().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await b.run();
  } finally {
    await b.cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
