/**
 * Human and JSON views of a SIF, in the formats of the reference siftool
 * (sylabs/sif internal/app/siftool info.go: list, info, header).
 * Pure functions of decoded headers/descriptors.
 */
import { UsageError } from '../../errors/index.js';
import type { SifDescriptor, SifHeader } from './layout.js';
import {
  GO_ZERO_TIME,
  cryptoFormatName,
  cryptoMessageName,
  dataTypeName,
  fsTypeName,
  partTypeName,
  sbomFormatName,
} from './types.js';

const NIL_UUID = '00000000-0000-0000-0000-000000000000';

/** Go's time.Unix(t, 0).UTC().String(): "2020-06-30 00:01:56 +0000 UTC". */
export function goTime(t: number): string {
  const ms = t * 1000;
  if (Math.abs(ms) > 8.64e15) return `${t} (unix seconds)`;
  const iso = new Date(ms).toISOString(); // 2020-06-30T00:01:56.000Z, or ±YYYYYY for far years
  return `${iso.slice(0, -14).replace(/^\+0*(?=\d{4})/, '')} ${iso.slice(-13, -5)} +0000 UTC`;
}

/** The reference's readableSize: "27 KiB", "0 B" (binary units, rounded half away from zero). */
export function readableSize(size: number): string {
  if (-1024 < size && size < 1024) return `${size} B`;
  const units = 'KMGTPE';
  let div = 1024;
  let exp = 0;
  for (let n = Math.trunc(size / 1024); n <= -1024 || n >= 1024; n = Math.trunc(n / 1024)) {
    div *= 1024;
    exp++;
  }
  const q = size / div;
  const r = Math.sign(q) * Math.round(Math.abs(q));
  return `${r} ${units[exp]}iB`;
}

/** Text/tabwriter alignment: every cell but the last is padded to its column's width + padding. */
function tabulate(rows: string[][], padding: number): string {
  const widths: number[] = [];
  for (const r of rows) {
    r.slice(0, -1).forEach((c, i) => {
      widths[i] = Math.max(widths[i] ?? 0, [...c].length);
    });
  }
  return rows
    .map((r) => r.map((c, i) => (i < r.length - 1 ? c + ' '.repeat(widths[i]! - [...c].length + padding) : c)).join('') + '\n')
    .join('');
}

export function renderHeaderText(h: SifHeader): string {
  const rows: string[][] = [];
  if (h.launchScript !== '') rows.push(['Launch Script:', h.launchScript.replace(/\n$/, '')]);
  rows.push(['Version:', h.version]);
  if (h.arch !== 'unknown') rows.push(['Primary Architecture:', h.arch]);
  if (h.uuid !== NIL_UUID) rows.push(['ID:', h.uuid]);
  if (h.createdAt !== GO_ZERO_TIME) rows.push(['Created At:', goTime(h.createdAt)]);
  if (h.modifiedAt !== GO_ZERO_TIME) rows.push(['Modified At:', goTime(h.modifiedAt)]);
  rows.push(['Descriptors Free:', String(h.descriptorsFree)]);
  rows.push(['Descriptors Total:', String(h.descriptorsTotal)]);
  rows.push(['Descriptors Offset:', String(h.descriptorsOffset)]);
  rows.push(['Descriptors Size:', readableSize(h.descriptorsSize)]);
  rows.push(['Data Offset:', String(h.dataOffset)]);
  rows.push(['Data Size:', readableSize(h.dataSize)]);
  return tabulate(rows, 1);
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

/** The TYPE column, e.g. "FS (Squashfs/*System/amd64)". */
export function typeSummary(d: SifDescriptor): string {
  const t = dataTypeName(d.dataType);
  if (d.partition) return `${t} (${fsTypeName(d.partition.fsType)}/${partTypeName(d.partition.partType)}/${d.partition.arch})`;
  if (d.signature) return d.signature.hashName ? `${t} (${d.signature.hashName})` : t;
  if (d.cryptoMessage) return `${t} (${cryptoFormatName(d.cryptoMessage.formatType)}/${cryptoMessageName(d.cryptoMessage.messageType)})`;
  if (d.sbom) return `${t} (${sbomFormatName(d.sbom.format)})`;
  return t;
}

const RULE = '-'.repeat(78);

export function renderListText(ds: SifDescriptor[]): string {
  const lines = [RULE, `${pad('ID', 4)} ${pad('|GROUP', 8)} ${pad('|LINK', 8)} ${pad('|SIF POSITION (start-end)', 26)} |TYPE`, RULE];
  for (const d of ds) {
    const group = d.groupId === 0 ? pad('|NONE', 8) : pad(`|${d.groupId}`, 8);
    const link = d.linkedId === 0 ? pad('|NONE', 8) : d.linkedIsGroup ? `|${pad(String(d.linkedId), 3)} (G)` : pad(`|${d.linkedId}`, 8);
    const pos = pad(`|${d.offset}-${d.offset + d.size} `, 26);
    lines.push(`${pad(String(d.id), 4)} ${group} ${link} ${pos} |${typeSummary(d)}`);
  }
  return lines.join('\n') + '\n';
}

export function renderInfoText(d: SifDescriptor): string {
  const rows: string[][] = [];
  const add = (k: string, v: string): void => {
    rows.push(['', k, v]);
  };
  add('Data Type:', dataTypeName(d.dataType));
  add('ID:', String(d.id));
  add('Group ID:', d.groupId === 0 ? 'NONE' : String(d.groupId));
  add('Linked ID:', d.linkedId === 0 ? 'NONE' : d.linkedIsGroup ? `${d.linkedId} (G)` : String(d.linkedId));
  add('Offset:', String(d.offset));
  add('Size:', String(d.size));
  if (d.createdAt !== GO_ZERO_TIME) add('Created At:', goTime(d.createdAt));
  if (d.modifiedAt !== GO_ZERO_TIME) add('Modified At:', goTime(d.modifiedAt));
  if (d.name !== '') add('Name:', d.name);
  if (d.partition) {
    add('Filesystem Type:', fsTypeName(d.partition.fsType));
    add('Partition Type:', partTypeName(d.partition.partType));
    add('Architecture:', d.partition.arch);
  }
  if (d.signature) {
    add('Hash Type:', d.signature.hashName ?? `unknown (${d.signature.hashType})`);
    if (d.signature.fingerprint) add('Entity:', d.signature.fingerprint);
  }
  if (d.cryptoMessage) {
    add('Format Type:', cryptoFormatName(d.cryptoMessage.formatType));
    add('Message Type:', cryptoMessageName(d.cryptoMessage.messageType));
  }
  if (d.sbom) add('Format:', sbomFormatName(d.sbom.format));
  if (d.ociDigest !== undefined) add('Digest:', d.ociDigest);
  return tabulate(rows, 2);
}

/** Stable JSON shape of the header (`hpcc sif header --json`). */
export function headerJson(h: SifHeader): Record<string, unknown> {
  return {
    launchScript: h.launchScript,
    magic: h.magic,
    version: h.version,
    arch: h.arch,
    archCode: h.archCode,
    id: h.uuid,
    createdAt: h.createdAt,
    modifiedAt: h.modifiedAt,
    descriptorsFree: h.descriptorsFree,
    descriptorsTotal: h.descriptorsTotal,
    descriptorsOffset: h.descriptorsOffset,
    descriptorsSize: h.descriptorsSize,
    dataOffset: h.dataOffset,
    dataSize: h.dataSize,
  };
}

/** Stable JSON shape of a descriptor (`hpcc sif list/info --json`). */
export function descriptorJson(d: SifDescriptor): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: d.id,
    dataType: d.dataType,
    dataTypeName: dataTypeName(d.dataType),
    groupId: d.groupId,
    linkedId: d.linkedId,
    linkedIsGroup: d.linkedIsGroup,
    offset: d.offset,
    size: d.size,
    sizeWithPadding: d.sizeWithPadding,
    createdAt: d.createdAt,
    modifiedAt: d.modifiedAt,
    uid: d.uid,
    gid: d.gid,
    name: d.name,
  };
  if (d.partition) {
    out.partition = {
      fsType: d.partition.fsType,
      fsTypeName: fsTypeName(d.partition.fsType),
      partType: d.partition.partType,
      partTypeName: partTypeName(d.partition.partType),
      arch: d.partition.arch,
      archCode: d.partition.archCode,
    };
  }
  if (d.signature) {
    out.signature = { hashType: d.signature.hashType, hashName: d.signature.hashName ?? null, fingerprint: d.signature.fingerprint ?? null };
  }
  if (d.cryptoMessage) {
    out.cryptoMessage = {
      formatType: d.cryptoMessage.formatType,
      formatTypeName: cryptoFormatName(d.cryptoMessage.formatType),
      messageType: d.cryptoMessage.messageType,
      messageTypeName: cryptoMessageName(d.cryptoMessage.messageType),
    };
  }
  if (d.sbom) out.sbom = { format: d.sbom.format, formatName: sbomFormatName(d.sbom.format) };
  if (d.ociDigest !== undefined) out.ociDigest = d.ociDigest;
  return out;
}

/** A command-line object ID: a decimal uint32 above zero (as siftool's ParseUint + WithID). */
export function parseObjectId(s: string): number {
  const n = /^[0-9]{1,10}$/.test(s) ? Number(s) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 0xffffffff) {
    throw new UsageError(`object ID must be a whole number from 1 to 4294967295, not ${JSON.stringify(s)}`, {
      hint: 'List the object IDs with `hpcc sif list IMAGE`.',
    });
  }
  return n;
}
