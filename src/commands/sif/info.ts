import { Args, Flags } from '@oclif/core';
import { HpccCommand } from '../../cli/base.js';
import { parseObjectId, SifReader, descriptorJson, renderInfoText } from '../../formats/sif/index.js';

export default class SifInfo extends HpccCommand {
  static override summary = 'Show one data object of a SIF image in detail (as siftool info).';
  static override examples = ['<%= config.bin %> sif info image.sif 1'];
  static override args = {
    image: Args.string({ description: 'SIF image', required: true }),
    id: Args.string({ description: 'object ID (see `sif list`)', required: true }),
  };
  static override flags = { json: Flags.boolean({ description: 'print JSON', default: false }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(SifInfo);
    const id = parseObjectId(args.id);
    const sif = await SifReader.open(args.image);
    try {
      const d = sif.descriptorById(id);
      if (flags.json) this.printJson({ descriptor: descriptorJson(d) });
      else process.stdout.write(renderInfoText(d));
    } finally {
      await sif.close();
    }
  }
}
