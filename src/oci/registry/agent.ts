/**
 * undici's parts and the shared connection agents of the registry client:
 * loaded on first network use, one pooled agent per process and kind (TLS,
 * plain), trusting Node's roots plus the system CA bundle.
 */
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as tls from 'node:tls';
import type { Dispatcher } from 'undici';
import { RegistryError } from './errors.js';

/** System CA bundles, first one that exists wins (Debian/Ubuntu, RHEL, SUSE, Alpine/BSD). */
const SYSTEM_CA_FILES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/ca-bundle.pem', '/etc/ssl/cert.pem'];
const MAX_CA_FILE = 16 << 20;

/**
 * Trusted CAs for registries: Node's bundled roots plus the system bundle
 * (site CAs are installed there), or only the file named by SSL_CERT_FILE.
 */
export function trustedCAs(env: NodeJS.ProcessEnv = process.env): string[] {
  const read = (f: string): string | null => {
    try {
      return fs.statSync(f).size <= MAX_CA_FILE ? fs.readFileSync(f, 'utf8') : null;
    } catch {
      return null;
    }
  };
  if (env.SSL_CERT_FILE) {
    const pem = read(env.SSL_CERT_FILE);
    if (pem === null) {
      throw new RegistryError('HPCC_E_REGISTRY_CA', `cannot read the CA bundle SSL_CERT_FILE=${env.SSL_CERT_FILE}`, {}, {
        hint: 'Point SSL_CERT_FILE at a PEM file of trusted CA certificates, or unset it.',
      });
    }
    return [pem];
  }
  for (const f of SYSTEM_CA_FILES) {
    const pem = read(f);
    if (pem !== null) return [...tls.rootCertificates, pem];
  }
  return [...tls.rootCertificates];
}

interface UndiciParts {
  Agent: typeof import('undici').Agent;
  proxyAgent(): typeof import('undici').EnvHttpProxyAgent;
}
/** Give every dispatcher the request/stream/pipeline API, as undici's package entry does. */
function addApi(Dispatcher: { prototype: Record<string, unknown> }, api: Record<string, unknown>): void {
  if (typeof Dispatcher.prototype.request !== 'function') Object.assign(Dispatcher.prototype, api);
}
/**
 * undici is loaded on first network use (local-only commands skip it), and only
 * the parts the client uses: the Agent and the request API on Dispatcher (about
 * 0.04 s, where the package entry, with fetch, WebSocket, mocks and caches,
 * costs about 0.13 s). The package entry is the fallback should the files move.
 */
async function loadParts(): Promise<UndiciParts> {
  try {
    const require = createRequire(import.meta.url);
    const Agent = require('undici/lib/dispatcher/agent.js') as UndiciParts['Agent'];
    const Dispatcher = require('undici/lib/dispatcher/dispatcher.js') as { prototype: Record<string, unknown> };
    const api = require('undici/lib/api/index.js') as Record<string, unknown>;
    if (typeof Agent !== 'function' || typeof api.request !== 'function') throw new Error('unexpected undici layout');
    addApi(Dispatcher, api);
    return { Agent, proxyAgent: () => require('undici/lib/dispatcher/env-http-proxy-agent.js') as ReturnType<UndiciParts['proxyAgent']> };
  } catch {
    const u = await import('undici');
    return { Agent: u.Agent, proxyAgent: () => u.EnvHttpProxyAgent };
  }
}
let undiciParts: Promise<UndiciParts> | undefined;
export const loadUndici = () => (undiciParts ??= loadParts());

const sharedAgents = new Map<'tls' | 'plain', Dispatcher>();
/**
 * One pooled dispatcher per process and kind (keep-alive connections shared by
 * all clients); the TLS one trusts trustedCAs() through one secure context
 * built on first use. HTTP(S)_PROXY/NO_PROXY are honoured when set.
 */
export async function defaultAgent(secure = true): Promise<Dispatcher> {
  const { Agent, proxyAgent } = await loadUndici();
  const kind = secure ? 'tls' : 'plain';
  let a = sharedAgents.get(kind);
  if (!a) {
    const opts = {
      connections: 8,
      keepAliveTimeout: 10_000,
      headersTimeout: 60_000,
      bodyTimeout: 60_000,
      ...(secure ? { connect: { secureContext: tls.createSecureContext({ ca: trustedCAs() }) } } : {}),
    };
    const e = process.env;
    const proxied = e.HTTPS_PROXY || e.https_proxy || e.HTTP_PROXY || e.http_proxy;
    a = proxied ? new (proxyAgent())(opts) : new Agent(opts);
    sharedAgents.set(kind, a);
  }
  return a;
}
export async function closeDefaultAgent(): Promise<void> {
  const all = [...sharedAgents.values()];
  sharedAgents.clear();
  await Promise.all(all.map((a) => a.close()));
}
