import { Flags } from '@oclif/core';
import { HpccCommand } from '../cli/base.js';
import { renderChecks, runDoctor } from '../core/doctor.js';

export default class Doctor extends HpccCommand {
  static override summary = 'Check what this node allows an unprivileged launch, and how to fix the rest.';
  static override description =
    'Probes user namespaces, AppArmor, /dev/fuse, squashfuse, overlay and the kernel, and prints each problem with its ' +
    'fix. Exit status 0 when containers can run, 1 otherwise.' +
    '\n\n' +
    'Run it as the user who will launch containers: the probes (unshare, an overlay mount) run as you.';
  static override examples = ['<%= config.bin %> doctor', '<%= config.bin %> doctor --json'];
  static override flags = {
    json: Flags.boolean({ char: 'j', description: 'print the checks as JSON' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Doctor);
    const checks = runDoctor();
    const ok = !checks.some((c) => c.status === 'fail');
    if (flags.json) this.printJson({ status: ok ? 'ok' : 'problems', checks });
    else process.stdout.write(renderChecks(checks));
    if (!ok) process.exitCode = 1;
  }
}
