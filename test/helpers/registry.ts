/**
 * A real OCI registry for tests: Debian's docker-registry (distribution 2.8)
 * bound to 127.0.0.1 (or opts.addr) on a free port, storage in a temp dir, in one of three
 * auth modes:
 *   'none'    no auth
 *   'basic'   htpasswd (bcrypt, made with `htpasswd -Bbn`)
 *   'token'   Bearer tokens from a tiny token issuer in this process
 *             (node:http on 127.0.0.1), RS256 JWTs signed with a key + self-signed
 *             cert made by `openssl req -x509` that the registry trusts
 *             (auth.token.rootcertbundle); the cert rides in the JWT's x5c header.
 *             Repositories under private/ need the user's password; others are
 *             anonymous-pullable.
 * Also: fixtures pushed with skopeo from an OCI layout built with umoci.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSign, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as path from 'node:path';
import { makeTempDir, removeTree } from './env.js';

export type RegistryAuth = 'none' | 'basic' | 'token';
export const TEST_USER_NAME = 'alice';
export const TEST_PASSWORD = 's3cret-pw';

export interface TestRegistry {
  host: string; // ADDR:PORT (127.0.0.1 unless opts.addr)
  port: number;
  auth: RegistryAuth;
  storage: string;
  dir: string;
  /** the process group of the registry (its `timeout` wrapper) */
  pid: number;
  /** with tls: the CA that signed the registry's certificate (PEM file) */
  caFile?: string;
  /** token issuer requests seen (for assertions) */
  tokenRequests: Array<{ scope: string; user: string | null }>;
  /** with accessLog: every request the registry served so far, with the client's address */
  requests(): RegistryRequest[];
  stop(): Promise<void>;
}

export interface RegistryRequest {
  client: string;
  method: string;
  path: string;
  status: number;
}

/** The requests in a registry's access log (combined log format lines in registry.log). */
function parseAccessLog(file: string): RegistryRequest[] {
  const out: RegistryRequest[] = [];
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  for (const m of text.matchAll(/^(\S+) \S+ \S+ \[[^\]]*\] "(\S+) (\S+) [^"]*" (\d{3}) /gm)) {
    out.push({ client: m[1]!, method: m[2]!, path: m[3]!, status: Number(m[4]) });
  }
  return out;
}

export async function freePort(addr = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, addr, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function run(cmd: string, args: string[], opts: { input?: string; cwd?: string } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

function tokenServer(opts: { keyPem: string; certDer: Buffer; service: string; issuer: string; log: TestRegistry['tokenRequests'] }): http.Server {
  return http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const scopes = u.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    let user: string | null = null;
    const a = req.headers.authorization;
    if (a?.startsWith('Basic ')) {
      const [n, p] = Buffer.from(a.slice(6), 'base64').toString('utf8').split(/:(.*)/s);
      if (n !== TEST_USER_NAME || p !== TEST_PASSWORD) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }));
        opts.log.push({ scope: scopes.join(' '), user: `bad:${n}` });
        return;
      }
      user = n!;
    }
    opts.log.push({ scope: scopes.join(' '), user });
    const access = [];
    for (const s of scopes) {
      const [type, name, actions] = s.split(':');
      if (type !== 'repository' || !name || !actions) continue;
      if (name.startsWith('private/') && user === null) continue; // anonymous: no access
      access.push({ type, name, actions: actions.split(',') });
    }
    const now = Math.floor(Date.now() / 1000);
    const header = { alg: 'RS256', typ: 'JWT', x5c: [opts.certDer.toString('base64')] };
    const claims = {
      iss: opts.issuer,
      sub: user ?? '',
      aud: opts.service,
      exp: now + 600,
      nbf: now - 60,
      iat: now,
      jti: randomBytes(8).toString('hex'),
      access,
    };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = createSign('RSA-SHA256').update(signingInput).sign(opts.keyPem);
    const token = `${signingInput}.${b64url(sig)}`;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: 600 }));
  });
}

/** Start a registry; call stop() in after(). */
export async function startRegistry(auth: RegistryAuth = 'none', opts: { tls?: boolean; addr?: string; accessLog?: boolean } = {}): Promise<TestRegistry> {
  const addr = opts.addr ?? '127.0.0.1';
  const dir = makeTempDir('hpcc-registry-');
  const storage = path.join(dir, 'storage');
  fs.mkdirSync(storage);
  const port = await freePort(addr);
  const tokenRequests: TestRegistry['tokenRequests'] = [];
  let tokenSrv: http.Server | undefined;
  let authYaml = '';
  try {
    if (auth === 'basic') {
      const line = run('htpasswd', ['-Bbn', TEST_USER_NAME, TEST_PASSWORD]);
      fs.writeFileSync(path.join(dir, 'htpasswd'), line);
      authYaml = `auth:\n  htpasswd:\n    realm: hpcc-test\n    path: ${path.join(dir, 'htpasswd')}\n`;
    } else if (auth === 'token') {
      const key = path.join(dir, 'token.key');
      const cert = path.join(dir, 'token.crt');
      run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=hpcc-test-token-issuer']);
      const certDer = Buffer.from(fs.readFileSync(cert, 'utf8').replace(/-----[^-]+-----|\s/g, ''), 'base64');
      tokenSrv = tokenServer({ keyPem: fs.readFileSync(key, 'utf8'), certDer, service: 'hpcc-test-registry', issuer: 'hpcc-test-issuer', log: tokenRequests });
      const tport = await new Promise<number>((resolve) => tokenSrv!.listen(0, '127.0.0.1', () => resolve((tokenSrv!.address() as net.AddressInfo).port)));
      authYaml =
        `auth:\n  token:\n    realm: http://127.0.0.1:${tport}/token\n    service: hpcc-test-registry\n` +
        `    issuer: hpcc-test-issuer\n    rootcertbundle: ${cert}\n`;
    }
    let tlsYaml = '';
    let caFile: string | undefined;
    if (opts.tls) {
      caFile = path.join(dir, 'ca.crt');
      const f = (n: string) => path.join(dir, n);
      run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', caFile, '-days', '2', '-subj', '/CN=hpcc-test-ca']);
      run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('srv.key'), '-out', f('srv.csr'), '-subj', `/CN=${addr}`]);
      fs.writeFileSync(f('ext.cnf'), `subjectAltName=IP:${addr}\n`);
      run('openssl', ['x509', '-req', '-in', f('srv.csr'), '-CA', caFile, '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('srv.crt'), '-days', '2', '-extfile', f('ext.cnf')]);
      tlsYaml = `  tls:\n    certificate: ${f('srv.crt')}\n    key: ${f('srv.key')}\n`;
    }
    const cfg = path.join(dir, 'config.yml');
    fs.writeFileSync(
      cfg,
      `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: ${opts.accessLog ? 'false' : 'true'}\nstorage:\n  filesystem:\n    rootdirectory: ${storage}\n` +
        `  delete:\n    enabled: true\nhttp:\n  addr: ${addr}:${port}\n  secret: hpcc-test-secret\n${tlsYaml}${authYaml}health:\n  storagedriver:\n    enabled: false\n`,
    );
    const logFd = fs.openSync(path.join(dir, 'registry.log'), 'a');
    // Bounded by timeout(1) even if this test process dies; own process group so
    // stop() can kill the wrapper and the registry together.
    const child: ChildProcess = spawn('timeout', ['900', '/usr/bin/docker-registry', 'serve', cfg], { stdio: ['ignore', logFd, logFd], detached: true });
    const killGroup = (sig: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, sig);
      } catch {
        /* gone */
      }
    };
    fs.closeSync(logFd);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const host = `${addr}:${port}`;
    const deadline = Date.now() + 10_000;
    for (;;) {
      const ok = await new Promise<boolean>((resolve) => {
        const get = opts.tls ? https.get : http.get;
        const req = get(`${opts.tls ? 'https' : 'http'}://${host}/v2/`, { rejectUnauthorized: false }, (res) => {
          res.resume();
          resolve(res.statusCode === 200 || res.statusCode === 401);
        });
        req.on('error', () => resolve(false));
      });
      if (ok) break;
      if (Date.now() > deadline || child.exitCode !== null) {
        killGroup('SIGKILL');
        throw new Error(`docker-registry did not start: ${fs.readFileSync(path.join(dir, 'registry.log'), 'utf8').slice(-2000)}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return {
      host,
      port,
      auth,
      storage,
      dir,
      tokenRequests,
      pid: child.pid!,
      requests: () => parseAccessLog(path.join(dir, 'registry.log')),
      ...(caFile ? { caFile } : {}),
      async stop() {
        if (child.exitCode === null) {
          killGroup('SIGTERM');
          await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
          if (child.exitCode === null) killGroup('SIGKILL');
        }
        if (tokenSrv) await new Promise((r) => tokenSrv!.close(() => r(undefined)));
        removeTree(dir);
      },
    };
  } catch (e) {
    if (tokenSrv) tokenSrv.close();
    removeTree(dir);
    throw e;
  }
}

/** Path of a blob's data file in the registry's filesystem storage. */
export function registryBlobFile(reg: TestRegistry, digest: string): string {
  const hex = digest.replace(/^sha256:/, '');
  return path.join(reg.storage, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
}

/** Run a command asynchronously (the token issuer lives in this process, so never block the loop). */
export function runAsync(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} failed (${code}): ${err}`))));
  });
}

/** skopeo copy into the registry (creds when it needs auth). */
export async function skopeoPush(reg: TestRegistry, src: string, repoTag: string, extra: string[] = []): Promise<void> {
  const creds = reg.auth === 'none' ? [] : ['--dest-creds', `${TEST_USER_NAME}:${TEST_PASSWORD}`];
  await runAsync('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', ...creds, ...extra, src, `docker://${reg.host}/${repoTag}`]);
}

/** The digest skopeo reports for an image in the registry (manifest digest). */
export async function skopeoDigest(reg: TestRegistry, repoTag: string): Promise<string> {
  const creds = reg.auth === 'none' ? [] : ['--creds', `${TEST_USER_NAME}:${TEST_PASSWORD}`];
  const out = await runAsync('skopeo', ['inspect', '--tls-verify=false', ...creds, `docker://${reg.host}/${repoTag}`]);
  return (JSON.parse(out) as { Digest: string }).Digest;
}
