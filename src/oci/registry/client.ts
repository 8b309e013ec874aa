/**
 * A small OCI distribution client on undici 7 (request API, one pooled Agent).
 *   - /v2/ ping; WWW-Authenticate Basic and Bearer (realm, service, scope) flows,
 *     anonymous or with credentials; tokens cached per repository.
 *   - manifests with every manifest type in Accept (OCI index/manifest, Docker
 *     list/v2), verified against the digest when pulled by digest.
 *   - blobs: redirects followed by hand (Authorization dropped on another origin),
 *     delivered chunk by chunk through a dispatch handler (blob-transfer.ts) and
 *     streamed into a file with sha256 + size checked, resumed with Range after a
 *     dropped connection; retries with backoff on 429/5xx and network errors.
 * Plain HTTP only when the caller says the registry is insecure. HTTPS trusts
 * Node's roots plus the system CA bundle (SSL_CERT_FILE replaces both).
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { Dispatcher } from 'undici';
import { DigestMismatchError } from '../../errors/index.js';
import type { EarlyFetch } from '../cache/store.js';
import { MANIFEST_ACCEPT, MAX_MANIFEST_BYTES } from '../manifest.js';
import type { Credentials } from './auth.js';
import { defaultAgent, loadUndici } from './agent.js';
import { OrderedWriter, streamingGet, type BodyLike, type StreamingResponse } from './blob-transfer.js';
import { RegistryError, registryHttpError } from './errors.js';

export { closeDefaultAgent, defaultAgent, trustedCAs } from './agent.js';

/** Every manifest type hpcc reads: OCI index + manifest, Docker list + v2 (see manifest.ts). */
export const MANIFEST_ACCEPT_HEADER = MANIFEST_ACCEPT.join(', ');
const MAX_ERROR_BODY = 64 << 10;
const MAX_REDIRECTS = 5;
const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export interface RegistryClientOptions {
  /** registry as named in the reference, e.g. docker.io, ghcr.io, 127.0.0.1:5000 */
  registry: string;
  /** plain HTTP instead of HTTPS */
  insecure?: boolean;
  /** may be a promise: it is awaited only when the registry asks for authentication */
  credentials?: Credentials | null | Promise<Credentials | null>;
  dispatcher?: Dispatcher;
  /** attempts after the first on 429/5xx/network errors, and resumes per blob (default 4) */
  retries?: number;
  /** first backoff delay in ms, doubled each time (default 250; HPCC_RETRY_BASE_MS) */
  retryBaseMs?: number;
  userAgent?: string;
}

export interface ManifestResponse {
  bytes: Buffer;
  /** Content-Type as served (may be empty: then the caller looks at the body) */
  mediaType: string;
  digest: string;
}

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parse one WWW-Authenticate challenge: `Bearer realm="…",service="…",scope="…"`. */
export function parseChallenge(header: string | undefined): Challenge | null {
  if (!header) return null;
  const m = /^\s*([A-Za-z][A-Za-z0-9-]*)\s*(.*)$/s.exec(header.slice(0, 8192));
  if (!m) return null;
  const params: Record<string, string> = {};
  const re = /([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?\s*/g;
  let p: RegExpExecArray | null;
  while ((p = re.exec(m[2]!)) !== null) {
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '');
  }
  return { scheme: m[1]!.toLowerCase(), params };
}

export function apiHost(registry: string): string {
  return registry === 'docker.io' || registry === 'index.docker.io' ? 'registry-1.docker.io' : registry;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function isRetryableStatus(s: number): boolean {
  return s === 429 || s === 500 || s === 502 || s === 503 || s === 504;
}

function header(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

async function readBounded(body: BodyLike, limit: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of body) {
    const b = chunk as Buffer;
    n += b.length;
    if (n > limit) {
      body.destroy();
      throw new RegistryError('HPCC_E_REGISTRY_TOO_LARGE', `response larger than ${limit} bytes`);
    }
    parts.push(b);
  }
  return Buffer.concat(parts);
}

async function drain(body: BodyLike): Promise<void> {
  try {
    await readBounded(body, MAX_ERROR_BODY);
  } catch {
    body.destroy();
  }
}

export class RegistryClient {
  readonly registry: string;
  readonly baseUrl: string;
  private readonly explicitDispatcher: Dispatcher | undefined;
  private readonly credentials: Promise<Credentials | null>;
  private readonly retries: number;
  private readonly retryBaseMs: number;
  private readonly userAgent: string;
  private readonly insecure: boolean;
  /** Authorization header per repository ('' key: registry-wide, e.g. Basic) */
  private readonly auth = new Map<string, string>();

  constructor(opts: RegistryClientOptions) {
    this.registry = opts.registry;
    this.insecure = opts.insecure === true;
    this.baseUrl = `${this.insecure ? 'http' : 'https'}://${apiHost(opts.registry)}`;
    this.explicitDispatcher = opts.dispatcher;
    this.credentials = Promise.resolve(opts.credentials ?? null);
    this.credentials.catch(() => undefined); // a failed lookup matters only when a 401 needs it
    this.retries = opts.retries ?? 4;
    this.retryBaseMs = opts.retryBaseMs ?? (Number(process.env.HPCC_RETRY_BASE_MS) || 250);
    this.userAgent = opts.userAgent ?? 'hpcc';
  }

  private async dispatcher(): Promise<Dispatcher> {
    return this.explicitDispatcher ?? defaultAgent(!this.insecure);
  }

  private async get(url: string | URL, headers: Record<string, string>, dispatcher: Dispatcher): Promise<Dispatcher.ResponseData> {
    await loadUndici(); // the request API on Dispatcher (also for a caller's own dispatcher)
    const u = typeof url === 'string' ? new URL(url) : url;
    return dispatcher.request({ origin: u.origin, path: `${u.pathname}${u.search}`, method: 'GET', headers });
  }

  private backoff(attempt: number, retryAfter?: string): number {
    const ra = retryAfter !== undefined ? Number(retryAfter) : NaN;
    if (Number.isFinite(ra) && ra >= 0) return Math.min(ra * 1000, 30_000);
    return Math.min(this.retryBaseMs * 2 ** attempt, 10_000) * (0.75 + Math.random() * 0.5);
  }

  /**
   * Send a request with auth, retries and redirects; resolves with a 2xx
   * response whose body the caller must consume. `what` names it in errors.
   */
  private async send(what: string, url: string, repo: string, extraHeaders?: Record<string, string>): Promise<Dispatcher.ResponseData>;
  private async send(what: string, url: string, repo: string, extraHeaders: Record<string, string>, streaming: true): Promise<StreamingResponse>;
  private async send(
    what: string,
    url: string,
    repo: string,
    extraHeaders: Record<string, string> = {},
    streaming = false,
  ): Promise<Dispatcher.ResponseData | StreamingResponse> {
    const dispatcher = await this.dispatcher();
    let attempt = 0;
    let redirects = 0;
    let authTried = false;
    let sameOrigin = true;
    for (;;) {
      const headers: Record<string, string> = { 'user-agent': this.userAgent, ...extraHeaders };
      const authz = this.auth.get(repo) ?? this.auth.get('');
      if (authz && sameOrigin) headers.authorization = authz;
      let res: Dispatcher.ResponseData | StreamingResponse;
      try {
        if (streaming) {
          await loadUndici();
          res = await streamingGet(dispatcher, new URL(url), headers);
        } else res = await this.get(url, headers, dispatcher);
      } catch (e) {
        if (attempt < this.retries && !isTlsError(e)) {
          await sleep(this.backoff(attempt++));
          continue;
        }
        throw this.networkError(what, e);
      }
      const s = res.statusCode;
      if (s >= 300 && s < 400 && s !== 304) {
        const loc = header(res.headers, 'location');
        await drain(res.body);
        if (!loc || ++redirects > MAX_REDIRECTS) {
          throw new RegistryError('HPCC_E_REGISTRY_REDIRECT', `${what}: ${loc ? 'too many redirects' : `HTTP ${s} without Location`}`, {
            status: s,
            registry: this.registry,
          });
        }
        const next = new URL(loc, url);
        if (next.protocol !== 'https:' && next.protocol !== 'http:') {
          throw new RegistryError('HPCC_E_REGISTRY_REDIRECT', `${what}: redirect to unsupported URL scheme ${next.protocol}`, { registry: this.registry });
        }
        sameOrigin = next.origin === new URL(this.baseUrl).origin;
        url = next.toString();
        continue;
      }
      if (s === 401 && !authTried && sameOrigin) {
        const ch = parseChallenge(header(res.headers, 'www-authenticate'));
        await drain(res.body);
        authTried = true;
        await this.authenticate(ch, repo, what);
        continue;
      }
      if (s >= 200 && s < 300) return res;
      const body = (await readBounded(res.body, MAX_ERROR_BODY).catch(() => Buffer.alloc(0))).toString('utf8');
      if (isRetryableStatus(s) && attempt < this.retries) {
        await sleep(this.backoff(attempt++, header(res.headers, 'retry-after')));
        continue;
      }
      throw registryHttpError(s, what, this.registry, body);
    }
  }

  private networkError(what: string, e: unknown): RegistryError {
    const code = (e as { code?: string })?.code ?? '';
    const raw = String((e as Error)?.message ?? e);
    const plainHttp = /wrong version number|WRONG_VERSION_NUMBER/.test(raw + code);
    const cert = !plainHttp && isTlsError(e);
    const msg = plainHttp
      ? 'the server does not speak TLS (a plain-HTTP registry?)'
      : `${raw.split('\n')[0]!.slice(0, 300)}${code && !raw.includes(code) ? ` (${code})` : ''}`;
    return new RegistryError(
      'HPCC_E_REGISTRY_NETWORK',
      `${what}: cannot reach ${this.registry} (${this.baseUrl}): ${msg}`,
      { registry: this.registry },
      {
        cause: e,
        hint: plainHttp
          ? 'For a plain-HTTP registry, pass --insecure or list it under [registries] insecure in hpcc.conf (or HPCC_INSECURE_REGISTRIES).'
          : cert
            ? "The registry's TLS certificate is not trusted: add its CA to the system bundle, or point SSL_CERT_FILE at it; --insecure switches to plain HTTP."
            : 'Check the registry address, your network and any proxy settings (HTTPS_PROXY, NO_PROXY).',
      },
    );
  }

  /** Answer a 401 challenge: Basic with credentials, or fetch a Bearer token for repo:pull. */
  private async authenticate(ch: Challenge | null, repo: string, what: string): Promise<void> {
    if (!ch || (ch.scheme !== 'basic' && ch.scheme !== 'bearer')) {
      throw registryHttpError(401, what, this.registry, '');
    }
    if (ch.scheme === 'basic') {
      const creds = await this.credentials;
      if (!creds) throw registryHttpError(401, what, this.registry, '');
      this.auth.set('', this.basicHeader(creds));
      return;
    }
    const realm = ch.params.realm;
    if (!realm) throw new RegistryError('HPCC_E_REGISTRY_AUTH', `${what}: Bearer challenge without a realm`, { registry: this.registry });
    const token = await this.fetchToken(realm, ch.params.service, repo ? `repository:${repo}:pull` : ch.params.scope, what);
    this.auth.set(repo, `Bearer ${token}`);
  }

  private basicHeader(c: Credentials): string {
    return `Basic ${Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64')}`;
  }

  private async fetchToken(realm: string, service: string | undefined, scope: string | undefined, what: string): Promise<string> {
    let u: URL;
    try {
      u = new URL(realm);
    } catch {
      throw new RegistryError('HPCC_E_REGISTRY_AUTH', `${what}: bad token realm ${JSON.stringify(realm.slice(0, 200))}`, { registry: this.registry });
    }
    if (service) u.searchParams.set('service', service);
    if (scope) u.searchParams.set('scope', scope);
    const headers: Record<string, string> = { 'user-agent': this.userAgent };
    const creds = await this.credentials;
    if (creds) {
      if (u.protocol !== 'https:' && !this.insecure) {
        throw new RegistryError('HPCC_E_REGISTRY_AUTH', `${what}: the token realm ${u.origin} is plain HTTP; credentials are not sent there`, { registry: this.registry }, {
          hint: 'The registry sends its token service over HTTP; if that is intended (a local registry), mark the registry insecure.',
        });
      }
      headers.authorization = this.basicHeader(creds);
    }
    const dispatcher = await this.dispatcher();
    for (let attempt = 0; ; attempt++) {
      let res: Dispatcher.ResponseData;
      try {
        res = await this.get(u, headers, dispatcher);
      } catch (e) {
        if (attempt < this.retries) {
          await sleep(this.backoff(attempt));
          continue;
        }
        throw this.networkError(`${what} (token from ${u.origin})`, e);
      }
      const body = (await readBounded(res.body, 1 << 20)).toString('utf8');
      if (res.statusCode === 200) {
        try {
          const j = JSON.parse(body) as { token?: unknown; access_token?: unknown };
          const t = typeof j.token === 'string' ? j.token : typeof j.access_token === 'string' ? j.access_token : '';
          if (t !== '') return t;
        } catch {
          /* fall through */
        }
        throw new RegistryError('HPCC_E_REGISTRY_AUTH', `${what}: the token service ${u.origin} sent no token`, { registry: this.registry });
      }
      if (isRetryableStatus(res.statusCode) && attempt < this.retries) {
        await sleep(this.backoff(attempt));
        continue;
      }
      const err = registryHttpError(res.statusCode, `${what} (token from ${u.origin})`, this.registry, body);
      if (res.statusCode === 401 && creds) {
        err.message += `; the credentials from ${creds.source} were rejected`;
      }
      throw err;
    }
  }

  /** GET /v2/ (ping). With credentials, also proves they are accepted (used by login). */
  async ping(): Promise<void> {
    const res = await this.send('ping /v2/', `${this.baseUrl}/v2/`, '');
    await drain(res.body);
  }

  /** A manifest (index or image manifest) by tag or digest; verified when `ref` is a digest. */
  async getManifest(repo: string, ref: string): Promise<ManifestResponse> {
    const what = `manifest ${repo}:${ref}`;
    const res = await this.send(what, `${this.baseUrl}/v2/${repo}/manifests/${encodeURIComponent(ref)}`, repo, {
      accept: MANIFEST_ACCEPT_HEADER,
    });
    const bytes = await readBounded(res.body, MAX_MANIFEST_BYTES).catch((e) => {
      throw new RegistryError('HPCC_E_REGISTRY_MANIFEST', `${what}: ${(e as Error).message}`, { registry: this.registry });
    });
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (ref.includes(':') && ref !== digest) {
      throw new DigestMismatchError(`${what}: the registry sent a manifest whose digest is ${digest}`, ref, digest);
    }
    const ct = (header(res.headers, 'content-type') ?? '').split(';')[0]!.trim();
    return { bytes, mediaType: ct, digest };
  }

  /** A small blob (config) read into memory, verified against digest and size. */
  async getBlobBytes(repo: string, digest: string, size: number, limit = 16 << 20): Promise<Buffer> {
    checkDigest(digest);
    if (size > limit) throw new RegistryError('HPCC_E_REGISTRY_TOO_LARGE', `blob ${digest} is ${size} bytes, more than ${limit}`);
    const res = await this.send(`blob ${digest}`, this.blobUrl(repo, digest), repo);
    const bytes = await readBounded(res.body, size).catch((e: Error) => {
      throw new DigestMismatchError(`blob ${digest}: ${e.message}`, digest, `more than ${size} bytes`);
    });
    const got = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (bytes.length !== size || got !== digest) {
      throw new DigestMismatchError(`blob ${digest}: got ${bytes.length} bytes with digest ${got}, expected ${size} bytes`, digest, got);
    }
    return bytes;
  }

  /**
   * A blob download whose GET goes out now and whose body waits, unread, for
   * into() to give it a file (the cache takes its lock and makes its temp file
   * meanwhile); cancel() drops it. into() is downloadBlob from that response.
   */
  startBlob(repo: string, digest: string, size: number, onProgress?: (bytes: number) => void): EarlyFetch {
    checkDigest(digest);
    let first: Promise<StreamingResponse> | undefined = this.send(`blob ${digest}`, this.blobUrl(repo, digest), repo, {}, true);
    first.catch(() => undefined); // seen by into(), or dropped by cancel()
    return {
      into: (out) => {
        const r = first;
        first = undefined;
        return this.downloadBlob(repo, digest, size, out, onProgress, r);
      },
      cancel: () => {
        first?.then((r) => r.body.destroy(), () => undefined);
        first = undefined;
      },
    };
  }

  private blobUrl(repo: string, digest: string): string {
    return `${this.baseUrl}/v2/${repo}/blobs/${digest}`;
  }

  /**
   * Stream a blob into `out` (from offset 0), checking sha256 and size, resuming
   * with Range after a dropped connection (or restarting when the server ignores Range).
   * `first`: the response to a GET already sent (startBlob).
   */
  async downloadBlob(
    repo: string,
    digest: string,
    size: number,
    out: FileHandle,
    onProgress?: (bytes: number) => void,
    first?: Promise<StreamingResponse>,
  ): Promise<void> {
    checkDigest(digest);
    const what = `blob ${digest}`;
    const url = this.blobUrl(repo, digest);
    let hash = createHash('sha256');
    let written = 0; // bytes received and hashed (= the resume offset)
    const w = new OrderedWriter(out);
    let drops = 0;
    for (;;) {
      const res = first !== undefined && written === 0 ? await first : await this.send(what, url, repo, written > 0 ? { range: `bytes=${written}-` } : {}, true);
      first = undefined;
      if (written > 0) {
        const cr = header(res.headers, 'content-range');
        const start = res.statusCode === 206 && cr ? Number(/^bytes (\d+)-/.exec(cr)?.[1]) : NaN;
        if (start !== written) {
          // Range not honoured: start over from byte 0 with a fresh hash.
          if (res.statusCode === 206) {
            await drain(res.body);
            throw new RegistryError('HPCC_E_REGISTRY_RANGE', `${what}: bad Content-Range ${JSON.stringify(cr)} for resume at ${written}`, { registry: this.registry });
          }
          hash = createHash('sha256');
          written = 0;
          await w.restart();
        }
      }
      try {
        // Each chunk: size check, hash, queued for writing (in order, in the background);
        // the transfer pauses while too much waits to be written.
        await res.pipe((b) => {
          if (written + b.length > size) {
            throw new DigestMismatchError(`${what}: the registry sent more than the ${size} bytes the manifest declares`, digest, `size > ${size}`);
          }
          hash.update(b);
          written += b.length;
          if (!w.push(b)) return undefined;
          onProgress?.(written);
          return w.full ? w.room() : undefined;
        });
        await w.drain();
        onProgress?.(written);
        if (written === size) break;
        throw new Error(`connection ended after ${written} of ${size} bytes`);
      } catch (e) {
        if (e instanceof DigestMismatchError) {
          await w.drain().catch(() => undefined);
          throw e;
        }
        await w.drain(); // what arrived was hashed; keep it and resume after it (a write error ends here)
        if (++drops > this.retries) throw this.networkError(`${what} (after ${drops} dropped connections)`, e);
        await sleep(this.backoff(drops - 1));
      }
    }
    const got = `sha256:${hash.digest('hex')}`;
    if (got !== digest) {
      throw new DigestMismatchError(`${what}: downloaded bytes have digest ${got}`, digest, got);
    }
  }
}

/** Certificate and handshake failures: not transient, never retried. */
function isTlsError(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return (
    (typeof code === 'string' && /CERT|SSL|TLS|EPROTO|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|DEPTH_ZERO/.test(code)) ||
    /certificate|wrong version number/i.test(String((e as Error)?.message))
  );
}

export function checkDigest(digest: string): void {
  if (!DIGEST_RE.test(digest)) {
    throw new RegistryError('HPCC_E_REGISTRY_DIGEST_FORMAT', `unsupported or malformed digest ${JSON.stringify(digest.slice(0, 100))}`, {}, {
      hint: 'hpcc supports sha256 digests (sha256:<64 hex digits>).',
    });
  }
}
