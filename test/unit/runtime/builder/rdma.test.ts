import { expect } from 'chai';
import { buildLaunch } from '../../../../src/runtime/builder/build.js';
import { defaultConfig, parseConfig } from '../../../../src/runtime/builder/config.js';
import type { LaunchFlags, LaunchConfig } from '../../../../src/runtime/builder/types.js';
import { HOST_TREE, input, treeLookup } from './fixtures.js';

/** A host with RDMA: the device directory, the verbs provider list, /etc/rdma, the sysfs class (a symlink farm). */
const RDMA_HOST = {
  ...HOST_TREE,
  '/dev/infiniband': 'dir',
  '/dev/infiniband/uverbs0': 'other',
  '/dev/infiniband/rdma_cm': 'other',
  '/etc/libibverbs.d': 'dir',
  '/etc/rdma': 'dir',
  '/sys/class': 'dir',
  '/sys/class/infiniband': 'dir',
} as const;
/** libibverbs installed, but no RDMA device (this is most hosts with Open MPI). */
const NO_RDMA_HOST = { ...HOST_TREE, '/etc/libibverbs.d': 'dir', '/sys/class': 'dir' } as const;

const rdmaBinds = (flags: Partial<LaunchFlags>, tree: Record<string, string>, config: Partial<LaunchConfig> = {}) =>
  buildLaunch(input(flags, { host: { lookup: treeLookup(tree) }, config })).plan.mounts.flatMap((o) =>
    o.op === 'bind' && /infiniband|libibverbs|rdma/.test(o.src) ? [[o.src, o.dst, o.readonly]] : [],
  );

describe('runtime/builder: RDMA (rdma.ts)', () => {
  it('a host with /dev/infiniband: its config and /sys/class/infiniband read-only; /dev is the host\'s already', () => {
    expect(rdmaBinds({}, RDMA_HOST)).to.deep.equal([
      ['/etc/libibverbs.d', '/etc/libibverbs.d', true],
      ['/etc/rdma', '/etc/rdma', true],
      ['/sys/class/infiniband', '/sys/class/infiniband', true],
    ]);
  });

  it('--contain and --containall: /dev/infiniband is bound into the minimal /dev as well', () => {
    const want = [
      ['/dev/infiniband', '/dev/infiniband', false],
      ['/etc/libibverbs.d', '/etc/libibverbs.d', true],
      ['/etc/rdma', '/etc/rdma', true],
      ['/sys/class/infiniband', '/sys/class/infiniband', true],
    ];
    expect(rdmaBinds({ contain: true }, RDMA_HOST)).to.deep.equal(want);
    expect(rdmaBinds({ containAll: true }, RDMA_HOST)).to.deep.equal(want);
    // the device directory comes after the minimal /dev's tmpfs
    const ops = buildLaunch(input({ contain: true }, { host: { lookup: treeLookup(RDMA_HOST) } })).plan.mounts;
    const tmpfsDev = ops.findIndex((o) => o.op === 'tmpfs' && o.dst === '/dev');
    const ib = ops.findIndex((o) => o.op === 'bind' && o.dst === '/dev/infiniband');
    expect(tmpfsDev).to.be.greaterThan(-1);
    expect(ib).to.be.greaterThan(tmpfsDev);
  });

  it('only what the host has: a missing /etc/rdma or sysfs class is left out', () => {
    const { ['/etc/rdma']: _r, ['/sys/class/infiniband']: _s, ...tree } = RDMA_HOST;
    expect(rdmaBinds({ contain: true }, tree)).to.deep.equal([
      ['/dev/infiniband', '/dev/infiniband', false],
      ['/etc/libibverbs.d', '/etc/libibverbs.d', true],
    ]);
  });

  it('no /dev/infiniband: nothing is bound, even with libibverbs installed; the plan is the plain one', () => {
    expect(rdmaBinds({}, NO_RDMA_HOST)).to.deep.equal([]);
    expect(rdmaBinds({ contain: true }, NO_RDMA_HOST)).to.deep.equal([]);
    const plain = buildLaunch(input({}, {})).plan;
    expect(buildLaunch(input({}, { host: { lookup: treeLookup(NO_RDMA_HOST) } })).plan).to.deep.equal(plain);
  });

  it('--no-rdma and [mount] rdma = no turn it off; [mount] sys = no leaves /sys/class/infiniband out', () => {
    expect(rdmaBinds({ noRdma: true, contain: true }, RDMA_HOST)).to.deep.equal([]);
    const off = parseConfig('[mount]\nrdma = no\n', 'f');
    expect(off.mount.rdma).to.equal(false);
    expect(rdmaBinds({ contain: true }, RDMA_HOST, { mount: { ...defaultConfig().mount, rdma: false } })).to.deep.equal([]);
    expect(rdmaBinds({}, RDMA_HOST, { mount: { ...defaultConfig().mount, sys: false } }).map((b) => b[1])).to.deep.equal(['/etc/libibverbs.d', '/etc/rdma']);
    // [mount] dev = no: the image's /dev, so the devices are bound into it
    expect(rdmaBinds({}, RDMA_HOST, { mount: { ...defaultConfig().mount, dev: false } })[0]).to.deep.equal(['/dev/infiniband', '/dev/infiniband', false]);
  });
});
