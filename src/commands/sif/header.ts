import { Args, Flags } from '@oclif/core';
import { HpccCommand } from '../../cli/base.js';
import { SifReader, headerJson, renderHeaderText } from '../../formats/sif/index.js';

export default class SifHeaderCommand extends HpccCommand {
  static override summary = 'Show the global header of a SIF image (as siftool header).';
  static override examples = ['<%= config.bin %> sif header image.sif'];
  static override args = { image: Args.string({ description: 'SIF image', required: true }) };
  static override flags = { json: Flags.boolean({ description: 'print JSON', default: false }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(SifHeaderCommand);
    const sif = await SifReader.open(args.image);
    try {
      if (flags.json) this.printJson({ header: headerJson(sif.header) });
      else process.stdout.write(renderHeaderText(sif.header));
    } finally {
      await sif.close();
    }
  }
}
