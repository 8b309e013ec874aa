import { Args, Flags } from '@oclif/core';
import { HpccCommand } from '../../cli/base.js';
import { SifReader, descriptorJson, renderListText } from '../../formats/sif/index.js';

export default class SifList extends HpccCommand {
  static override summary = 'List the data objects of a SIF image (as siftool list).';
  static override examples = ['<%= config.bin %> sif list image.sif', '<%= config.bin %> sif list --json image.sif'];
  static override args = { image: Args.string({ description: 'SIF image', required: true }) };
  static override flags = { json: Flags.boolean({ description: 'print JSON', default: false }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(SifList);
    const sif = await SifReader.open(args.image);
    try {
      if (flags.json) this.printJson({ descriptors: sif.descriptors.map(descriptorJson) });
      else process.stdout.write(renderListText(sif.descriptors));
    } finally {
      await sif.close();
    }
  }
}
