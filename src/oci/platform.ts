/**
 * Platforms (pure apart from reading process.arch): the host platform in OCI
 * terms, --platform/--arch parsing and choosing a manifest from an index.
 * Names follow the OCI image index spec (GOOS/GOARCH values; variant v6/v7/v8).
 */
import { endianness } from 'node:os';
import { OciError, UsageError } from '../errors/index.js';
import type { OciDescriptor, OciPlatform } from './types.js';

const ARCH_ALIASES: Record<string, { architecture: string; variant?: string }> = {
  x64: { architecture: 'amd64' },
  x86_64: { architecture: 'amd64' },
  'x86-64': { architecture: 'amd64' },
  ia32: { architecture: '386' },
  i386: { architecture: '386' },
  i686: { architecture: '386' },
  aarch64: { architecture: 'arm64' },
  armhf: { architecture: 'arm', variant: 'v7' },
  armel: { architecture: 'arm', variant: 'v6' },
  mipsel: { architecture: 'mipsle' },
};

/** Normalise an architecture name (Node, Debian or Go spelling) to OCI's. */
export function normaliseArch(arch: string, variant?: string): { architecture: string; variant?: string } {
  const a = arch.toLowerCase();
  const alias = ARCH_ALIASES[a];
  const architecture = alias?.architecture ?? a;
  const v = variant ?? alias?.variant;
  return v === undefined || v === '' ? { architecture } : { architecture, variant: v.toLowerCase() };
}

/** The platform this process runs on. */
export function hostPlatform(): OciPlatform {
  const { architecture } = normaliseArch(process.arch === 'ppc64' ? (endianness() === 'LE' ? 'ppc64le' : 'ppc64') : process.arch);
  const out: OciPlatform = { os: 'linux', architecture };
  if (architecture === 'arm64') out.variant = 'v8';
  if (architecture === 'arm') {
    const v = (process.config.variables as Record<string, unknown>).arm_version;
    out.variant = `v${typeof v === 'string' || typeof v === 'number' ? v : 7}`;
  }
  return out;
}

/**
 * Parse `--platform os/arch[/variant]` or `--arch arch` (os linux).
 * Throws UsageError for malformed values.
 */
export function parsePlatform(s: string): OciPlatform {
  const parts = s.trim().split('/');
  const ok = (p: string) => /^[A-Za-z0-9_.-]{1,32}$/.test(p);
  if (parts.length < 1 || parts.length > 3 || !parts.every(ok)) {
    throw new UsageError(`invalid platform ${JSON.stringify(s)}`, { hint: 'Use os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8, or just an arch.' });
  }
  if (parts.length === 1) return { os: 'linux', ...normaliseArch(parts[0]!) };
  const n = normaliseArch(parts[1]!, parts[2]);
  return { os: parts[0]!.toLowerCase(), ...n };
}

export function formatPlatform(p: OciPlatform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** arm64's only variant is v8, so a missing variant means v8 there. */
function effectiveVariant(p: OciPlatform): string | undefined {
  if (p.variant) return p.variant;
  if (p.architecture === 'arm64') return 'v8';
  return undefined;
}

/**
 * Does an index entry's platform satisfy the wanted one? os and architecture
 * must be equal; a wanted variant must be equal too (none wanted: any).
 */
export function platformMatches(want: OciPlatform, have: OciPlatform): boolean {
  if (want.os !== have.os) return false;
  const h = normaliseArch(have.architecture, have.variant);
  if (want.architecture !== h.architecture) return false;
  const wv = effectiveVariant(want);
  if (wv === undefined) return true;
  const hv = effectiveVariant({ ...have, ...h });
  return hv === undefined || hv === wv;
}

/**
 * Choose the manifest for `want` from an index's entries: exact variant
 * first, then an entry without a variant; attestation manifests (platform
 * unknown/unknown) never match. Throws OciError HPCC_E_OCI_PLATFORM listing what exists.
 */
export function selectManifest(entries: readonly OciDescriptor[], want: OciPlatform, what = 'the image'): OciDescriptor {
  const candidates = entries.filter((e) => e.platform !== undefined && platformMatches(want, e.platform));
  const wv = effectiveVariant(want);
  const exact = candidates.find((e) => wv !== undefined && effectiveVariant(e.platform!) === wv);
  const chosen = exact ?? candidates[0];
  if (chosen !== undefined) return chosen;
  const avail = entries
    .filter((e) => e.platform !== undefined && e.platform.os !== 'unknown')
    .map((e) => formatPlatform(e.platform!));
  throw new OciError('HPCC_E_OCI_PLATFORM', `${what} has no manifest for ${formatPlatform(want)}`, {
    hint: avail.length > 0 ? `Available: ${[...new Set(avail)].join(', ')}; choose one with --platform.` : 'The index lists no platforms.',
    details: { available: avail },
  });
}
