/**
 * Docker credential helpers: `credHelpers` ({"host": "NAME"}) and `credsStore`
 * ("NAME") in Docker's config.json name a program `docker-credential-NAME`
 * (found on PATH). Protocol: `docker-credential-NAME get`, the server URL on
 * stdin, JSON on stdout: {"ServerURL": …, "Username": …, "Secret": …}. A helper
 * that does not know the server exits non-zero saying "credentials not found".
 * The server URL is the registry host as Docker writes it
 * ("https://index.docker.io/v1/" for Docker Hub). Each run is bounded
 * (HPCC_CRED_HELPER_TIMEOUT_MS, default 10 s) and its output size limited.
 */
import { spawn } from 'node:child_process';
import { HpccIOError } from '../../errors/index.js';

export interface HelperCredentials {
  username: string;
  password: string;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const MAX_OUT = 64 << 10;
const DEFAULT_TIMEOUT_MS = 10_000;

/** The server URL Docker hands its helpers for a registry (normalised host). */
export function helperServerUrl(registry: string): string {
  return registry === 'docker.io' ? 'https://index.docker.io/v1/' : registry;
}

function helperError(name: string, msg: string, hint: string, cause?: unknown): HpccIOError {
  return new HpccIOError('HPCC_E_AUTH_HELPER', `docker-credential-${name}: ${msg}`, {
    hint,
    ...(cause !== undefined ? { cause } : {}),
  });
}

const CONFIG_HINT = (name: string, file: string) =>
  `Install docker-credential-${name} on PATH, or remove "${name}" from credsStore/credHelpers in ${file}; ` +
  '`hpcc registry login` stores credentials that hpcc uses before Docker\'s.';

/**
 * Ask helper `name` for the credentials of `registry` (a normalised host).
 * Null when the helper has none for it; a typed error when it is missing,
 * hangs, fails or answers nonsense.
 */
export async function runCredentialHelper(
  name: string,
  registry: string,
  configFile: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<HelperCredentials | null> {
  if (!NAME_RE.test(name)) {
    throw helperError(name.slice(0, 64), 'is not a valid credential helper name', `Fix credsStore/credHelpers in ${configFile}.`);
  }
  const timeoutMs = Number(env.HPCC_CRED_HELPER_TIMEOUT_MS) > 0 ? Number(env.HPCC_CRED_HELPER_TIMEOUT_MS) : DEFAULT_TIMEOUT_MS;
  const prog = `docker-credential-${name}`;
  const child = spawn(prog, ['get'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let tooBig = false;
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    if (out.length + d.length > MAX_OUT) {
      tooBig = true;
      child.kill('SIGKILL');
    } else out += d;
  });
  child.stderr.on('data', (d: string) => {
    if (err.length < 4096) err += d;
  });
  child.stdin.on('error', () => undefined); // a helper that exits without reading stdin
  child.stdin.end(helperServerUrl(registry));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  })
    .catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') {
        throw helperError(name, `not found on PATH (named in ${configFile})`, CONFIG_HINT(name, configFile), e);
      }
      throw helperError(name, `cannot run: ${e.message}`, CONFIG_HINT(name, configFile), e);
    })
    .finally(() => clearTimeout(timer));
  if (timedOut) {
    throw helperError(name, `gave no answer within ${timeoutMs / 1000} s for ${registry} (killed)`, CONFIG_HINT(name, configFile));
  }
  if (tooBig) throw helperError(name, `answered more than ${MAX_OUT} bytes for ${registry}`, CONFIG_HINT(name, configFile));
  const said = `${out} ${err}`.trim();
  if (code !== 0) {
    if (/credentials not found/i.test(said)) return null;
    throw helperError(name, `failed for ${registry} (exit ${code}): ${said.slice(0, 300)}`, CONFIG_HINT(name, configFile));
  }
  let j: { Username?: unknown; Secret?: unknown };
  try {
    j = JSON.parse(out) as typeof j;
  } catch (e) {
    throw helperError(name, `answered something that is not JSON for ${registry}`, CONFIG_HINT(name, configFile), e);
  }
  if (typeof j?.Username !== 'string' || typeof j.Secret !== 'string' || j.Secret === '') {
    throw helperError(name, `answered without Username and Secret for ${registry}`, CONFIG_HINT(name, configFile));
  }
  if (j.Username === '<token>') {
    throw helperError(name, `holds an identity token for ${registry}, which hpcc does not use`, '`hpcc registry login` with a user name and password (or access token) instead.');
  }
  return { username: j.Username, password: j.Secret };
}
