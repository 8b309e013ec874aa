/**
 * Hostile image symlinks and mount destinations (the plan builder's half of
 * the defence; the helper's half is test/e2e/launch-escape.test.ts): a
 * destination that crosses an image symlink leading onto a host layer is
 * refused with HPCC_E_LAUNCH_TARGET_SYMLINK (user binds) or left out with
 * the symlink named (default mounts); no op ever lands below the host path
 * the symlink names; a dangling symlink inside the image gets its target made
 * in the overlay.
 */
import { expect } from 'chai';
import { HpccError } from '../../../../src/errors/index.js';
import { buildLaunch, type BuiltLaunch } from '../../../../src/runtime/builder/build.js';
import type { GpuFacts } from '../../../../src/runtime/builder/gpu.js';
import type { LaunchFlags, PathKind } from '../../../../src/runtime/builder/types.js';
import { HOST_TREE, IMAGE_TREE, input, treeLookup, treeReadlink } from './fixtures.js';

/** The fixture image plus `extra` entries (`'->target'` for symlinks). */
function withImage(extra: Record<string, PathKind | string>) {
  const tree = { ...IMAGE_TREE, ...extra };
  return { lookup: treeLookup(tree), readlink: treeReadlink(tree) };
}

const HOST = { ...HOST_TREE, '/home/alice/private': 'dir', '/srv': 'dir', '/srv/proj': 'dir', '/wd': 'dir', '/wd/tmp': 'dir', '/wd/var_tmp': 'dir' } as Record<string, PathKind | string>;

const GPU: GpuFacts = {
  libs: [{ name: 'libnvidia-ml.so.1', path: '/usr/lib/libnvidia-ml.so.1' }],
  bins: [],
  devices: [{ path: '/dev/nvidia0', dir: false }],
  persistenced: null,
};

function build(flags: Partial<LaunchFlags>, image: Record<string, PathKind | string>, cwd = '/home/alice/work'): BuiltLaunch {
  return buildLaunch(input(flags, { image: withImage(image), host: { lookup: treeLookup({ ...HOST, '/usr/lib/libnvidia-ml.so.1': 'file', '/dev/nvidia0': 'other' }), cwd, gpu: GPU } }));
}

/** No op of the plan may name a path below `hostDir` (where the hostile link points). */
function noOpBelow(b: BuiltLaunch, hostDir: string): void {
  for (const o of b.plan.mounts) expect(o.dst === hostDir || o.dst.startsWith(`${hostDir}/`), `${o.op} ${o.dst}`).to.equal(false);
}

function refused(f: () => unknown, link: string): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).to.be.instanceOf(HpccError);
  const e = err as HpccError;
  expect([e.code, e.exitCode]).to.deep.equal(['HPCC_E_LAUNCH_TARGET_SYMLINK', 106]);
  expect(e.message).to.contain(`symlink ${link} ->`);
  expect(e.hint).to.be.a('string');
}

describe('runtime/builder: image symlinks never lead a mount destination onto the host', () => {
  const evil = { '/data': '->/home/alice/private' };

  it('-B and --mount through a dangling link into the $HOME bind: refused, naming the link', () => {
    refused(() => build({ bind: ['/data:/data/proj'] }, evil), '/data');
    refused(() => build({ mount: ['type=bind,src=/data,dst=/data/proj'] }, evil), '/data');
    // relative and '..' links are resolved inside the container's root too
    refused(() => build({ bind: ['/data:/data/proj'] }, { '/data': '->../../../home/alice/private' }), '/data');
    refused(() => build({ bind: ['/data:/data/proj'] }, { '/data': '->/opt/x', '/opt': 'dir', '/opt/x': '->/home/alice' }), '/data');
  });

  it('a link that resolves to an existing host directory is refused as well (no mount point through it)', () => {
    refused(() => build({ bind: ['/data:/data'] }, evil), '/data');
  });

  it('the working directory below a link: left out with the link named, the container starts in $HOME', () => {
    const b = build({}, { '/srv': '->/home/alice/x' }, '/srv/proj');
    expect(b.skipped.find((s) => s.dst === '/srv/proj')?.symlink).to.include({ link: '/srv', target: '/home/alice/x' });
    expect(b.plan.cwd).to.equal('/home/alice');
    noOpBelow(b, '/home/alice/x');
  });

  it('$HOME, /tmp, /var/tmp, /scratch: default mounts through a link onto an earlier host bind are left out', () => {
    const b = build({}, { '/home': '->/tmp/h', '/var/tmp': '->/tmp/v', '/scratch': '->/home/alice/s' });
    const links = b.skipped.filter((s) => s.symlink).map((s) => [s.dst, s.symlink!.link]);
    expect(links).to.deep.include.members([
      ['/var/tmp', '/var/tmp'],
      ['/home/alice', '/home'],
    ]);
    noOpBelow(b, '/tmp/h');
    noOpBelow(b, '/tmp/v');
    noOpBelow(b, '/home/alice/s');
  });

  it('-W: /var/tmp through a link into the workdir bind of /tmp is refused', () => {
    refused(() => build({ workdir: '/wd' }, { '/var/tmp': '->/tmp/v' }), '/var/tmp');
  });

  it('--nv: library binds below a link are left out; device binds stay in the --contain /dev tmpfs', () => {
    const b = build({ nv: true }, { '/.singularity.d/libs': '->/home/alice/private' });
    expect(b.skipped.some((s) => s.symlink?.link === '/.singularity.d/libs')).to.equal(true);
    noOpBelow(b, '/home/alice/private');
    const c = build({ nv: true, contain: true, bind: ['/data:/data'] }, { '/dev': '->/data' });
    const dev = c.plan.mounts.find((o) => o.op === 'bind' && o.src === '/dev/nvidia0');
    expect(dev?.dst).to.equal('/data/nvidia0'); // below the /dev tmpfs (placed at the link's target before /data was bound)
    expect(c.plan.mounts.findIndex((o) => o.op === 'tmpfs' && o.dst === '/data')).to.be.lessThan(c.plan.mounts.indexOf(dev!));
  });

  it('generated /etc/passwd through a link onto the host: left out', () => {
    const b = build({}, { '/etc/passwd': '->/home/alice/private/passwd' });
    expect(b.skipped.find((s) => s.dst === '/etc/passwd')?.symlink?.link).to.equal('/etc/passwd');
    noOpBelow(b, '/home/alice/private');
  });

  it('a dangling link inside the image: its target is made in the overlay and mounted on', () => {
    const b = build({ bind: ['/data:/data/proj'] }, { '/data': '->/opt/data', '/opt': 'dir' });
    const ops = b.plan.mounts.map((o) => `${o.op} ${o.dst}`);
    expect(ops[0]).to.equal('overlay /');
    expect(ops).to.include.members(['mkdir /opt/data', 'mkdir /opt/data/proj', 'bind /opt/data/proj']);
    expect(ops).to.not.include('mkdir /data');
  });

  it('a link within the image or into a tmpfs of the plan is followed as before', () => {
    const b = build({ contain: true, bind: ['/data:/var/tmp/x'] }, { '/var/tmp': '->/tmp' });
    expect(b.plan.mounts.map((o) => `${o.op} ${o.dst}`)).to.include('bind /tmp/x');
  });
});
