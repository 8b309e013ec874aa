/**
 * Test environment facts and helpers shared by integration tests.
 * In CI (CI=true) a missing tool is a failure, never a silent skip.
 */
import { execFileSync, spawnSync, type SpawnSyncOptions, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout root: the nearest parent holding package.json (works from src and from dist/). */
export const REPO_ROOT = (() => {
  let d = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(d, 'package.json')) && path.dirname(d) !== d) d = path.dirname(d);
  return d;
})();
export const HPCC_BIN = path.join(REPO_ROOT, 'bin', 'run.js');
export const IS_ROOT = process.getuid?.() === 0;
export const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
/** The unprivileged user test/run.sh creates; tests run containers and FUSE mounts as this user. */
export const TEST_USER = process.env.HPCC_TEST_USER ?? 'hpcctest';

const toolCache = new Map<string, string | null>();

export function findTool(name: string): string | null {
  if (toolCache.has(name)) return toolCache.get(name)!;
  const dirs = (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin', '/usr/bin', '/bin']);
  let found: string | null = null;
  for (const d of dirs) {
    const p = path.join(d, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      found = p;
      break;
    } catch {
      /* next */
    }
  }
  toolCache.set(name, found);
  return found;
}

/** Skip (locally) or fail (in CI) when a required tool is missing. */
export function requireTools(ctx: Mocha.Context, ...names: string[]): void {
  const missing = names.filter((n) => findTool(n) === null);
  if (missing.length === 0) return;
  if (IN_CI) throw new Error(`required tools missing in CI: ${missing.join(', ')} (test/run.sh should install them)`);
  ctx.skip();
}

/** Skip (locally) or fail (in CI) unless running as root. */
export function requireRoot(ctx: Mocha.Context): void {
  if (IS_ROOT) return;
  if (IN_CI) throw new Error('CI must run the suite as root');
  ctx.skip();
}

export function testUserExists(): boolean {
  return spawnSync('id', ['-u', TEST_USER]).status === 0;
}

/** Skip (locally) or fail (in CI) unless we can run commands as the unprivileged test user. */
export function requireTestUser(ctx: Mocha.Context): void {
  if (!IS_ROOT) return; // already unprivileged: run as ourselves
  if (testUserExists()) return;
  if (IN_CI) throw new Error(`test user ${TEST_USER} missing (test/run.sh creates it)`);
  ctx.skip();
}

/**
 * Run a command as the unprivileged test user when we are root (setpriv, with
 * the user's groups and a clean HOME), or as ourselves otherwise.
 */
/**
 * Warm mounts are off in tests unless a test turns them on (HPCC_WARM_IDLE in
 * its env): a keeper outlives its launch, and the suites check that a launch
 * leaves no process or mount behind (test/e2e/launch-warm.test.ts tests keepers).
 */
export const WARM_IDLE_FOR_TESTS = '0';
process.env.HPCC_WARM_IDLE ??= WARM_IDLE_FOR_TESTS;

export function runUnprivileged(cmd: string, args: string[], opts: SpawnSyncOptions = {}): SpawnSyncReturns<string> {
  if (!IS_ROOT) return spawnSync(cmd, args, { ...opts, encoding: 'utf8' });
  const uid = execFileSync('id', ['-u', TEST_USER], { encoding: 'utf8' }).trim();
  const gid = execFileSync('id', ['-g', TEST_USER], { encoding: 'utf8' }).trim();
  const env = {
    PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin',
    HPCC_WARM_IDLE: WARM_IDLE_FOR_TESTS,
    HOME: `/home/${TEST_USER}`,
    USER: TEST_USER,
    LOGNAME: TEST_USER,
    ...(opts.env ?? {}),
  };
  return spawnSync('setpriv', ['--reuid', uid, '--regid', gid, '--init-groups', '--', cmd, ...args], {
    ...opts,
    env,
    encoding: 'utf8',
  });
}

/** uid/gid of the unprivileged test user (or ourselves when not root). */
export function testUserIds(): { uid: number; gid: number } {
  if (!IS_ROOT) return { uid: process.getuid!(), gid: process.getgid!() };
  return {
    uid: Number(execFileSync('id', ['-u', TEST_USER], { encoding: 'utf8' })),
    gid: Number(execFileSync('id', ['-g', TEST_USER], { encoding: 'utf8' })),
  };
}

/** A fresh temporary directory, world-traversable so the test user can use files inside it. */
export function makeTempDir(prefix = 'hpcc-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dir, 0o755);
  return dir;
}

export function removeTree(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Run the hpcc CLI (built into dist/) as a subprocess. */
export function runHpcc(args: string[], opts: SpawnSyncOptions = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [HPCC_BIN, ...args], { ...opts, encoding: 'utf8' });
}
