/**
 * Shared by the launcher's e2e suites (launch.test.ts, launch-overlay.test.ts):
 * the busybox image tree, starting hpcc as the test user, and the checks for
 * what a launch may leave behind.
 */
import { expect } from 'chai';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HPCC_BIN, IS_ROOT, REPO_ROOT, findTool, makeTempDir, requireTestUser, requireTools, runHpcc, runUnprivileged, testUserIds, WARM_IDLE_FOR_TESTS } from '../helpers/env.js';

export const APPLETS = ['sh', 'cat', 'echo', 'id', 'ls', 'pwd', 'touch', 'grep', 'env', 'kill', 'sleep', 'true', 'false', 'mkdir', 'rm', 'test', '['];

/**
 * A busybox root with an Apptainer-style /.singularity.d. With `inert`, its
 * env scripts are comments only (as `hpcc build` writes them), so hpcc execs
 * the payload without the sh wrapper.
 */
export function makeTree(root: string, busybox: string, inert = false): void {
  for (const d of ['bin', 'etc', 'tmp', 'var/tmp', 'dev', 'proc', 'sys', 'home', 'opt/tools', '.singularity.d/env', '.singularity.d/libs']) {
    fs.mkdirSync(path.join(root, d), { recursive: true });
  }
  fs.chmodSync(path.join(root, 'tmp'), 0o1777);
  fs.copyFileSync(busybox, path.join(root, 'bin/busybox'));
  fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
  for (const a of APPLETS) fs.symlinkSync('busybox', path.join(root, 'bin', a));
  // a setuid-root copy of busybox (only root can make one): it must gain nothing inside
  if (IS_ROOT) {
    // named after the applet it runs (busybox picks the applet from argv[0])
    fs.mkdirSync(path.join(root, 'suid'));
    fs.copyFileSync(busybox, path.join(root, 'suid/id'));
    fs.chownSync(path.join(root, 'suid/id'), 0, 0);
    fs.chmodSync(path.join(root, 'suid/id'), 0o4755);
  }
  fs.writeFileSync(path.join(root, 'opt/tools/mytool'), '#!/bin/sh\necho mytool\n', { mode: 0o755 });
  fs.writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  fs.writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\n');
  const sd = path.join(root, '.singularity.d');
  fs.writeFileSync(path.join(sd, 'env/01-base.sh'), '#!/bin/sh\nexport ORDER="01"\n');
  fs.writeFileSync(path.join(sd, 'env/10-docker2singularity.sh'), '#!/bin/sh\nexport PATH="/usr/local/bin:/usr/bin:/bin"\nexport FROM_OCI="${FROM_OCI:-"oci-default"}"\nexport ORDER="$ORDER 10"\n');
  fs.writeFileSync(path.join(sd, 'env/90-environment.sh'), '#!/bin/sh\nexport IMG_VAR=image\nexport ORDER="$ORDER 90"\n');
  if (inert) {
    for (const f of fs.readdirSync(path.join(sd, 'env'))) fs.rmSync(path.join(sd, 'env', f));
    fs.writeFileSync(path.join(sd, 'env/01-base.sh'), '#!/bin/sh\n# Base environment\n');
    fs.writeFileSync(path.join(sd, 'env/99-base.sh'), '#!/bin/sh\n\n  # Final environment hooks\n');
  }
  fs.writeFileSync(path.join(sd, 'runscript'), '#!/bin/sh\necho "runscript $# args:"\nfor a in "$@"; do echo "[$a]"; done\n', { mode: 0o755 });
  fs.writeFileSync(path.join(sd, 'test'), '#!/bin/sh\necho "testing $IMG_VAR"\nexit 3\n', { mode: 0o755 });
  fs.writeFileSync(path.join(sd, 'labels.json'), '{"org.hpcc.test":"e2e"}\n');
}

/** Start hpcc as the test user without waiting (signals, SIGKILL, concurrency). */
export function spawnUnprivileged(args: string[], cwd: string, env: Record<string, string> = {}): ChildProcess {
  const base = { PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', HPCC_WARM_IDLE: WARM_IDLE_FOR_TESTS, HOME: IS_ROOT ? '/home/hpcctest' : process.env.HOME!, ...env };
  if (!IS_ROOT) return spawn(process.execPath, [HPCC_BIN, ...args], { cwd, env: base, stdio: ['pipe', 'pipe', 'pipe'] });
  const { uid, gid } = testUserIds();
  return spawn('setpriv', ['--reuid', String(uid), '--regid', String(gid), '--init-groups', '--', process.execPath, HPCC_BIN, ...args], {
    cwd,
    env: base,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

export function waitFor(child: ChildProcess, text: string, ms = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${text}; got ${out}`)), ms);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(text)) {
        clearTimeout(t);
        resolve(out);
      }
    });
  });
}

export function exitOf(child: ChildProcess): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => resolve({ code, out }));
  });
}


export interface E2eImage {
  /** a temp dir owned by the test user (removed with removeTree) */
  tmp: string;
  sif: string;
  /** a directory of the test user holding in.txt ("from the host") */
  hostDir: string;
}

/** Build the e2e image (skips without a static busybox); call from `before`. */
export function makeE2eImage(ctx: Mocha.Context, prefix: string, opts: { inert?: boolean } = {}): E2eImage {
  requireTools(ctx, 'squashfuse_ll', 'busybox', 'unshare');
  requireTestUser(ctx);
  if (!fs.existsSync(path.join(REPO_ROOT, 'dist/native/hpcc-launch'))) throw new Error('run npm run build first (dist/native/hpcc-launch missing)');
  const bb = findTool('busybox')!;
  if (!/not a dynamic|statically linked/.test(spawnSync('ldd', [bb], { encoding: 'utf8' }).stdout + spawnSync('ldd', [bb], { encoding: 'utf8' }).stderr)) {
    ctx.skip();
  }
  const tmp = makeTempDir(prefix);
  const tree = path.join(tmp, 'tree');
  makeTree(tree, bb, opts.inert ?? false);
  const sif = path.join(tmp, 'img.sif');
  const r = runHpcc(['build', sif, tree]);
  expect(r.status, r.stderr).to.equal(0);
  fs.chmodSync(sif, 0o644);
  const hostDir = path.join(tmp, 'hostdir');
  fs.mkdirSync(hostDir);
  fs.writeFileSync(path.join(hostDir, 'in.txt'), 'from the host\n');
  if (IS_ROOT) {
    const { uid, gid } = testUserIds();
    execFileSync('chown', ['-R', `${uid}:${gid}`, hostDir]);
    execFileSync('chown', [`${uid}:${gid}`, tmp]);
  }
  return { tmp, sif, hostDir };
}

/** Run hpcc as the test user in `cwd`. */
export function hpccAs(cwd: string, args: string[], opts: { env?: Record<string, string>; input?: string } = {}) {
  return runUnprivileged(process.execPath, [HPCC_BIN, ...args], {
    cwd,
    env: { HOME: IS_ROOT ? '/home/hpcctest' : process.env.HOME!, ...(opts.env ?? {}) },
    ...(opts.input !== undefined ? { input: opts.input } : {}),
    timeout: 60_000,
  });
}
