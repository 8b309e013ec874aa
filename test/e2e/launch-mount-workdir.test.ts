/**
 * --mount and -W/--workdir end to end, through the native front as the
 * unprivileged test user: a source path holding ':' and ',' (what -B cannot
 * express) bound read-only; /tmp of the container landing in the workdir
 * hpcc created; the same command lines again from their launch memos.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IS_ROOT, REPO_ROOT, removeTree, runUnprivileged, testUserIds } from '../helpers/env.js';
import { makeE2eImage, type E2eImage } from './launch-fixture.js';

const FRONT = path.join(REPO_ROOT, 'dist/native/hpcc');

describe('e2e: --mount and -W/--workdir', function () {
  this.timeout(120_000);
  let img: E2eImage;
  let odd: string;
  let cache: string;

  before(function () {
    img = makeE2eImage(this, 'hpcc-e2e-mount-');
    odd = path.join(img.tmp, 'data:v1,final');
    fs.mkdirSync(odd);
    fs.writeFileSync(path.join(odd, 'f.txt'), 'odd path\n');
    cache = path.join(img.tmp, 'cache');
    fs.mkdirSync(cache);
    if (IS_ROOT) {
      const { uid, gid } = testUserIds();
      execFileSync('chown', ['-R', `${uid}:${gid}`, odd, cache]);
    }
  });
  after(() => {
    if (img?.tmp) removeTree(img.tmp);
  });

  const front = (args: string[]) =>
    runUnprivileged(FRONT, args, { cwd: img.tmp, env: { HPCC_CACHEDIR: cache, HPCC_DEBUG: '1' }, timeout: 60_000 });
  const used = (r: { stderr: string }) => /launch memo \S+: used/.test(r.stderr);

  it('--mount binds a path holding ":" and ",", read-only; the second launch comes from its memo', () => {
    const args = ['exec', '--mount', `type=bind,"source=${odd}",destination=/mnt/odd,ro`, img.sif, 'sh', '-c', 'cat /mnt/odd/f.txt; touch /mnt/odd/new 2>/dev/null && echo WROTE || echo READONLY'];
    for (const memo of [false, true]) {
      const r = front(args);
      expect([r.status, r.stdout, used(r)], r.stderr).to.deep.equal([0, 'odd path\nREADONLY\n', memo]);
    }
    expect(fs.existsSync(path.join(odd, 'new'))).to.equal(false);
    const bad = front(['exec', '--mount', 'type=volume,src=/x,dst=/y', img.sif, 'true']);
    expect(bad.status).to.equal(2);
    expect(bad.stderr).to.contain('type=volume is not supported').and.contain('Try this:');
  });

  it('-W: the container /tmp is DIR/tmp, which hpcc creates (0700, yours); the second launch comes from its memo', () => {
    const wd = path.join(img.tmp, 'wd');
    for (const [memo, name] of [[false, 'one'], [true, 'two']] as const) {
      const r = front(['exec', '-W', wd, img.sif, 'sh', '-c', `touch /tmp/${name} /var/tmp/${name}-v && ls /tmp`]);
      expect([r.status, used(r)], r.stderr).to.deep.equal([0, memo]);
      expect(r.stdout.split('\n')).to.include(name);
      expect(fs.existsSync(path.join(wd, 'tmp', name))).to.equal(true);
      expect(fs.existsSync(path.join(wd, 'var_tmp', `${name}-v`))).to.equal(true);
    }
    const st = fs.statSync(path.join(wd, 'tmp'));
    expect(st.mode & 0o777).to.equal(0o700);
    if (IS_ROOT) expect(st.uid).to.equal(testUserIds().uid);
    // the host's /tmp did not get the file
    expect(fs.existsSync('/tmp/one')).to.equal(false);
  });
});
