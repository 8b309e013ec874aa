/**
 * Hostile images against the caller's files, end to end as the unprivileged
 * test user (security issue, item 1). The image holds absolute symlinks that
 * name directories of the test user on the host, reached through the host
 * binds of a launch: $HOME, /tmp, the working directory, /scratch, -W, --nv
 * libraries, -B and --mount destinations. Whatever hpcc does with such an
 * image (refuse, or leave a default mount out with a warning), the host tree
 * must not change: entries, modes, owners and mtimes are compared before and
 * after every launch. Each case runs with the kernel's openat2 resolver and
 * with the helper's own walk (HPCC_LAUNCH_NO_OPENAT2=1, item 3).
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IS_ROOT, findTool, removeTree, runHpcc, testUserIds } from '../helpers/env.js';
import { hpccAs, makeE2eImage, makeTree } from './launch-fixture.js';

/** Every entry below `roots`: path, type+mode, owner, mtime, size. */
function snapshot(roots: string[]): string[] {
  const out: string[] = [];
  const walk = (p: string): void => {
    const st = fs.lstatSync(p);
    out.push(`${p} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.mtimeMs} ${st.isDirectory() ? '-' : st.size}`);
    if (st.isDirectory()) for (const n of fs.readdirSync(p).sort()) walk(path.join(p, n));
  };
  for (const r of roots) walk(r);
  return out;
}

describe('e2e: hostile image symlinks never change the caller\'s files (both resolvers)', function () {
  this.timeout(180_000);
  let tmp = ''; // /tmp/hpcc-e2e-esc-*: the image, the /tmp victims, the workdir
  let victim = ''; // in the test user's real home: the $HOME victims
  let top = ''; // /hpcc-esc-*: a working directory the image's link shadows
  let sif = '';
  let conf = '';
  let roots: string[] = [];

  before(function () {
    const base = makeE2eImage(this, 'hpcc-e2e-esc-'); // skips without the tools; gives a test-user tmp dir
    tmp = base.tmp;
    const { uid, gid } = testUserIds();
    const home = IS_ROOT ? '/home/hpcctest' : process.env.HOME!;
    victim = fs.mkdtempSync(path.join(home, 'hpcc-esc-'));
    top = IS_ROOT ? fs.mkdtempSync('/hpcc-esc-') : '';
    const u = path.basename(tmp);
    const own = (p: string, mode = 0o700): void => {
      fs.mkdirSync(p, { recursive: true });
      fs.chmodSync(p, mode);
      if (IS_ROOT) fs.chownSync(p, uid, gid);
    };
    for (const d of ['private', 'x', 'libs', 's']) own(path.join(victim, d));
    own(victim, 0o700);
    for (const d of ['h', 'v', 'src', `wd/tmp/${u}/v`, 'wd/var_tmp']) own(path.join(tmp, d));
    own(path.join(tmp, 'wd'));
    if (top) {
      fs.chmodSync(top, 0o755);
      own(path.join(top, 'sub'), 0o755);
    }
    // the hostile image: the e2e tree with its links
    const tree = path.join(tmp, 'evil-tree');
    makeTree(tree, findTool('busybox')!);
    for (const d of ['home', 'var/tmp', '.singularity.d/libs']) fs.rmSync(path.join(tree, d), { recursive: true });
    const links: Record<string, string> = {
      data: path.join(victim, 'private'),
      home: path.join(tmp, 'h'),
      'var/tmp': path.join(tmp, 'v'),
      '.singularity.d/libs': path.join(victim, 'libs'),
      scratch: path.join(victim, 's'),
    };
    if (top) links[top.slice(1)] = path.join(victim, 'x');
    for (const [l, t] of Object.entries(links)) fs.symlinkSync(t, path.join(tree, l));
    sif = path.join(tmp, 'evil.sif');
    const r = runHpcc(['build', sif, tree]);
    expect(r.status, r.stderr).to.equal(0);
    fs.chmodSync(sif, 0o644);
    // --nv: a stand-in driver library in a [gpu] libdirs directory (as launch-nv.test.ts)
    if (findTool('cc')) {
      const drv = path.join(tmp, 'driver');
      fs.mkdirSync(drv);
      fs.writeFileSync(path.join(drv, 'nvml.c'), 'int nvmlInit(void) { return 0; }\n');
      execFileSync('cc', ['-shared', '-fPIC', '-o', path.join(drv, 'libnvidia-ml.so.1'), path.join(drv, 'nvml.c')]);
      conf = path.join(tmp, 'hpcc.conf');
      fs.writeFileSync(conf, `[gpu]\nlibdirs = ${drv}\n`);
      fs.chmodSync(conf, 0o644);
    }
    roots = [victim, path.join(tmp, 'h'), path.join(tmp, 'v'), path.join(tmp, 'src'), path.join(tmp, 'wd'), ...(top ? [top] : [])];
  });
  after(() => {
    for (const d of [tmp, victim, top]) if (d) removeTree(d);
  });

  /** Launch as the test user in `cwd`; the host tree must be the same afterwards. */
  const launch = (walk: boolean, cwd: string, args: string[], env: Record<string, string> = {}) => {
    const before = snapshot(roots);
    const r = hpccAs(cwd, args, { env: { ...(walk ? { HPCC_LAUNCH_NO_OPENAT2: '1' } : {}), HPCC_CACHEDIR: path.join(tmp, 'cache'), ...env } });
    expect(snapshot(roots), `host tree changed by: hpcc ${args.join(' ')}\n${r.stderr}`).to.deep.equal(before);
    return r;
  };

  for (const walk of [false, true]) {
    const how = walk ? ' (own resolver)' : ' (openat2)';

    it(`-B and --mount through /data -> ~/…/private: refused with HPCC_E_LAUNCH_TARGET_SYMLINK${how}`, () => {
      const src = path.join(tmp, 'src');
      for (const flag of [['-B', `${src}:/data/proj`], ['--mount', `type=bind,src=${src},dst=/data/proj`], ['-B', `${src}:/data`]]) {
        const r = launch(walk, tmp, ['exec', ...flag, sif, 'true']);
        expect(r.status, r.stderr).to.equal(106);
        expect(r.stderr).to.contain('HPCC_E_LAUNCH_TARGET_SYMLINK').and.contain(`symlink /data -> ${path.join(victim, 'private')}`);
      }
    });

    it(`default mounts ($HOME, /tmp, /var/tmp, working directory, /scratch, --nv library) through links: left out with a warning, the container runs${how}`, function () {
      const cwd = top ? path.join(top, 'sub') : tmp;
      const r = launch(walk, cwd, ['exec', ...(conf ? ['--nv'] : []), sif, 'sh', '-c', 'echo ran; pwd'], conf ? { HPCC_CONFIG: conf } : {});
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stdout.split('\n')[0]).to.equal('ran');
      expect(r.stderr).to.contain(`symlink /home -> ${path.join(tmp, 'h')}`).and.contain(`symlink /var/tmp -> ${path.join(tmp, 'v')}`);
      if (top) expect(r.stderr).to.contain(`symlink ${top} -> ${path.join(victim, 'x')}`);
      if (conf) expect(r.stderr).to.contain(`symlink /.singularity.d/libs -> ${path.join(victim, 'libs')}`);
      if (fs.existsSync('/scratch')) expect(r.stderr).to.contain(`symlink /scratch -> ${path.join(victim, 's')}`);
    });

    it(`-W: /var/tmp -> /tmp/…/v lands in the workdir's tmp: refused${how}`, () => {
      const r = launch(walk, tmp, ['exec', '-W', path.join(tmp, 'wd'), sif, 'true']);
      expect(r.status, r.stderr).to.equal(106);
      expect(r.stderr).to.contain(`symlink /var/tmp -> ${path.join(tmp, 'v')}`);
    });
  }
});
