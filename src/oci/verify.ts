/**
 * Digest verification while streaming: bytes pass through unchanged while a
 * sha256 and a byte count run over them. More bytes than expected fail as
 * soon as they arrive (bounded work for a hostile source); a short stream or
 * a different digest fails at the end with DigestMismatchError
 * (HPCC_E_OCI_DIGEST), after the consumer has seen every byte — so consumers
 * must treat their output as provisional until the iteration completes.
 */
import { createHash } from 'node:crypto';
import { DigestMismatchError, OciError } from '../errors/index.js';

export interface Expected {
  digest: string;
  /** expected byte count; omit when unknown (then only the digest is checked) */
  size?: number;
}

function algoOf(digest: string): string {
  const i = digest.indexOf(':');
  const algo = i < 0 ? '' : digest.slice(0, i);
  if (algo !== 'sha256' && algo !== 'sha512') {
    throw new OciError('HPCC_E_OCI_DIGEST_ALGO', `unsupported digest algorithm in ${JSON.stringify(digest.slice(0, 80))}`, {
      hint: 'Only sha256 and sha512 digests are supported.',
    });
  }
  return algo;
}

/** "sha256:<hex>" of a buffer. */
export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Check a whole buffer against a digest and size. */
export function verifyBytes(bytes: Uint8Array, exp: Expected, what: string): void {
  if (exp.size !== undefined && bytes.length !== exp.size) {
    throw new DigestMismatchError(`${what}: expected ${exp.size} bytes, got ${bytes.length}`, exp.digest, `size ${bytes.length}`);
  }
  const algo = algoOf(exp.digest);
  const actual = `${algo}:${createHash(algo).update(bytes).digest('hex')}`;
  if (actual !== exp.digest) throw new DigestMismatchError(`${what}: digest mismatch (expected ${exp.digest}, got ${actual})`, exp.digest, actual);
}

/** Pass `src` through, verifying digest and size (see the module comment). */
export async function* verifyStream(src: AsyncIterable<Uint8Array>, exp: Expected, what: string): AsyncGenerator<Uint8Array> {
  const algo = algoOf(exp.digest);
  const h = createHash(algo);
  let n = 0;
  for await (const chunk of src) {
    n += chunk.length;
    if (exp.size !== undefined && n > exp.size) {
      throw new DigestMismatchError(`${what}: more than the expected ${exp.size} bytes`, exp.digest, `size > ${exp.size}`);
    }
    h.update(chunk);
    yield chunk;
  }
  if (exp.size !== undefined && n !== exp.size) {
    throw new DigestMismatchError(`${what}: expected ${exp.size} bytes, got ${n}`, exp.digest, `size ${n}`);
  }
  const actual = `${algo}:${h.digest('hex')}`;
  if (actual !== exp.digest) throw new DigestMismatchError(`${what}: digest mismatch (expected ${exp.digest}, got ${actual})`, exp.digest, actual);
}
