/**
 * The helper's own half of the defence against hostile image symlinks
 * (security issue, items 1, 3 and 8), with hand-made plans such as the plan
 * builder wrote before it checked symlinks: the helper creates nothing
 * outside the layers it made in this launch and changes the mode of nothing
 * it did not create, with the kernel's openat2 resolver and with its own walk
 * (HPCC_LAUNCH_NO_OPENAT2=1, what kernels before 5.6 get): '..' stops at the
 * container's root, symlink loops end in ELOOP. And `--plan FILE` runs only
 * a regular file of the caller's that nobody else may write.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodePlan } from '../../src/runtime/codec.js';
import type { LaunchPlan, MountOp } from '../../src/runtime/plan.js';
import { parseStatusRecords } from '../../src/runtime/spawn.js';
import { IS_ROOT, runUnprivileged } from '../helpers/env.js';
import { HELPER, HelperBench, writeOwnPlan } from './launch-fixture.js';

const EXDEV = 18;

describe('integration: hpcc-launch never creates or chmods through an image symlink (both resolvers)', function () {
  this.timeout(60_000);
  const b = new HelperBench();
  let hostHome = ''; // stands for the caller's $HOME, bound at /home
  let src = '';

  before(async function () {
    await b.setup(this, 'hpcc-launch-esc-');
    hostHome = path.join(b.work, 'hh');
    src = path.join(b.work, 'src');
    for (const d of [path.join(hostHome, 'private'), src]) fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(path.join(src, 'f'), 'bound\n');
    if (IS_ROOT) execFileSync('chown', ['-R', `${b.ids.uid}:${b.ids.gid}`, hostHome, src]);
    fs.chmodSync(path.join(hostHome, 'private'), 0o700);
    // the hostile links, in the directory root the plans below run on
    fs.symlinkSync('/home/private', path.join(b.rootfs, 'evil'));
    fs.symlinkSync('../../home/private', path.join(b.rootfs, 'evil-rel'));
    fs.symlinkSync('../../../../..', path.join(b.rootfs, 'up'));
    fs.symlinkSync('/loop', path.join(b.rootfs, 'loop'));
  });
  after(() => b.teardown());

  const snap = (): string[] => {
    const out: string[] = [];
    const walk = (p: string): void => {
      const st = fs.lstatSync(p);
      out.push(`${p} ${st.mode.toString(8)} ${st.uid} ${st.mtimeMs}`);
      if (st.isDirectory()) for (const n of fs.readdirSync(p).sort()) walk(path.join(p, n));
    };
    walk(hostHome);
    return out;
  };

  /** Run `mounts` (after an overlay over the root and the "$HOME" bind) as the test user. */
  const run = (walk: boolean, mounts: MountOp[], argv = ['true']) => {
    const p: LaunchPlan = b.plan({
      mounts: [
        { op: 'overlay', dst: '/', writable: false, methods: ['kernel', 'skeleton'] },
        { op: 'bind', src: hostHome, dst: '/home', readonly: false },
        ...mounts,
      ],
      argv,
    });
    const f = b.planFile(p);
    const r = runUnprivileged(HELPER, ['--plan', f, '--status-fd', '2'], { timeout: 30_000, cwd: '/', env: walk ? { HPCC_LAUNCH_NO_OPENAT2: '1' } : {} });
    return { ...r, rec: parseStatusRecords(r.stderr)[0] };
  };

  for (const walk of [false, true]) {
    const how = walk ? ' (own resolver)' : ' (openat2)';

    it(`mkdir, bind and file targets through /evil -> /home/private: refused with EXDEV, the host directory unchanged${how}`, () => {
      const before = snap();
      for (const dst of ['/evil/proj', '/evil-rel/proj']) {
        const cases: MountOp[][] = [
          [{ op: 'mkdir', dst: dst.replace('/proj', ''), mode: 0o755 }, { op: 'mkdir', dst, mode: 0o755 }, { op: 'bind', src, dst, readonly: true }],
          [{ op: 'bind', src, dst, readonly: false }],
          [{ op: 'file', dst, mode: 0o644, content: 'x\n' }],
          [{ op: 'tmpfs', dst, mode: 0o755, size: 0 }],
        ];
        for (const mounts of cases) {
          const r = run(walk, mounts);
          expect(r.status, r.stderr).to.equal(101);
          expect(r.rec, r.stderr).to.include({ errno: EXDEV, exitCode: 101 });
          expect(r.rec!.message).to.contain('refusing to create it outside the layers this launch made');
        }
      }
      expect(snap()).to.deep.equal(before);
      expect(fs.statSync(path.join(hostHome, 'private')).mode & 0o7777).to.equal(0o700);
    });

    it(`a mkdir op on an existing directory leaves its mode alone${how}`, () => {
      const before = snap();
      const r = run(walk, [{ op: 'mkdir', dst: '/home/private', mode: 0o755 }, { op: 'mkdir', dst: '/evil', mode: 0o755 }]);
      expect(r.status, r.stderr).to.equal(0);
      expect(snap()).to.deep.equal(before);
    });

    it(`'..' stops at the container's root; a symlink loop ends in ELOOP; a host path named by a link is not reached${how}`, () => {
      const r = run(walk, [{ op: 'bind', src, dst: '/up/mnt', readonly: true }], ['cat', '/mnt/f']);
      expect([r.status, r.stdout], r.stderr).to.deep.equal([0, 'bound\n']);
      const loop = run(walk, [{ op: 'bind', src, dst: '/loop/x', readonly: true }]);
      expect(loop.rec, loop.stderr).to.include({ errno: 40, exitCode: 101 });
      const host = run(walk, [{ op: 'bind', src, dst: '/escape', readonly: true }]);
      expect(host.rec, host.stderr).to.include({ errno: 2, exitCode: 101 });
      expect(fs.readdirSync(path.join(b.work, 'host-target'))).to.deep.equal([]);
    });
  }

  describe('--plan FILE is run only when it is a regular file of the caller\'s that nobody else may write', () => {
    const plan = (): Uint8Array => encodePlan(b.plan({ argv: ['echo', 'ran'] }));
    const refused = (f: string, why: RegExp): void => {
      const r = runUnprivileged(HELPER, ['--plan', f, '--status-fd', '2'], { timeout: 30_000, cwd: '/' });
      expect(r.stdout).to.equal('');
      expect(r.status, r.stderr).to.equal(97);
      const rec = parseStatusRecords(r.stderr)[0];
      expect(rec).to.include({ op: 'plan-file', exitCode: 97 });
      expect(rec!.message).to.match(why);
    };

    it('its own 0644 or 0600 file runs', () => {
      for (const mode of [0o644, 0o600]) {
        const f = path.join(b.tmp, `own-${mode.toString(8)}.plan`);
        writeOwnPlan(f, plan(), b.ids);
        fs.chmodSync(f, mode);
        const r = runUnprivileged(HELPER, ['--plan', f], { timeout: 30_000, cwd: '/' });
        expect([r.status, r.stdout], r.stderr).to.deep.equal([0, 'ran\n']);
      }
    });

    it('group- or world-writable, a symlink, a FIFO, a directory: refused with exit 97', () => {
      for (const mode of [0o664, 0o646, 0o666]) {
        const f = path.join(b.tmp, `w-${mode.toString(8)}.plan`);
        writeOwnPlan(f, plan(), b.ids);
        fs.chmodSync(f, mode);
        refused(f, /lets others write it/);
      }
      const own = path.join(b.tmp, 'target.plan');
      writeOwnPlan(own, plan(), b.ids);
      const link = path.join(b.tmp, 'link.plan');
      fs.symlinkSync(own, link);
      refused(link, /symbolic link/);
      const fifo = path.join(b.work, 'fifo.plan');
      execFileSync('mkfifo', [fifo]);
      if (IS_ROOT) fs.chownSync(fifo, b.ids.uid, b.ids.gid);
      refused(fifo, /not a regular file/);
      refused(b.work, /not a regular file/);
    });

    it("another user's plan (root's, readable by all) is refused", function () {
      if (!IS_ROOT) this.skip();
      const f = path.join(b.tmp, 'roots.plan');
      fs.writeFileSync(f, plan(), { mode: 0o644 });
      refused(f, /owned by uid 0, not by the caller/);
    });
  });
});
