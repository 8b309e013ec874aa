import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkWarm, probeUsernsJoin } from '../../../src/core/doctor-warm.js';
import { makeTempDir, removeTree } from '../../helpers/env.js';

describe('core/doctor-warm: the "warm mounts" check', () => {
  let tmp: string;
  const uid = process.getuid!();
  beforeEach(() => {
    tmp = makeTempDir('hpcc-doctor-warm-');
  });
  afterEach(() => removeTree(tmp));
  const env = (extra: Record<string, string> = {}) => ({ HPCC_TMPDIR: tmp, HPCC_CONFIG: path.join(tmp, 'none.conf'), ...extra });
  const works = () => null;

  it('on: the idle time and where it comes from, the rendezvous directory (created by launches when missing)', () => {
    fs.writeFileSync(path.join(tmp, 'none.conf'), '[launch]\nwarm = 42\n');
    let c = checkWarm(env(), uid, works);
    expect(c.status).to.equal('ok');
    expect(c.detail).to.contain('42 s unused ([launch] warm');
    expect(c.detail).to.contain(path.join(tmp, `hpcc-${uid}`, 'warm'));
    c = checkWarm(env({ HPCC_WARM_IDLE: '7' }), uid, works);
    expect(c.detail).to.contain('7 s unused (HPCC_WARM_IDLE)');
  });

  it('off with 0; a bad value fails with the fix', () => {
    fs.writeFileSync(path.join(tmp, 'none.conf'), '');
    expect(checkWarm(env({ HPCC_WARM_IDLE: '0' }), uid, works)).to.include({ status: 'ok' });
    expect(checkWarm(env({ HPCC_WARM_IDLE: '0' }), uid, works).detail).to.match(/^off \(HPCC_WARM_IDLE = 0\)/);
    const bad = checkWarm(env({ HPCC_WARM_IDLE: 'soon' }), uid, works);
    expect(bad.status).to.equal('fail');
    expect(bad.fix).to.contain('604800');
  });

  it('a rendezvous directory the helper would refuse, or a failing join probe, is a warning with the fix', () => {
    fs.writeFileSync(path.join(tmp, 'none.conf'), '');
    const warm = path.join(tmp, `hpcc-${uid}`, 'warm');
    fs.mkdirSync(warm, { recursive: true, mode: 0o700 });
    fs.chmodSync(path.join(tmp, `hpcc-${uid}`), 0o700);
    expect(checkWarm(env(), uid, works).status).to.equal('ok');
    fs.chmodSync(warm, 0o770);
    let c = checkWarm(env(), uid, works);
    expect(c.status).to.equal('warn');
    expect(c.fix).to.contain(`Remove ${warm}`);
    fs.chmodSync(warm, 0o700);
    c = checkWarm(env(), uid, () => 'nsenter: reassociate to namespace failed: Operation not permitted');
    expect(c).to.include({ status: 'warn' });
    expect(c.detail).to.contain('Operation not permitted');
    expect(c.fix).to.contain('setns(CLONE_NEWUSER)');
  });

  it('the probe joins a user namespace for real (unshare + nsenter)', function () {
    this.timeout(20_000);
    expect(probeUsernsJoin()).to.equal(null);
  });
});
