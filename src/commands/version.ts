import { Flags } from '@oclif/core';
import { HpccCommand } from '../cli/base.js';
import { renderVersion, versionInfo } from '../core/version.js';

export default class Version extends HpccCommand {
  static override summary = "Show hpcc's version and revision, its Node.js, helper and optional parts.";
  static override description =
    'Also the plan and launch memo wire-format versions. The git revision is the one recorded when hpcc was built. ' +
    'Optional parts: squashfuse (else images are extracted), ' +
    'fuse-overlayfs (an overlay method), the libdeflate addon (else Node\'s zlib) and newuidmap. ' +
    '`hpcc --version` prints the same.';
  static override examples = ['<%= config.bin %> version', '<%= config.bin %> --version', '<%= config.bin %> version --json'];
  static override flags = {
    json: Flags.boolean({ char: 'j', description: 'print it as JSON' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Version);
    const info = versionInfo();
    if (flags.json) this.printJson(info);
    else process.stdout.write(renderVersion(info));
  }
}
