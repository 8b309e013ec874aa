/**
 * Registry credentials.
 *   hpcc's own store: $XDG_CONFIG_HOME/hpcc/auth.json (default ~/.config/hpcc/auth.json),
 *   mode 0600 in a 0700 directory, same shape as Docker's: {"auths":{"host":{"auth":"base64(user:pass)"}}}.
 *   Docker's: $DOCKER_CONFIG/config.json or ~/.docker/config.json: the credential helper
 *   named for the registry in "credHelpers", then the "auths" entry, then the helper in
 *   "credsStore" (cred-helper.ts).
 * hpcc's store wins over Docker's (and then no helper runs).
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { HpccIOError, UsageError, addContext } from '../../errors/index.js';
import { writeFileAtomic } from '../../util/atomic-write.js';
import { configHome, homeDir } from '../../util/cache-root.js';
import { runCredentialHelper } from './cred-helper.js';

export interface Credentials {
  username: string;
  password: string;
  /** where they came from (for messages) */
  source: string;
}

interface AuthFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string }>;
  credsStore?: unknown;
  credHelpers?: unknown;
  [k: string]: unknown;
}

const MAX_AUTH_FILE = 1 << 20;

export function hpccAuthPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HPCC_AUTH_FILE) return env.HPCC_AUTH_FILE;
  return path.join(configHome(env), 'hpcc', 'auth.json');
}

export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_CONFIG ? path.join(env.DOCKER_CONFIG, 'config.json') : path.join(homeDir(env), '.docker', 'config.json');
}

const DOCKER_HUB_KEYS = ['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com'];

/** Normalise an auths key or registry name: no scheme, no path, lower-case host, Docker Hub folded to docker.io. */
export function normalizeRegistryKey(key: string): string {
  let k = key.trim().replace(/^[a-z]+:\/\//i, '');
  k = k.split('/')[0]!.toLowerCase();
  return DOCKER_HUB_KEYS.includes(k) ? 'docker.io' : k;
}

async function readAuthFile(file: string): Promise<AuthFile | null> {
  let text: string;
  try {
    const fh = await fs.open(file, 'r');
    try {
      const st = await fh.stat();
      if (st.size > MAX_AUTH_FILE) throw new HpccIOError('HPCC_E_AUTH_FILE', `${file} is too large to be a credentials file`);
      text = await fh.readFile('utf8');
    } finally {
      await fh.close();
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw addContext(`read credentials ${file}`, e);
  }
  try {
    const j = JSON.parse(text) as AuthFile;
    return j && typeof j === 'object' ? j : {};
  } catch (e) {
    throw new HpccIOError('HPCC_E_AUTH_FILE', `${file} is not valid JSON`, {
      cause: e,
      hint: 'Fix or remove the file (hpcc registry logout rewrites it).',
    });
  }
}

function decodeEntry(entry: { auth?: string; username?: string; password?: string }, source: string): Credentials | null {
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const plain = Buffer.from(entry.auth, 'base64').toString('utf8');
    const i = plain.indexOf(':');
    if (i > 0) return { username: plain.slice(0, i), password: plain.slice(i + 1), source };
  }
  if (typeof entry.username === 'string' && typeof entry.password === 'string') {
    return { username: entry.username, password: entry.password, source };
  }
  return null;
}

function findIn(file: AuthFile | null, registry: string, source: string): Credentials | null {
  if (!file?.auths || typeof file.auths !== 'object') return null;
  const want = normalizeRegistryKey(registry);
  for (const [key, entry] of Object.entries(file.auths)) {
    if (entry && typeof entry === 'object' && normalizeRegistryKey(key) === want) {
      const c = decodeEntry(entry, source);
      if (c) return c;
    }
  }
  return null;
}

/** The helper Docker's config names for this registry in credHelpers, if any. */
function namedHelper(file: AuthFile | null, registry: string): string | null {
  if (!file?.credHelpers || typeof file.credHelpers !== 'object') return null;
  const want = normalizeRegistryKey(registry);
  for (const [key, name] of Object.entries(file.credHelpers as Record<string, unknown>)) {
    if (typeof name === 'string' && name !== '' && normalizeRegistryKey(key) === want) return name;
  }
  return null;
}

/**
 * Credentials for a registry, or null: hpcc's store first, then Docker's
 * config.json — the helper its credHelpers names for the registry, then its
 * auths entry, then its credsStore helper. (Docker itself asks credsStore before
 * auths; a config that has both holds credentials in auths only when written by
 * hand or copied, and then they are what the user meant. Helpers run only when
 * needed, so a copied config whose credsStore is not installed here still works
 * for the registries auths covers.)
 */
export async function lookupCredentials(registry: string, env: NodeJS.ProcessEnv = process.env): Promise<Credentials | null> {
  const own = hpccAuthPath(env);
  const c = findIn(await readAuthFile(own), registry, own);
  if (c) return c;
  const dock = dockerConfigPath(env);
  const file = await readAuthFile(dock);
  const viaHelper = async (name: string): Promise<Credentials | null> => {
    const h = await runCredentialHelper(name, normalizeRegistryKey(registry), dock, env);
    return h ? { ...h, source: `docker-credential-${name} (named in ${dock})` } : null;
  };
  const named = namedHelper(file, registry);
  if (named) {
    const h = await viaHelper(named);
    if (h) return h;
  }
  const fromAuths = findIn(file, registry, dock);
  if (fromAuths) return fromAuths;
  const store = typeof file?.credsStore === 'string' && file.credsStore !== '' ? file.credsStore : null;
  return store ? viaHelper(store) : null;
}

async function writeAuthFile(file: string, data: AuthFile): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await writeFileAtomic(file, JSON.stringify(data, null, 2) + '\n', { mode: 0o600, what: `write credentials ${file}` });
}

/** Store credentials (0600) in hpcc's auth file, replacing any entry for the same registry. */
export async function storeCredentials(
  registry: string,
  username: string,
  password: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  if (username === '' || username.includes(':')) {
    throw new UsageError('the user name must be non-empty and must not contain ":"');
  }
  const file = hpccAuthPath(env);
  const data = (await readAuthFile(file)) ?? {};
  const auths: NonNullable<AuthFile['auths']> = data.auths && typeof data.auths === 'object' ? data.auths : {};
  const key = normalizeRegistryKey(registry);
  for (const k of Object.keys(auths)) if (normalizeRegistryKey(k) === key) delete auths[k];
  auths[key] = { auth: Buffer.from(`${username}:${password}`, 'utf8').toString('base64') };
  data.auths = auths;
  await writeAuthFile(file, data);
  return file;
}

/** Remove a registry's entry from hpcc's auth file; returns whether one was there. */
export async function removeCredentials(registry: string, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const file = hpccAuthPath(env);
  const data = await readAuthFile(file);
  if (!data?.auths) return false;
  const key = normalizeRegistryKey(registry);
  let found = false;
  for (const k of Object.keys(data.auths)) {
    if (normalizeRegistryKey(k) === key) {
      delete data.auths[k];
      found = true;
    }
  }
  if (found) await writeAuthFile(file, data);
  return found;
}
