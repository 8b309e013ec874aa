/**
 * --fakeroot end to end as the unprivileged test user: root inside, the
 * caller outside (files it makes on the host are the caller's), no
 * capabilities and no_new_privs as in every launch, /root is the caller's
 * home, and with --writable-tmpfs root can change the image's root-owned
 * files (in the temporary layer only).
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IS_ROOT, removeTree, testUserIds } from '../helpers/env.js';
import { hpccAs, makeE2eImage, type E2eImage } from './launch-fixture.js';

describe('e2e: --fakeroot', function () {
  this.timeout(120_000);
  let img: E2eImage;

  before(function () {
    img = makeE2eImage(this, 'hpcc-e2e-fakeroot-');
  });
  after(() => {
    if (img?.tmp) removeTree(img.tmp);
  });

  it("root inside with no capabilities; what it makes on the host is the caller's; $HOME=/root", () => {
    const out = path.join(img.hostDir, 'made-by-root');
    const script = `id -u; id -g; echo "$HOME $USER"; grep -E 'CapEff|NoNewPrivs' /proc/self/status; touch ${out}`;
    const r = hpccAs(img.tmp, ['exec', '-B', img.hostDir, '--fakeroot', img.sif, 'sh', '-c', script]);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout.split('\n').slice(0, 3)).to.deep.equal(['0', '0', '/root root']);
    expect(r.stdout).to.match(/CapEff:\s+0+\n/).and.match(/NoNewPrivs:\s+1/);
    const st = fs.statSync(out);
    const me = IS_ROOT ? testUserIds().uid : process.getuid!();
    expect(st.uid).to.equal(me);
  });

  it('with --writable-tmpfs root changes a root-owned file of the image (the caller cannot), in the temporary layer only', () => {
    const f = '/.singularity.d/env/90-environment.sh';
    const script = `echo '# changed' >> ${f} 2>/dev/null && grep -c '# changed' ${f} || echo DENIED`;
    const user = hpccAs(img.tmp, ['exec', '--writable-tmpfs', img.sif, 'sh', '-c', script]);
    expect(user.status, user.stderr).to.equal(0);
    expect(user.stdout).to.equal('DENIED\n');
    const root = hpccAs(img.tmp, ['exec', '--fakeroot', '--writable-tmpfs', img.sif, 'sh', '-c', script]);
    expect(root.status, root.stderr).to.equal(0);
    expect(root.stdout).to.equal('1\n');
    const again = hpccAs(img.tmp, ['exec', '--fakeroot', img.sif, 'sh', '-c', `grep -c changed ${f} || true`]);
    expect(again.stdout).to.equal('0\n');
  });
});
