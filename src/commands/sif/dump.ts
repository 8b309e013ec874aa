import { Args, Flags } from '@oclif/core';
import { pipeline } from 'node:stream/promises';
import { HpccCommand } from '../../cli/base.js';
import { parseObjectId, SifReader } from '../../formats/sif/index.js';

/** --json carries the bytes as base64, so it is capped; raw output streams. */
const JSON_MAX_BYTES = 64 * 1024 * 1024;

export default class SifDump extends HpccCommand {
  static override summary = "Write one data object's raw bytes to stdout (as siftool dump).";
  static override examples = ['<%= config.bin %> sif dump image.sif 1 > deffile'];
  static override args = {
    image: Args.string({ description: 'SIF image', required: true }),
    id: Args.string({ description: 'object ID (see `sif list`)', required: true }),
  };
  static override flags = { json: Flags.boolean({ description: 'print {id, size, encoding, data} with the bytes in base64', default: false }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(SifDump);
    const id = parseObjectId(args.id);
    const sif = await SifReader.open(args.image);
    try {
      const d = sif.descriptorById(id);
      if (flags.json) {
        const data = await sif.readObject(d, JSON_MAX_BYTES);
        this.printJson({ id: d.id, size: d.size, encoding: 'base64', data: data.toString('base64') });
      } else {
        try {
          await pipeline(sif.objectStream(d), process.stdout, { end: false });
        } catch (e) {
          // the reader went away (`| head`): stop quietly, as cat does
          if ((e as { code?: string }).code !== 'EPIPE') throw e;
        }
      }
    } finally {
      await sif.close();
    }
  }
}
