/** A small deterministic SIF shared by the SIF tests: deffile + JSON + a tiny fake partition. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FsType, PartType, SifDataType, SifWriter } from '../../../../src/formats/sif/index.js';

export const SAMPLE_DEFFILE = 'BootStrap: docker\nFrom: busybox:1.33.1\n';
export const SAMPLE_JSON = '{"hello":"world"}\n';
/** 5000 bytes: spans more than one 4096 block, not a multiple of it. */
export const SAMPLE_PART = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7 + 3) & 0xff));

/** Write the sample with hpcc's writer in deterministic mode; the partition file lives next to it. */
export async function writeSample(dir: string, name = 'sample.sif'): Promise<string> {
  const part = path.join(dir, 'part.bin');
  fs.writeFileSync(part, SAMPLE_PART);
  const out = path.join(dir, name);
  const w = await SifWriter.create(out, { deterministic: true });
  await w.addObject({ type: SifDataType.Deffile, data: Buffer.from(SAMPLE_DEFFILE) });
  await w.addObject({ type: SifDataType.GenericJSON, name: 'inspect-metadata.json', data: Buffer.from(SAMPLE_JSON) });
  await w.addPartitionFromFile({ fsType: FsType.Squash, partType: PartType.PrimSys, arch: 'amd64' }, part);
  await w.finish();
  return out;
}

/**
 * SHA-256 of the sample's bytes. test/integration/sif-reference.test.ts proves
 * the reference writer (sifcheck create -deterministic) produces the same bytes.
 */
export const SAMPLE_SHA256 = 'fbfa96c552c57b31ad21e3cc0a75a449b6ed1add251981895140b4f67b6483b8';
