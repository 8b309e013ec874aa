import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkFront, checkKernel, checkUsernsSysctls, gpuCheck, rdmaCheck, renderChecks } from '../../../src/core/doctor.js';
import { makeTempDir, removeTree } from '../../helpers/env.js';

describe('core/doctor: checks and their fixes', () => {
  it('kernel: FUSE in userns needs 4.18, overlay 5.11', () => {
    expect(checkKernel('4.15.0-generic').status).to.equal('fail');
    expect(checkKernel('5.4.0-100').status).to.equal('warn');
    expect(checkKernel('5.4.0-100').fix).to.match(/5\.11/);
    expect(checkKernel('6.1.0-18-amd64').status).to.equal('ok');
  });

  it('sysctls: disabled user namespaces and the AppArmor restriction fail with the sysctl to fix them', () => {
    const sys = (vals: Record<string, string>) => (p: string) => vals[p] ?? null;
    const bad = checkUsernsSysctls(
      sys({
        '/proc/sys/user/max_user_namespaces': '0',
        '/proc/sys/kernel/unprivileged_userns_clone': '0',
        '/proc/sys/kernel/apparmor_restrict_unprivileged_userns': '1',
      }),
    );
    expect(bad.map((c) => c.status)).to.deep.equal(['fail', 'fail', 'fail']);
    expect(bad[0]!.fix).to.contain('user.max_user_namespaces');
    expect(bad[1]!.fix).to.contain('kernel.unprivileged_userns_clone=1');
    expect(bad[2]!.fix).to.contain('apparmor_restrict_unprivileged_userns=0');
    const good = checkUsernsSysctls(sys({ '/proc/sys/user/max_user_namespaces': '1000' }));
    expect(good.map((c) => [c.name, c.status])).to.deep.equal([['user.max_user_namespaces', 'ok']]);
    expect(renderChecks(bad)).to.match(/\[FAIL\] user\.max_user_namespaces.*\n {7}fix: /);
  });

  it('hpcc command: the native front on PATH is ok; bin/run.js, nothing, or no front built is a warning with the fix', () => {
    const tmp = makeTempDir('hpcc-doctor-front-');
    try {
      const root = path.join(tmp, 'install');
      fs.mkdirSync(path.join(root, 'dist', 'native'), { recursive: true });
      fs.mkdirSync(path.join(root, 'bin'));
      const front = path.join(root, 'dist', 'native', 'hpcc');
      fs.writeFileSync(path.join(root, 'bin', 'run.js'), '', { mode: 0o755 });
      const bin = path.join(tmp, 'bin');
      fs.mkdirSync(bin);
      const env = { PATH: `relative:${path.join(tmp, 'empty')}:${bin}` };
      expect(checkFront(env, root)).to.include({ status: 'warn' }).and.have.property('fix').that.contains('npm run build');
      fs.writeFileSync(front, '', { mode: 0o755 });
      const none = checkFront(env, root);
      expect([none.status, none.detail]).to.deep.equal(['warn', 'no hpcc on PATH']);
      expect(none.fix).to.contain(`ln -s ${front}`);
      fs.symlinkSync(path.join(root, 'bin', 'run.js'), path.join(bin, 'hpcc'));
      const node = checkFront(env, root);
      expect(node.status).to.equal('warn');
      expect(node.detail).to.contain('not the native front');
      fs.rmSync(path.join(bin, 'hpcc'));
      fs.symlinkSync(front, path.join(bin, 'hpcc'));
      expect(checkFront(env, root)).to.include({ status: 'ok' });
      expect(checkFront({ ...env, HPCC_MEMO: '0' }, root).detail).to.contain('HPCC_MEMO=0');
    } finally {
      removeTree(tmp);
    }
  });
  it("hpcc command in a release (docs/release.md): the fix links the release's bin/hpcc", () => {
    const tmp = makeTempDir('hpcc-doctor-release-');
    try {
      const root = path.join(tmp, 'opt', 'lib', 'hpcc');
      fs.mkdirSync(path.join(root, 'dist', 'native'), { recursive: true });
      fs.writeFileSync(path.join(root, 'dist', 'native', 'hpcc'), '', { mode: 0o755 });
      fs.mkdirSync(path.join(tmp, 'opt', 'bin'));
      const env = { PATH: path.join(tmp, 'empty') };
      expect(checkFront(env, root).fix).to.contain(`ln -s ${path.join(root, 'dist', 'native', 'hpcc')} `);
      fs.symlinkSync('../lib/hpcc/dist/native/hpcc', path.join(tmp, 'opt', 'bin', 'hpcc'));
      expect(checkFront(env, root).fix).to.contain(`ln -s ${path.join(tmp, 'opt', 'bin', 'hpcc')} ~/.local/bin/hpcc`);
    } finally {
      removeTree(tmp);
    }
  });
  it('GPU checks: libraries found → ok with what --nv would bind; devices without libraries → a warning with the fix; neither → ok', () => {
    const found = gpuCheck('nvidia', {
      libs: ['libcuda.so.1', 'libcuda.so', 'libnvidia-ml.so.1', 'libnvidia-ptxjitcompiler.so.1', 'libnvidia-nvvm.so.4'].map((name) => ({ name, path: `/usr/lib/${name}` })),
      bins: [{ name: 'nvidia-smi', path: '/usr/bin/nvidia-smi' }],
      devices: [{ path: '/dev/nvidia0', dir: false }],
      persistenced: null,
    });
    expect(found.status).to.equal('ok');
    expect(found.detail).to.contain('libcuda.so.1, libcuda.so, libnvidia-ml.so.1, libnvidia-ptxjitcompiler.so.1… (5)').and.contain('nvidia-smi').and.contain('/dev/nvidia0');
    const devOnly = gpuCheck('amd', { libs: [], bins: [], devices: [{ path: '/dev/kfd', dir: false }, { path: '/dev/dri', dir: true }], persistenced: null });
    expect(devOnly).to.include({ status: 'warn', name: '--rocm (AMD ROCm)' });
    expect(devOnly.detail).to.contain('/dev/kfd /dev/dri present');
    expect(devOnly.fix).to.contain('[gpu] libdirs').and.contain('/etc/hpcc/rocmliblist.conf');
    const none = gpuCheck('nvidia', { libs: [], bins: [], devices: [], persistenced: null });
    expect(none.status).to.equal('ok');
    expect(none.detail).to.contain('--nv would bind nothing');
  });
  it('RDMA check: lists the devices, configuration and sysfs class a launch binds; says when [mount] rdma = no; nothing without /dev/infiniband', () => {
    const tree: Record<string, string[]> = {
      '/dev/infiniband': ['uverbs0', 'rdma_cm', 'umad0'],
      '/etc/libibverbs.d': ['mlx5.driver'],
      '/sys/class/infiniband': ['mlx5_0'],
    };
    const list = (d: string) => tree[d] ?? null;
    const on = rdmaCheck(list, true);
    expect(on.status).to.equal('ok');
    expect(on.detail).to.contain('/dev/infiniband (rdma_cm umad0 uverbs0)').and.contain('/etc/libibverbs.d (mlx5.driver)').and.contain('/sys/class/infiniband (mlx5_0)');
    expect(on.detail).to.not.contain('/etc/rdma');
    expect(on.detail).to.contain('--no-rdma');
    expect(rdmaCheck(list, false).detail).to.contain('[mount] rdma = no: containers get none of it');
    expect(rdmaCheck(() => null, true).detail).to.equal('no /dev/infiniband here: nothing to bind');
  });
});
