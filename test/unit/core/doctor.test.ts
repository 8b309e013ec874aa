import { expect } from 'chai';
import { checkKernel, checkUsernsSysctls, renderChecks } from '../../../src/core/doctor.js';

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
});
