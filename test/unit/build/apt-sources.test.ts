/**
 * One rule for the apt sources of a Debian tree made with mmdebstrap: hpcc's
 * debootstrap agent (src/build/debootstrap.ts, sourcesFor/hostSources) and the
 * scripts that make root filesystems for the tests and benches
 * (bench/lib/make-rootfs.sh, bench/build.sh, test/tools/release-rootfs.sh), which
 * take their lines from scripts/apt-sources.mjs. Fails when a script derives
 * them on its own again, or when the script's output leaves hpcc's.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { hostSources, sourcesFor } from '../../../src/build/debootstrap.js';
import { REPO_ROOT, findTool } from '../../helpers/env.js';

const SCRIPT = path.join(REPO_ROOT, 'scripts', 'apt-sources.mjs');
const USERS = ['bench/lib/make-rootfs.sh', 'bench/build.sh', 'test/tools/release-rootfs.sh'];

function filesUnder(dir: string): string[] {
  return fs.readdirSync(path.join(REPO_ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.(sh|mjs|ts)$/.test(e.name))
    .map((e) => path.relative(REPO_ROOT, path.join(e.parentPath, e.name)));
}

describe('build/debootstrap apt sources: one rule for hpcc and the rootfs scripts', function () {
  this.timeout(30_000);
  it('the host suite takes only its own indexes (SUITE, SUITE-*), in apt order, without duplicates or non-http sources', () => {
    const targets = [
      { uri: 'http://m/debian/', release: 'bookworm', component: 'main' },
      { uri: 'http://m/debian/', release: 'sid', component: 'main' },
      { uri: 'http://m/debian/', release: 'bookworm-updates', component: 'main' },
      { uri: 'https://vendor.example/apt/', release: 'stable', component: 'main' },
      { uri: 'http://m/debian/', release: 'bookworm', component: 'main' },
      { uri: 'http://m/debian-security/', release: 'bookworm-security', component: 'main' },
      { uri: 'http://m/debian/', release: 'bookwormish', component: 'main' },
    ];
    expect(sourcesFor('bookworm', undefined, targets, 'bookworm')).to.deep.equal([
      'deb http://m/debian/ bookworm main',
      'deb http://m/debian/ bookworm-updates main',
      'deb http://m/debian-security/ bookworm-security main',
    ]);
    expect(sourcesFor('trixie', undefined, targets, 'bookworm')).to.deep.equal(['deb http://m/debian/ trixie main']);
  });

  it('scripts/apt-sources.mjs prints hostSources(SUITE), one line each; a bad suite is a usage error', async function () {
    if (findTool('apt-get') === null) this.skip(); // hostSources reads apt's own configuration
    for (const suite of ['bookworm', 'trixie']) {
      const r = spawnSync(process.execPath, [SCRIPT, suite], { encoding: 'utf8' });
      expect(r.status, r.stderr).to.equal(0);
      const want = await hostSources(suite);
      expect(r.stdout).to.equal(want.map((l) => `${l}\n`).join(''));
    }
    for (const args of [[], ['Bad Suite'], ['a', 'b']]) expect(spawnSync(process.execPath, [SCRIPT, ...args]).status).to.equal(2);
  });

  it('the rootfs scripts use it, and nothing else reads apt-get indextargets', () => {
    for (const f of USERS) expect(fs.readFileSync(path.join(REPO_ROOT, f), 'utf8'), f).to.match(/node "\$REPO\/scripts\/apt-sources\.mjs" "\$SUITE" >/);
    const readers = ['bench', 'test', 'scripts', 'src']
      .flatMap(filesUnder)
      .filter((f) => f !== 'test/unit/build/apt-sources.test.ts')
      .filter((f) => /apt-get['"]?,?\s*\[?\s*['"]?indextargets|apt-get indextargets/.test(fs.readFileSync(path.join(REPO_ROOT, f), 'utf8')));
    expect(readers).to.deep.equal(['src/build/debootstrap.ts']);
  });
});
