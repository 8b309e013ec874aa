/**
 * The debootstrap agent's tree: a Debian/Ubuntu root filesystem made as the
 * calling user with mmdebstrap --mode=unshare (subordinate ids needed). It
 * writes a tarball whose owners are the real ones (0:0, _apt 42, shadow 42,
 * ...); the tarball is then unpacked by tar running as root of the build
 * namespace, so the tree on disk has the session's map (0 = the caller,
 * N = the N-th subordinate id) and every owner survives into the image.
 * Device nodes are skipped (mknod is refused in a user namespace; /dev is
 * bound at run time).
 *
 * The apt sources: `deb MIRROR SUITE main` when MirrorURL is given; else the
 * host's own apt configuration, read at run time (`apt-get indextargets`):
 * for the host's own suite every configured http(s) source of that suite
 * (SUITE, SUITE-updates, SUITE-security, …), for another suite the host's
 * mirrors with that suite. The one rule: the test and bench scripts that
 * make root filesystems take their lines from it too (scripts/apt-sources.mjs).
 */
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { BuildEnvironmentError, UsageError } from '../errors/index.js';
import { Tail, findExecutable } from './ns-spawn.js';
import type { BuildSession } from './userns.js';

export interface DebootstrapOptions {
  osVersion: string;
  mirrorURL?: string;
  include?: string[];
  variant?: string;
  arch?: string;
}

interface HostTarget {
  uri: string;
  release: string;
  component: string;
}

function hostTargets(): Promise<HostTarget[]> {
  return new Promise((resolve) => {
    execFile(
      'apt-get',
      ['indextargets', '--format', '$(REPO_URI) $(RELEASE) $(COMPONENT)', 'Identifier: Packages'],
      { encoding: 'utf8', timeout: 30_000 },
      (err, stdout) => {
        if (err) return resolve([]);
        const out: HostTarget[] = [];
        for (const l of stdout.split('\n')) {
          const [uri, release, component] = l.trim().split(/\s+/);
          if (uri && release && component && /^https?:\/\//.test(uri)) out.push({ uri, release, component });
        }
        resolve(out);
      },
    );
  });
}

/** The host's Debian release codename (VERSION_CODENAME of /etc/os-release), or null. */
async function hostCodename(): Promise<string | null> {
  try {
    const m = /^VERSION_CODENAME=("?)([a-z]+)\1$/m.exec(await fs.readFile('/etc/os-release', 'utf8'));
    return m ? m[2]! : null;
  } catch {
    return null;
  }
}

/** sources.list lines for the tree (pure over the host's targets). */
export function sourcesFor(suite: string, mirror: string | undefined, targets: HostTarget[], hostSuite: string | null): string[] {
  if (mirror !== undefined) return [`deb ${mirror} ${suite} main`];
  const seen = new Set<string>();
  const lines: string[] = [];
  const add = (l: string) => {
    if (!seen.has(l)) lines.push(l);
    seen.add(l);
  };
  if (hostSuite !== null && suite === hostSuite) {
    // the suite's own indexes only: a host that also lists sid or backports must not mix them into the tree
    for (const t of targets) if (t.release === suite || t.release.startsWith(`${suite}-`)) add(`deb ${t.uri} ${t.release} ${t.component}`);
  } else {
    // the host's base mirrors (those serving the host's own suite), with the wanted suite
    for (const t of targets) if (t.release === hostSuite && t.component === 'main') add(`deb ${t.uri} ${suite} main`);
  }
  return lines;
}

/** The sources.list lines for SUITE from the host's apt configuration (no MirrorURL). */
export async function hostSources(suite: string): Promise<string[]> {
  return sourcesFor(suite, undefined, await hostTargets(), await hostCodename());
}

function checkName(what: string, v: string, re: RegExp): void {
  if (!re.test(v)) throw new UsageError(`debootstrap: bad ${what} ${JSON.stringify(v)}`);
}

function runTool(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number; tail: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    const tail = new Tail();
    c.stdout.on('data', (b: Buffer) => tail.push(b.toString('utf8'), 1));
    c.stderr.on('data', (b: Buffer) => {
      process.stderr.write(b);
      tail.push(b.toString('utf8'), 2);
    });
    c.on('error', reject);
    c.on('close', (code) => resolve({ status: code ?? 128, tail: tail.text() }));
  });
}

export async function bootstrapDebian(session: BuildSession, rootfs: string, o: DebootstrapOptions): Promise<void> {
  checkName('OSVersion', o.osVersion, /^[a-z][a-z0-9.-]*$/);
  if (o.mirrorURL !== undefined) checkName('MirrorURL', o.mirrorURL, /^(https?|file):\/\/[^\s]+$/);
  for (const p of o.include ?? []) checkName('Include package', p, /^[a-z0-9][a-z0-9+.-]*(:[a-z0-9-]+)?$/);
  if (o.variant !== undefined) checkName('variant', o.variant, /^[a-z]+$/);
  if (o.arch !== undefined) checkName('architecture', o.arch, /^[a-z0-9-]+$/);
  if (session.idmap.mode === 'single') {
    throw new BuildEnvironmentError('HPCC_E_BUILD_NO_SUBIDS', `Bootstrap: debootstrap needs subordinate ids, but ${session.idmap.reason}`, {
      hint: 'Ask the administrator for /etc/subuid and /etc/subgid ranges and the uidmap package, or start from an image (Bootstrap: docker, From: debian:bookworm).',
    });
  }
  const mm = findExecutable('mmdebstrap');
  if (!mm) {
    throw new BuildEnvironmentError('HPCC_E_BUILD_NO_TOOL', 'Bootstrap: debootstrap needs mmdebstrap, which is not installed', {
      hint: 'Install mmdebstrap (Debian/Ubuntu: apt-get install mmdebstrap); debootstrap itself needs real root.',
    });
  }
  const sources = o.mirrorURL !== undefined ? sourcesFor(o.osVersion, o.mirrorURL, [], null) : await hostSources(o.osVersion);
  const tmp = await fs.mkdtemp(path.join(session.workDir, '.debootstrap-'));
  try {
    await fs.chmod(tmp, 0o755); // mmdebstrap's own namespace root (a subordinate id) reads the sources file
    const srcFile = path.join(tmp, 'sources.list');
    await fs.writeFile(srcFile, sources.join('\n') + '\n', { mode: 0o644 });
    const tar = path.join(tmp, 'rootfs.tar');
    const args = ['--mode=unshare', `--variant=${o.variant ?? 'minbase'}`, '--quiet'];
    if (o.include && o.include.length > 0) args.push(`--include=${o.include.join(',')}`);
    if (o.arch !== undefined) args.push(`--architectures=${o.arch}`);
    args.push(o.osVersion, tar);
    if (sources.length > 0) args.push(srcFile);
    process.stderr.write(`debootstrap: mmdebstrap ${o.osVersion}${sources.length > 0 ? ` from ${[...new Set(sources.map((s) => s.split(' ')[1]))].join(', ')}` : ''}\n`);
    const r = await runTool(mm, args, { ...process.env, LANG: 'C' });
    if (r.status !== 0) {
      const badSuite = /does not have a Release file|Release file .* not found|404\s+Not Found|Failed to fetch|unable to locate package|E: /i.test(r.tail);
      throw new BuildEnvironmentError('HPCC_E_BUILD_BOOTSTRAP', `mmdebstrap failed (status ${r.status}) for OSVersion ${o.osVersion}${o.mirrorURL ? ` from ${o.mirrorURL}` : ''}:\n${r.tail.split('\n').slice(-12).join('\n')}`, {
        hint: badSuite
          ? 'Check OSVersion (a suite or codename the mirror serves), MirrorURL and Include.'
          : 'Check /etc/subuid and /etc/subgid, and that mmdebstrap --mode=unshare works for you.',
      });
    }
    const x = await session.exec(['tar', '-C', rootfs, '--numeric-owner', '--same-owner', '--same-permissions', '-xf', tar, '--exclude=./dev/*'], { stdio: 'capture' });
    if (x.status !== 0) {
      throw new BuildEnvironmentError('HPCC_E_BUILD_BOOTSTRAP', `unpacking the debootstrap tree failed (status ${x.status}): ${x.tail}`, {
        hint: 'Check the free space of the build directory (HPCC_TMPDIR or TMPDIR).',
      });
    }
  } finally {
    await session.remove(tmp).catch(() => fs.rm(tmp, { recursive: true, force: true }));
  }
}
