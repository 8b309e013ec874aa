/**
 * Shared by the SIF integration tests: the sifcheck oracle (test/tools/sifcheck,
 * the reference Go library) and hpcc's listing in sifcheck's canonical shape.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FsType, PartType, SifDataType, SifReader, SifWriter, cryptoFormatName, dataTypeName, cryptoMessageName, sbomFormatName } from '../../src/formats/sif/index.js';
import { fileURLToPath } from 'node:url';
import { IN_CI } from '../helpers/env.js';

export const SIF_SRC = '/usr/share/gocode/src/github.com/sylabs/sif';
export const SIF_IMAGES = path.join(SIF_SRC, 'test/images');
export const SIF_GOLDEN = path.join(SIF_SRC, 'internal/app/siftool/testdata');
/** The checkout root, whether running from source (tsx) or from dist/. */
export const ROOT = (() => {
  let d = path.dirname(fileURLToPath(import.meta.url));
  while (d !== '/' && !fs.existsSync(path.join(d, 'package.json'))) d = path.dirname(d);
  return d;
})();
export const SIFCHECK = path.join(ROOT, 'test/.cache/bin/sifcheck');

let built = false;

/** Skip (locally) or fail (in CI) unless sifcheck and Debian's SIF sources are there; builds sifcheck once. */
export function requireSifcheck(ctx: Mocha.Context): void {
  if (!fs.existsSync(SIFCHECK) && !built) {
    built = true;
    spawnSync('bash', [path.join(ROOT, 'test/tools/build.sh')], { stdio: 'ignore', timeout: 120_000 });
  }
  if (fs.existsSync(SIFCHECK) && fs.existsSync(SIF_IMAGES)) return;
  if (IN_CI) throw new Error(`sifcheck (${SIFCHECK}) or ${SIF_IMAGES} missing: run test/tools/build.sh, install golang-github-sylabs-sif-dev`);
  ctx.skip();
}

export function sifcheck(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(SIFCHECK, args, { encoding: 'utf8', timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Raw stdout bytes of `sifcheck siftool ...`. */
export function siftoolBytes(args: string[]): Buffer {
  const r = spawnSync(SIFCHECK, ['siftool', ...args], { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`sifcheck siftool ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

export function referenceListing(file: string): unknown {
  const r = sifcheck(['list', file]);
  if (r.status !== 0) throw new Error(`sifcheck list ${file} failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const hex = (b: Uint8Array | string): string => Buffer.from(b).toString('hex');

/** hpcc's reading of a SIF in the shape `sifcheck list` prints. */
export async function hpccListing(file: string): Promise<unknown> {
  const r = await SifReader.open(file);
  try {
    const h = r.header;
    const prim = (() => {
      // the reference's GetDescriptor reports "no objects" whenever free == total, whatever the slots hold
      if (h.descriptorsFree === h.descriptorsTotal) return 0;
      try {
        return r.primaryPartition().id;
      } catch {
        return 0;
      }
    })();
    const descriptors = [];
    for (const d of r.descriptors) {
      const o: Record<string, unknown> = {
        id: d.id,
        groupId: d.groupId,
        linkedId: d.linkedId,
        linkedIsGroup: d.linkedIsGroup,
        dataType: d.dataType,
        // sylabs/sif 2.8.3 predates the OCI types and calls them "Unknown"
        dataTypeName: d.dataType <= SifDataType.SBOM ? dataTypeName(d.dataType) : 'Unknown',
        offset: d.offset,
        size: d.size,
        createdAt: d.createdAt,
        modifiedAt: d.modifiedAt,
        nameHex: hex(d.name),
        relativeId: d.relativeId,
        uid: d.uid,
        gid: d.gid,
        extraHex: hex(d.extra),
      };
      if (d.partition) o.partition = { fsType: d.partition.fsType, partType: d.partition.partType, arch: d.partition.arch };
      if (d.signature) {
        // the reference returns no fingerprint once the hash type is unsupported
        const ok = d.signature.hashName !== undefined;
        o.signature = { hash: ok ? d.signature.hashName : 'error: hash algorithm unsupported', fingerprint: ok ? (d.signature.fingerprint ?? '') : '' };
      }
      if (d.cryptoMessage) o.cryptoMessage = { format: cryptoFormatName(d.cryptoMessage.formatType), message: cryptoMessageName(d.cryptoMessage.messageType) };
      if (d.dataType === SifDataType.SBOM && d.sbom) o.sbom = sbomFormatName(d.sbom.format);
      o.dataSha256 = createHash('sha256').update(await r.readObject(d)).digest('hex');
      descriptors.push(o);
    }
    return {
      launchScriptHex: hex(h.launchScript),
      version: h.version,
      arch: h.arch,
      id: h.uuid,
      createdAt: h.createdAt,
      modifiedAt: h.modifiedAt,
      descriptorsFree: h.descriptorsFree,
      descriptorsTotal: h.descriptorsTotal,
      descriptorsOffset: h.descriptorsOffset,
      descriptorsSize: h.descriptorsSize,
      dataOffset: h.dataOffset,
      dataSize: h.dataSize,
      primary: prim,
      descriptors,
    };
  } finally {
    await r.close();
  }
}

/** Drop fields hpcc does not model the same way (the reference's error text). */
export function comparable(listing: unknown): unknown {
  const l = { ...(listing as Record<string, unknown>) };
  delete l.primaryError;
  return l;
}

/** "OneGroupSignedLegacy" → "one-group-signed-legacy.sif" (the reference tests' naming). */
export function imageForTestName(name: string): string {
  return path.join(SIF_IMAGES, name.replace(/([a-z])([A-Z])/g, '$1-$2').toLowerCase() + '.sif');
}

/** mksquashfs a small tree, then deffile + inspect-metadata.json + oci-config.json + partition (Apptainer's order). */
export async function writeSquashSif(dir: string): Promise<{ img: string; sif: string; tree: string }> {
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(path.join(tree, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(tree, 'etc', 'hello.txt'), 'hello from hpcc\n');
  fs.writeFileSync(path.join(tree, 'big.bin'), Buffer.alloc(300_000, 7));
  const img = path.join(dir, 'img.sqfs');
  execFileSync('mksquashfs', [tree, img, '-noappend', '-quiet', '-no-progress'], { stdio: 'ignore' });
  const sif = path.join(dir, 'img.sif');
  const w = await SifWriter.create(sif);
  try {
    await w.addObject({ type: SifDataType.Deffile, data: Buffer.from('BootStrap: docker\nFrom: busybox:1.33.1\n') });
    await w.addObject({ type: SifDataType.GenericJSON, name: 'inspect-metadata.json', data: Buffer.from('{"data":{"attributes":{}}}') });
    await w.addObject({ type: SifDataType.GenericJSON, name: 'oci-config.json', data: Buffer.from('{"Env":["PATH=/bin"]}') });
    await w.addPartitionFromFile({ fsType: FsType.Squash, partType: PartType.PrimSys, arch: 'amd64' }, img);
    await w.finish();
  } catch (e) {
    await w.abort();
    throw e;
  }
  return { img, sif, tree };
}
