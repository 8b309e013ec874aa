/**
 * Runs a BuildSession (src/build/userns.ts) for test/e2e/build-userns.test.ts
 * as whichever user starts it (the tests start it as an unprivileged user):
 * `node build-session-driver.js JOB_JSON`. Prints `RESULT {json}` last.
 *
 * A job: make a base tree (busybox, a Debian tarball, or bootstrapDebian),
 * optionally tar it, run a script with runInRoot, list owners inside the
 * namespace, pack the tree with `hpcc build OUT DIR` run inside the
 * namespace, close the session. With `hold`, SIGTERM closes the session
 * (closeOnSignals) and the script is expected to be killed mid-run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BuildSession, bootstrapDebian, closeOnSignals, planIdMap, type IdMapMode, type RunResult } from '../../src/build/userns.js';
import { HPCC_BIN } from './env.js';

export interface DriverJob {
  workDir: string;
  mode?: IdMapMode;
  base: 'busybox' | 'bootstrap' | { tar: string; sameOwner: boolean };
  /** after the base: write it as a tarball (numeric owners, made inside the namespace) */
  makeTar?: string;
  /** replace the base's /etc with a symlink to this path (busybox base) */
  etcSymlink?: string;
  /** make the base's /etc/resolv.conf a symlink to this target */
  resolvSymlink?: string;
  post?: string;
  postShell?: string;
  /** paths inside the rootfs to `ls -lnd` (inside the namespace) after the script */
  ls?: string[];
  pack?: string;
  hold?: boolean;
}

export interface DriverResult {
  mode: IdMapMode;
  reason: string;
  workDir: string;
  rootfs: string;
  post?: RunResult;
  ls?: string;
  pack?: RunResult;
  warnings: string[];
  existsAfterClose: boolean;
}

const APPLETS = ['sh', 'sleep', 'touch', 'mkdir', 'chown', 'chmod', 'ls', 'echo', 'cat', 'mkfifo', 'id', 'false', 'true', 'rm', 'test', 'readlink'];

function busyboxBase(root: string): void {
  fs.mkdirSync(path.join(root, 'bin'));
  const bb = ['/bin/busybox', '/usr/bin/busybox'].find((p) => fs.existsSync(p));
  if (!bb) throw new Error('busybox not installed');
  fs.copyFileSync(bb, path.join(root, 'bin', 'busybox'));
  fs.chmodSync(path.join(root, 'bin', 'busybox'), 0o755);
  for (const a of APPLETS) fs.symlinkSync('busybox', path.join(root, 'bin', a));
  fs.mkdirSync(path.join(root, 'etc'));
  fs.writeFileSync(path.join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2]!) as DriverJob;
  const warnings: string[] = [];
  const idmap = await planIdMap(job.mode ? { force: job.mode } : {});
  const s = await BuildSession.create({ workDir: job.workDir, idmap, onWarn: (m) => warnings.push(m) });
  if (job.hold) closeOnSignals(s);
  const root = await s.newRoot('rootfs');
  const res: DriverResult = { mode: idmap.mode, reason: idmap.reason, workDir: s.workDir, rootfs: root, warnings, existsAfterClose: true };
  try {
    if (job.base === 'busybox') busyboxBase(root);
    else if (job.base === 'bootstrap') await bootstrapDebian(s, root, { osVersion: 'bookworm' });
    else {
      const x = await s.exec(['tar', '-C', root, '--numeric-owner', job.base.sameOwner ? '--same-owner' : '--no-same-owner', '-xpf', job.base.tar], { stdio: 'capture' });
      if (x.status !== 0) throw new Error(`tar -x: ${x.tail}`);
    }
    if (job.etcSymlink) {
      fs.rmSync(path.join(root, 'etc'), { recursive: true });
      fs.symlinkSync(job.etcSymlink, path.join(root, 'etc'));
    }
    if (job.resolvSymlink) fs.symlinkSync(job.resolvSymlink, path.join(root, 'etc', 'resolv.conf'));
    if (job.makeTar) {
      const x = await s.exec(['tar', '-C', root, '--numeric-owner', '-cf', job.makeTar, '.'], { stdio: 'capture' });
      if (x.status !== 0) throw new Error(`tar -c: ${x.tail}`);
      fs.chmodSync(job.makeTar, 0o644);
    }
    if (job.post !== undefined) {
      res.post = await s.runInRoot(root, job.post, { label: '%post', stdio: 'capture', ...(job.postShell ? { shell: job.postShell } : {}) });
    }
    if (job.ls) {
      const x = await s.exec(['ls', '-lnd', ...job.ls.map((p) => path.join(root, p))], { stdio: 'capture' });
      res.ls = x.output ?? '';
    }
    if (job.pack) {
      res.pack = await s.exec([process.execPath, HPCC_BIN, 'build', '--force', job.pack, root], { stdio: 'capture' });
    }
  } finally {
    await s.close();
    res.existsAfterClose = fs.existsSync(s.workDir);
  }
  process.stdout.write(`RESULT ${JSON.stringify(res)}\n`);
}

main().catch((e) => {
  process.stderr.write(`driver failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
