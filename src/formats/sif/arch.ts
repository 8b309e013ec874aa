/**
 * SIF architecture codes (sif-format.md "Arch codes"): two ASCII digits + NUL
 * in the header (offset 45) and in a partition descriptor's extra (offset 8).
 * Names are Go runtime names (GOARCH), as the reference prints them.
 */
import { endianness } from 'node:os';

const CODE_TO_GO: Record<string, string> = {
  '01': '386',
  '02': 'amd64',
  '03': 'arm',
  '04': 'arm64',
  '05': 'ppc64',
  '06': 'ppc64le',
  '07': 'mips',
  '08': 'mipsle',
  '09': 'mips64',
  '10': 'mips64le',
  '11': 's390x',
  '12': 'riscv64',
  '13': 'loong64',
};

const GO_TO_CODE: Record<string, string> = Object.fromEntries(Object.entries(CODE_TO_GO).map(([c, g]) => [g, c]));

/** Node's process.arch names that differ from Go's. */
const NODE_TO_GO: Record<string, string> = {
  x64: 'amd64',
  ia32: '386',
  mipsel: 'mipsle',
};

export const ARCH_UNKNOWN_CODE = '00';

/** Go arch name ('amd64') for a SIF code ('02'); 'unknown' for anything unlisted. */
export function sifArchName(code: string): string {
  return CODE_TO_GO[code] ?? 'unknown';
}

/**
 * Go arch name for a Node (`process.arch`) or Go arch name; undefined when
 * SIF has no code for it. Node reports little-endian POWER as 'ppc64'.
 */
export function goArchName(arch: string): string | undefined {
  if (arch === 'ppc64') return endianness() === 'LE' ? 'ppc64le' : 'ppc64';
  const go = NODE_TO_GO[arch] ?? arch;
  return GO_TO_CODE[go] !== undefined ? go : undefined;
}

/**
 * SIF arch code ('02') for a Node arch (`process.arch`, e.g. 'x64'); '00'
 * (unknown) when SIF has no code for it.
 */
export function archToSif(nodeArch: string): string {
  const go = goArchName(nodeArch);
  return go === undefined ? ARCH_UNKNOWN_CODE : GO_TO_CODE[go]!;
}

/**
 * SIF arch code for a name given to the writer: a Go name ('amd64', 'ppc64'
 * meaning big-endian) first, else a Node name ('x64'); undefined if neither.
 */
export function sifArchCode(arch: string): string | undefined {
  const direct = GO_TO_CODE[arch];
  if (direct !== undefined) return direct;
  const go = goArchName(arch);
  return go === undefined ? undefined : GO_TO_CODE[go];
}
