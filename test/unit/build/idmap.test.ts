import { expect } from 'chai';
import { findSubidRange, forcedMode, mapLines, planIdMapFrom, type IdMapFacts } from '../../../src/build/idmap.js';
import { sourcesFor } from '../../../src/build/debootstrap.js';
import { collapseWarning, isCollapseLine } from '../../../src/build/run-root.js';
import { buildModeCheck } from '../../../src/core/doctor-build.js';
import { BuildEnvironmentError } from '../../../src/errors/index.js';

const facts = (extra: Partial<IdMapFacts> = {}): IdMapFacts => ({
  uid: 1001,
  gid: 1002,
  user: 'alice',
  subuidText: 'bob:100000:65536\nalice:165536:65536\n',
  subgidText: '1001:300000:1000\n',
  newuidmap: '/usr/bin/newuidmap',
  newgidmap: '/usr/bin/newgidmap',
  ...extra,
});

describe('build/idmap: choosing the build id map', () => {
  it('finds ranges by name and by uid, skipping malformed and empty lines', () => {
    const text = '# comment\nalice:x:1\nalice:5:0\n\nalice:200000:10\nalice:300000:5\n';
    expect(findSubidRange(text, 'alice', 1001)).to.deep.equal({ start: 200000, count: 10 });
    expect(findSubidRange('1001:7:3\n', 'alice', 1001)).to.deep.equal({ start: 7, count: 3 });
    expect(findSubidRange('alicex:7:3\n', 'alice', 1001)).to.equal(undefined);
    expect(findSubidRange(null, 'alice', 1001)).to.equal(undefined);
  });

  it('subids when both ranges and both helpers exist; the map puts the caller at 0', () => {
    const p = planIdMapFrom(facts());
    expect(p).to.include({ mode: 'subids', uid: 1001, gid: 1002 });
    expect(p.subuid).to.deep.equal({ start: 165536, count: 65536 });
    expect(p.subgid).to.deep.equal({ start: 300000, count: 1000 });
    expect(p.reason).to.equal('alice has subordinate ids 165536-231071 (uid) and 300000-300999 (gid)');
    expect(mapLines(p)).to.deep.equal({ uid: '0 1001 1\n1 165536 65536', gid: '0 1002 1\n1 300000 1000' });
  });

  it('single, with the reason, when a range or a helper is missing', () => {
    expect(planIdMapFrom(facts({ subgidText: '' })).reason).to.equal('no /etc/subgid entry for alice');
    expect(planIdMapFrom(facts({ subuidText: null, subgidText: null })).reason).to.equal('no /etc/subuid or /etc/subgid entry for alice');
    expect(planIdMapFrom(facts({ newuidmap: null })).reason).to.match(/^newuidmap missing/);
    expect(planIdMapFrom(facts({ user: null, subuidText: '' })).reason).to.equal('no /etc/subuid entry for uid 1001');
    const p = planIdMapFrom(facts({ newgidmap: null }));
    expect(p.mode).to.equal('single');
    expect(mapLines(p)).to.deep.equal({ uid: '0 1001 1', gid: '0 1002 1' });
  });

  it('forcing: single always works; subids without ranges is a typed error; a bad env value too', () => {
    expect(planIdMapFrom(facts(), 'single', 'HPCC_BUILD_IDMAP')).to.include({ mode: 'single' });
    expect(() => planIdMapFrom(facts({ subuidText: '' }), 'subids', 'HPCC_BUILD_IDMAP'))
      .to.throw(BuildEnvironmentError, /requested by HPCC_BUILD_IDMAP, but no \/etc\/subuid entry for alice/)
      .with.property('code', 'HPCC_E_BUILD_NO_SUBIDS');
    expect(forcedMode(undefined, { HPCC_BUILD_IDMAP: 'single' })).to.equal('single');
    expect(forcedMode(undefined, { HPCC_BUILD_IDMAP: 'auto' })).to.equal(undefined);
    expect(forcedMode('subids', { HPCC_BUILD_IDMAP: 'single' })).to.equal('subids');
    expect(() => forcedMode(undefined, { HPCC_BUILD_IDMAP: 'many' })).to.throw(BuildEnvironmentError).with.property('code', 'HPCC_E_BUILD_IDMAP');
  });

  it('real root maps 0-65535 to themselves', () => {
    const p = planIdMapFrom(facts({ uid: 0, gid: 0, subuidText: null, subgidText: null, newuidmap: null }));
    expect(p.mode).to.equal('subids');
    expect(mapLines(p)).to.deep.equal({ uid: '0 0 65536', gid: '0 0 65536' });
  });

  it('doctor row: ok for subids, warn with the fix for single, fail for a bad setting', () => {
    expect(buildModeCheck(planIdMapFrom(facts()), '/usr/bin/mmdebstrap')).to.include({ status: 'ok' });
    const w = buildModeCheck(planIdMapFrom(facts({ subuidText: '' })), null);
    expect(w.status).to.equal('warn');
    expect(w.detail).to.include('no /etc/subuid entry for alice');
    expect(w.detail).to.include('mmdebstrap not installed');
    expect(w.fix).to.include('usermod --add-subuids');
    const f = buildModeCheck(new BuildEnvironmentError('HPCC_E_BUILD_IDMAP', 'bad', { hint: 'h' }), null);
    expect(f).to.include({ status: 'fail', fix: 'h' });
  });
});

describe('build/debootstrap and run-root: pure parts', () => {
  const targets = [
    { uri: 'http://m/debian/', release: 'bookworm', component: 'main' },
    { uri: 'http://m/debian/', release: 'bookworm-updates', component: 'main' },
    { uri: 'http://m/debian-security/', release: 'bookworm-security', component: 'main' },
  ];
  it('apt sources: MirrorURL wins; the host suite takes every host source; another suite the base mirrors', () => {
    expect(sourcesFor('trixie', 'http://x/debian', targets, 'bookworm')).to.deep.equal(['deb http://x/debian trixie main']);
    expect(sourcesFor('bookworm', undefined, targets, 'bookworm')).to.have.length(3);
    expect(sourcesFor('trixie', undefined, targets, 'bookworm')).to.deep.equal(['deb http://m/debian/ trixie main']);
  });
  it('recognizes refused owner changes and words the single-id warning', () => {
    expect(isCollapseLine("chown: changing ownership of '/x': Invalid argument")).to.equal(true);
    expect(isCollapseLine('E: setgroups 65534 failed - setgroups (22: Invalid argument)')).to.equal(true);
    expect(isCollapseLine('cat: /nope: No such file or directory')).to.equal(false);
    const w = collapseWarning('%post', 'no /etc/subuid entry for alice', ['a', 'b']);
    expect(w).to.match(/^%post: single-id build \(no \/etc\/subuid entry for alice\).*Collapsed: a; b\./);
  });
});
