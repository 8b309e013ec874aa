import { expect } from 'chai';
import { UsageError } from '../../../../src/errors/index.js';
import { parseBindList, parseHome, parseMount } from '../../../../src/runtime/builder/binds.js';
import { buildLaunch } from '../../../../src/runtime/builder/build.js';
import { input, treeLookup, HOST_TREE } from './fixtures.js';

describe('runtime/builder: binds', () => {
  it('parses src[:dst[:ro|rw]] comma lists, relative sources from cwd', () => {
    expect(parseBindList('/a,/b:/c,/d:/e:ro, ,x:/y:rw', '/w', '-B')).to.deep.equal([
      { src: '/a', dst: '/a', readonly: false },
      { src: '/b', dst: '/c', readonly: false },
      { src: '/d', dst: '/e', readonly: true },
      { src: '/w/x', dst: '/y', readonly: false },
    ]);
    expect(parseBindList('/a//b/../c/', '/', '-B')[0]).to.deep.equal({ src: '/a/c', dst: '/a/c', readonly: false });
  });

  for (const bad of ['/a:/b:rx', '/a:b', ':/b', '/a:/b:ro:x']) {
    it(`rejects ${JSON.stringify(bad)} as a usage error`, () => {
      expect(() => parseBindList(bad, '/', '--bind')).to.throw(UsageError).with.property('exitCode', 2);
    });
  }

  it('parses --home src[:dst]', () => {
    expect(parseHome('/scratch/me:/home/me', '/')).to.deep.equal({ src: '/scratch/me', dst: '/home/me' });
    expect(parseHome('h', '/w')).to.deep.equal({ src: '/w/h', dst: '/w/h' });
    expect(() => parseHome('/a:rel', '/')).to.throw(UsageError);
  });

  it('a missing bind source is a usage error naming the path, with a hint', () => {
    try {
      buildLaunch(input({ bind: ['/nope:/x'] }));
      expect.fail('should throw');
    } catch (e) {
      expect(e).to.be.instanceOf(UsageError);
      expect((e as UsageError).message).to.contain('/nope').and.contain('does not exist');
      expect((e as UsageError).hint).to.match(/Create \/nope/);
    }
  });

  it('HPCC_BIND and config binds come before -B, in that order', () => {
    const i = input({ bind: ['/opt/site:/b3'] }, { host: { env: { HPCC_BIND: '/data:/b2' } } });
    i.config.bindPaths.push('/scratch:/b1');
    const dsts = buildLaunch(i).plan.mounts.filter((m) => m.op === 'bind').map((m) => m.dst);
    expect(dsts.indexOf('/b1')).to.be.lessThan(dsts.indexOf('/b2'));
    expect(dsts.indexOf('/b2')).to.be.lessThan(dsts.indexOf('/b3'));
  });

  it('--no-home: no home bind, but the working directory is still bound (as Apptainer does)', () => {
    const { plan } = buildLaunch(input({ noHome: true }));
    expect(plan.mounts.some((m) => m.op === 'bind' && m.dst === '/home/alice')).to.equal(false);
    expect(plan.mounts.some((m) => m.op === 'bind' && m.src === '/home/alice/work')).to.equal(true);
    expect(plan.cwd).to.equal('/home/alice/work');
  });

  it('--pwd wins; a relative --pwd is refused', () => {
    expect(buildLaunch(input({ pwd: '/tmp' })).plan.cwd).to.equal('/tmp');
    expect(() => buildLaunch(input({ pwd: 'tmp' }))).to.throw(UsageError);
  });

  it('--contain: tmpfs /tmp, /var/tmp and $HOME, minimal /dev, no cwd or /scratch bind, cwd = $HOME', () => {
    const { plan } = buildLaunch(input({ contain: true }));
    const by = (dst: string) => plan.mounts.filter((m) => m.dst === dst).map((m) => m.op);
    expect(by('/tmp')).to.deep.equal(['tmpfs']);
    expect(by('/var/tmp')).to.deep.equal(['tmpfs']);
    expect(by('/home/alice')).to.deep.equal(['mkdir', 'tmpfs']);
    expect(by('/dev')).to.deep.equal(['tmpfs']);
    expect(by('/dev/null')).to.deep.equal(['bind']);
    expect(by('/scratch')).to.deep.equal([]);
    expect(plan.cwd).to.equal('/home/alice');
    expect(plan.pidNamespace).to.equal(false);
    expect(buildLaunch(input({ containAll: true })).plan.pidNamespace).to.equal(true);
  });

  it('a bind target inside another bind must exist on the host (hpcc never creates host paths)', () => {
    expect(() => buildLaunch(input({ bind: ['/data:/home/alice/newdir'] }))).to.throw(UsageError, /does not exist inside the bind of \/home\/alice/);
    const ok = buildLaunch(input({ bind: ['/data:/home/alice/work'] })).plan.mounts;
    expect(ok.filter((m) => m.dst === '/home/alice/work').map((m) => m.op)).to.deep.equal(['bind']);
  });

  it('a target below a tmpfs is created in the tmpfs; a file source gets a file target', () => {
    const { plan } = buildLaunch(input({ contain: true, bind: ['/home/alice/notes.txt:/home/alice/sub/n.txt'] }));
    const ops = plan.mounts.map((m) => `${m.op} ${m.dst}`);
    expect(ops).to.include.members(['mkdir /home/alice/sub', 'bind /home/alice/sub/n.txt']);
    expect(ops.indexOf('mkdir /home/alice/sub')).to.be.greaterThan(ops.indexOf('tmpfs /home/alice'));
    expect(plan.mounts.some((m) => m.op === 'mkdir' && m.dst === '/home/alice/sub/n.txt')).to.equal(false);
  });

  it('with overlay = none, default binds to missing targets are skipped and user binds fail', () => {
    const b = buildLaunch(input({}, { config: { overlay: 'none' } }));
    expect(b.plan.mounts.some((m) => m.op === 'overlay')).to.equal(false);
    expect(b.skipped.map((s) => s.dst)).to.include.members(['/home/alice', '/scratch']);
    expect(() => buildLaunch(input({ bind: ['/data:/newdir'] }, { config: { overlay: 'none' } }))).to.throw(UsageError, /overlay = none/);
    expect(() => buildLaunch(input({ bind: ['/data:/newdir'] }, { host: { env: { HPCC_OVERLAY: 'none' } } }))).to.throw(UsageError, /overlay/);
  });

  it('overlay methods: auto orders kernel, fuse, skeleton by what the node has; a forced mode gives that method alone', () => {
    const methods = (o: Parameters<typeof input>[1], flags: Parameters<typeof input>[0] = {}): unknown => {
      const ovl = buildLaunch(input({ bind: ['/data:/newdir'], ...flags }, o)).plan.mounts.find((m) => m.op === 'overlay');
      return ovl && ovl.op === 'overlay' ? [ovl.methods, ovl.fuseOverlayfs ?? null] : null;
    };
    const fuse = '/usr/bin/fuse-overlayfs';
    expect(methods({})).to.deep.equal([['kernel', 'skeleton'], null]);
    expect(methods({ host: { fuseOverlayfs: fuse } })).to.deep.equal([['kernel', 'fuse', 'skeleton'], fuse]);
    expect(methods({ host: { fuseOverlayfs: fuse, overlayInUserns: false } })).to.deep.equal([['fuse', 'skeleton'], fuse]);
    expect(methods({ host: { overlayInUserns: false } })).to.deep.equal([['skeleton'], null]);
    expect(methods({ host: { fuseOverlayfs: fuse }, config: { overlay: 'skeleton' } })).to.deep.equal([['skeleton'], null]);
    expect(methods({ host: { fuseOverlayfs: fuse, env: { HPCC_OVERLAY: 'fuse' } }, config: { overlay: 'kernel' } })).to.deep.equal([['fuse'], fuse]);
    expect(methods({ host: { overlayInUserns: false }, config: { overlay: 'kernel' } })).to.deep.equal([['kernel'], null]);
    // writable: never the skeleton
    expect(methods({ host: { fuseOverlayfs: fuse } }, { writableTmpfs: true })).to.deep.equal([['kernel', 'fuse'], fuse]);
    expect(() => buildLaunch(input({ bind: ['/data:/newdir'] }, { config: { overlay: 'fuse' } }))).to.throw(UsageError, /fuse-overlayfs/);
    expect(() => buildLaunch(input({}, { host: { env: { HPCC_OVERLAY: 'zfs' } } }))).to.throw(UsageError, /HPCC_OVERLAY/);
  });

  it('targets that are symlinks in the image are resolved inside the image', () => {
    const { plan } = buildLaunch(input());
    const lt = plan.mounts.find((m) => m.op === 'bind' && m.src.includes('zoneinfo'));
    expect(lt).to.deep.include({ dst: '/usr/share/zoneinfo/Etc/UTC', readonly: true });
  });

  it('default binds whose host source is absent are left out (no /scratch on the host)', () => {
    const tree = { ...HOST_TREE };
    delete tree['/scratch'];
    const { plan } = buildLaunch(input({}, { host: { lookup: treeLookup(tree) } }));
    expect(plan.mounts.some((m) => m.dst === '/scratch')).to.equal(false);
  });

  it('--writable-tmpfs makes the overlay writable; no overlay support is then an error', () => {
    expect(buildLaunch(input({ writableTmpfs: true })).plan.mounts[0]).to.deep.equal({ op: 'overlay', dst: '/', writable: true, methods: ['kernel'] });
    expect(() => buildLaunch(input({ writableTmpfs: true }, { host: { overlayInUserns: false } })))
      .to.throw(/fuse-overlayfs is not installed/)
      .that.includes({ code: 'HPCC_E_LAUNCH_NO_OVERLAY', exitCode: 105 });
    for (const overlay of ['skeleton', 'none', 'fuse'] as const) {
      expect(() => buildLaunch(input({ writableTmpfs: true }, { config: { overlay } })), overlay)
        .to.throw(/--writable-tmpfs needs an overlay/)
        .that.includes({ code: 'HPCC_E_LAUNCH_NO_OVERLAY', exitCode: 105 });
    }
  });

  it('no FUSE helper for a SIF root is a launch error with exit 104, not the helper usage code 96', () => {
    expect(() => buildLaunch(input({}, { host: { fuseHelper: null } })))
      .to.throw(/squashfuse/)
      .that.includes({ code: 'HPCC_E_LAUNCH_NO_SQUASHFUSE', exitCode: 104 });
  });

  it('config mount toggles switch default binds off', () => {
    const i = input();
    Object.assign(i.config.mount, { home: false, tmp: false, sys: false, hosts: false, passwd: false });
    const dsts = buildLaunch(i).plan.mounts.filter((m) => m.op !== 'mkdir').map((m) => m.dst);
    for (const d of ['/home/alice', '/tmp', '/var/tmp', '/sys', '/etc/hosts', '/etc/passwd']) expect(dsts).to.not.include(d);
  });
});

describe('runtime/builder: --mount and -W/--workdir', () => {
  it('--mount: type=bind with source/src and destination/dst/target, ro or readonly[=true|false], CSV quoting, relative sources', () => {
    expect(parseMount('type=bind,source=/a,destination=/b', '/w')).to.deep.equal({ src: '/a', dst: '/b', readonly: false });
    expect(parseMount('type=bind,src=x,dst=/b,ro', '/w')).to.deep.equal({ src: '/w/x', dst: '/b', readonly: true });
    expect(parseMount('type=bind,src=/a,target=/b,readonly=false', '/')).to.deep.equal({ src: '/a', dst: '/b', readonly: false });
    expect(parseMount('type=bind,"src=/data/a,b:c",dst=/in:x,readonly=true', '/')).to.deep.equal({ src: '/data/a,b:c', dst: '/in:x', readonly: true });
    expect(parseMount('type=bind,src=/a,dst=/b,bind-propagation=rprivate', '/').dst).to.equal('/b');
  });

  for (const [bad, why] of [
    ['src=/a,dst=/b', /no type=/],
    ['type=volume,src=/a,dst=/b', /type=volume is not supported/],
    ['type=bind,src=/a', /needs both a source and a destination/],
    ['type=bind,src=/a,dst=rel', /not an absolute path/],
    ['type=bind,src=/a,dst=/b,ro=maybe', /expected true or false/],
    ['type=bind,src=/a,dst=/b,consistency=cached', /unknown field "consistency"/],
    ['type=bind,src=/a,dst=/b,bind-propagation=shared', /bind-propagation=shared is not supported/],
    ['type=bind,"src=/a,dst=/b', /unbalanced quote/],
  ] as const) {
    it(`--mount ${JSON.stringify(bad)} → usage error`, () => {
      expect(() => parseMount(bad, '/')).to.throw(UsageError, why).with.property('exitCode', 2);
    });
  }

  it('--mount binds come after -B binds; a missing source is a usage error', () => {
    const p = buildLaunch(input({ bind: ['/data:/d1'], mount: ['type=bind,src=/data,dst=/d2,ro'] })).plan;
    const dsts = p.mounts.filter((m) => m.op === 'bind').map((m) => m.dst);
    expect(dsts.indexOf('/d2')).to.be.greaterThan(dsts.indexOf('/d1'));
    expect(p.mounts.find((m) => m.op === 'bind' && m.dst === '/d2')).to.deep.include({ src: '/data', readonly: true });
    expect(() => buildLaunch(input({ mount: ['type=bind,src=/nope,dst=/x'] }))).to.throw(UsageError, /--mount: bind source \/nope does not exist/);
  });

  it('-W: /tmp and /var/tmp from its tmp/ and var_tmp/; with --contain also $HOME from its home/', () => {
    const tree = { ...HOST_TREE, '/wd': 'dir', '/wd/tmp': 'dir', '/wd/var_tmp': 'dir', '/wd/home': 'dir' } as const;
    const binds = (flags: Parameters<typeof input>[0]) =>
      Object.fromEntries(
        buildLaunch(input(flags, { host: { lookup: treeLookup(tree) } }))
          .plan.mounts.filter((m) => m.op === 'bind' || m.op === 'tmpfs')
          .map((m) => [m.dst, m.op === 'bind' ? m.src : 'tmpfs']),
      );
    const w = binds({ workdir: '/wd' });
    expect([w['/tmp'], w['/var/tmp'], w['/home/alice']]).to.deep.equal(['/wd/tmp', '/wd/var_tmp', '/home/alice']);
    const c = binds({ workdir: '/wd', contain: true });
    expect([c['/tmp'], c['/var/tmp'], c['/home/alice']]).to.deep.equal(['/wd/tmp', '/wd/var_tmp', '/wd/home']);
    expect(binds({ contain: true })['/tmp']).to.equal('tmpfs');
  });
});

describe('runtime/builder: --fakeroot', () => {
  it('uid and gid 0 inside, mapped to the caller; root in passwd, group, USER, LOGNAME; $HOME is /root, bound from the real home', () => {
    const b = buildLaunch(input({ fakeroot: true }));
    expect(b.plan.uid).to.deep.equal({ inside: 0, outside: 1000 });
    expect(b.plan.gid).to.deep.equal({ inside: 0, outside: 1000 });
    const file = (dst: string) => (b.plan.mounts.find((m) => m.op === 'file' && m.dst === dst) as { content: string } | undefined)?.content ?? '';
    expect(file('/etc/passwd').split('\n').filter((l) => l.startsWith('root:'))).to.deep.equal(['root:x:0:0:root:/root:/bin/bash']);
    expect(file('/etc/passwd')).to.not.contain('alice');
    expect(file('/etc/group')).to.match(/^root:x:0:/m);
    const env = b.plan.env.join('\n');
    expect(env).to.match(/^HOME=\/root$/m).and.match(/^USER=root$/m).and.match(/^LOGNAME=root$/m);
    expect(b.plan.mounts.find((m) => m.op === 'bind' && m.dst === '/root')).to.deep.include({ src: '/home/alice' });
    expect(b.plan.cwd).to.equal('/home/alice/work');
    // an explicit --home still wins
    expect(buildLaunch(input({ fakeroot: true, home: '/data:/h' })).plan.mounts.some((m) => m.op === 'bind' && m.dst === '/h')).to.equal(true);
  });
});

describe('runtime/builder: stage choice', () => {
  it('takes the first stage candidate no bind source overlaps', () => {
    expect(buildLaunch(input()).plan.stage).to.equal('/mnt');
    expect(buildLaunch(input({ bind: ['/data:/mnt'] })).plan.stage).to.equal('/mnt', 'a destination may overlap');
    const i = input({}, { host: { lookup: treeLookup({ ...HOST_TREE, '/mnt': 'dir', '/mnt/x': 'dir' }) } });
    i.flags.bind = ['/mnt/x:/x'];
    const p = buildLaunch(i).plan;
    expect(p.stage).to.equal('/tmp/hpcc-1000');
    expect(p.rootfs).to.deep.include({ mountpoint: '/tmp/hpcc-1000/image' });
  });
});
