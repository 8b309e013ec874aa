/**
 * Shared by the helper's integration suites (launch-helper.test.ts,
 * launch-overlay.test.ts): a busybox root and its SIF, plans encoded by hand
 * with the codec, the helper run on them as the unprivileged test user.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildSifFromDirectory } from '../../src/core/build.js';
import { encodePlan } from '../../src/runtime/codec.js';
import type { LaunchPlan } from '../../src/runtime/plan.js';
import {
  IN_CI, IS_ROOT, REPO_ROOT, TEST_USER, findTool, makeTempDir, removeTree, requireTestUser, requireTools, runUnprivileged, testUserIds,
} from '../helpers/env.js';

export const HELPER = path.join(REPO_ROOT, 'dist', 'native', 'hpcc-launch');
export const APPLETS = ['sh', 'id', 'cat', 'echo', 'ls', 'true', 'sleep', 'grep', 'touch', 'mkdir', 'kill', 'pwd', 'head'];

export function requireHelper(ctx: Mocha.Context): void {
  if (fs.existsSync(HELPER)) return;
  if (IN_CI) throw new Error(`${HELPER} missing: npm run build compiles native/`);
  ctx.skip();
}

/** A busybox root: /bin/busybox + applet links, mount points for the tests. */
export function makeRootfs(dir: string): void {
  for (const d of ['bin', 'etc', 'tmp', 'proc', 'dev', 'mnt', 'data', 'home']) fs.mkdirSync(path.join(dir, d), { recursive: true, mode: 0o755 });
  fs.copyFileSync(findTool('busybox')!, path.join(dir, 'bin/busybox'));
  fs.chmodSync(path.join(dir, 'bin/busybox'), 0o755);
  for (const a of APPLETS) fs.symlinkSync('busybox', path.join(dir, 'bin', a));
  fs.writeFileSync(path.join(dir, 'etc/hello'), 'hello from the image\n', { mode: 0o644 });
  fs.writeFileSync(path.join(dir, 'bin/script.sh'), 'echo from script\n', { mode: 0o755 }); // no #!: ENOEXEC -> /bin/sh
  fs.writeFileSync(path.join(dir, 'bin/noexec'), '#!/bin/sh\n', { mode: 0o644 });
}

/** Write `bytes` to `f` as a file of the test user, mode 0644 (what `hpcc-launch --plan` accepts). */
export function writeOwnPlan(f: string, bytes: string | Uint8Array, ids: { uid: number; gid: number }): void {
  fs.writeFileSync(f, bytes, { mode: 0o644 });
  fs.chmodSync(f, 0o644);
  if (IS_ROOT) fs.chownSync(f, ids.uid, ids.gid);
}

/** The image, the directories and the plan helpers of one suite. */
export class HelperBench {
  tmp = ''; // root-owned 0755: rootfs, SIF, plans
  work = ''; // owned by the test user: stages, bind sources
  rootfs = '';
  sif = '';
  offset = 0;
  ids = { uid: 0, gid: 0 };
  private n = 0;

  /** Call from `before`: skips without the tools, the test user or the helper binary. */
  async setup(ctx: Mocha.Context, prefix: string): Promise<void> {
    requireTools(ctx, 'busybox', 'squashfuse_ll', 'setpriv', 'pgrep');
    requireTestUser(ctx);
    requireHelper(ctx);
    const ids = (this.ids = testUserIds());
    this.tmp = makeTempDir(prefix);
    const work = (this.work = path.join(this.tmp, 'work'));
    fs.mkdirSync(work, { mode: 0o755 });
    if (IS_ROOT) fs.chownSync(work, ids.uid, ids.gid);
    this.rootfs = path.join(this.tmp, 'rootfs');
    makeRootfs(this.rootfs);
    // an absolute symlink in the image that names a host directory the test user may write to
    fs.mkdirSync(path.join(work, 'host-target'));
    if (IS_ROOT) fs.chownSync(path.join(work, 'host-target'), ids.uid, ids.gid);
    fs.symlinkSync(path.join(work, 'host-target'), path.join(this.rootfs, 'escape'));
    this.sif = path.join(this.tmp, 'img.sif');
    this.offset = (await buildSifFromDirectory(this.sif, this.rootfs, { compressor: 'gzip', level: 1 })).partitionOffset;
    fs.chmodSync(this.sif, 0o644);
  }

  teardown(): void {
    if (this.tmp) removeTree(this.tmp);
  }

  /** A plan on the directory root, or on the SIF through squashfuse_ll (`fuse`), with a stage of its own. */
  plan(over: Partial<LaunchPlan> = {}, fuse = false): LaunchPlan {
    const k = this.n++;
    const { ids, work } = this;
    return {
      version: 4,
      uid: { inside: ids.uid, outside: ids.uid },
      gid: { inside: ids.gid, outside: ids.gid },
      pidNamespace: false,
      rootfs: fuse
        ? { kind: 'squashfuse', image: this.sif, offset: this.offset, fuseHelper: findTool('squashfuse_ll')!, mountpoint: path.join(work, `stage${k}`, 'image') }
        : { kind: 'dir', path: this.rootfs },
      stage: path.join(work, `stage${k}`),
      mounts: [{ op: 'proc', dst: '/proc' }, { op: 'remount-ro', dst: '/' }],
      cwd: '/',
      env: ['PATH=/bin', 'HOME=/'],
      argv: ['true'],
      commandIndex: 0,
      ...over,
    };
  }

  /** The plan saved as the test user's own file (hpcc-launch --plan runs only the caller's plans). */
  planFile(p: LaunchPlan): string {
    const f = path.join(this.tmp, `plan-${this.n++}`);
    writeOwnPlan(f, encodePlan(p), this.ids);
    return f;
  }

  /** Run the helper on a saved plan as the test user (optional argv override); status records on stderr. */
  run(p: LaunchPlan, args: string[] = [], input?: string) {
    return runUnprivileged(HELPER, ['--plan', this.planFile(p), '--status-fd', '2', ...args], { timeout: 30_000, input: input ?? '', cwd: '/' });
  }

  sh(p: LaunchPlan, script: string, input?: string) {
    return this.run(p, ['sh', '-c', script], input);
  }

  /** FUSE servers of the test user serving this suite's image (other suites may run beside us). */
  fuseServers(): string {
    return runUnprivileged('pgrep', ['-a', '-u', TEST_USER, '-f', `squashfuse.* ${this.sif} `]).stdout;
  }

  /** fuse-overlayfs servers of the test user for one stage */
  ovlServers(stage: string): string {
    return runUnprivileged('pgrep', ['-a', '-u', TEST_USER, '-f', `fuse-overlayfs .*${stage}/`]).stdout;
  }
}
