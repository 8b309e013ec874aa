/**
 * native/Makefile's output list (`make outputs`: OUTPUTS, then OPTIONAL_OUTPUTS) is what
 * scripts/release.mjs copies from dist/native, by name. It must be exactly what `make all`
 * builds: built into an empty OUT, the directory holds every listed required output, the
 * optional ones at most, and nothing else (a new program the list misses would be left out of
 * the release; a listed one that is no longer built would fail it).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { makeTempDir, REPO_ROOT, removeTree, requireTools } from '../../helpers/env.js';

const NATIVE = path.join(REPO_ROOT, 'native');

function outputs(out?: string): { required: string[]; optional: string[] } {
  const r = spawnSync('make', ['-s', '--no-print-directory', '-C', NATIVE, ...(out ? [`OUT=${out}`] : []), 'outputs'], { encoding: 'utf8' });
  expect(r.status, r.stderr).to.equal(0);
  const [required = [], optional = []] = r.stdout.split('\n').map((l) => l.split(/\s+/).filter(Boolean));
  return { required, optional };
}

describe('native/Makefile outputs (what the release copies from dist/native)', function () {
  this.timeout(180_000);
  let out = '';
  before(function () {
    requireTools(this, 'make', 'cc');
    if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'gen', 'hpcc-contract.h'))) this.skip(); // tsc and the header first (npm run build)
    out = makeTempDir('hpcc-native-out-');
  });
  after(() => out && removeTree(out));

  it('lists the front, the helper and the addons', () => {
    const { required, optional } = outputs();
    expect(required).to.include.members(['hpcc', 'hpcc-launch', 'xattr.node']);
    expect(optional).to.deep.equal(['deflate.node']);
  });

  it('is exactly what `make all` builds into an empty directory', () => {
    const r = spawnSync('make', ['-s', '--no-print-directory', '-C', NATIVE, `OUT=${out}`, 'all'], { encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    const built = fs.readdirSync(out).sort();
    const { required, optional } = outputs(out);
    expect(built, 'every required output is built').to.include.members(required);
    expect(built.filter((f) => !required.includes(f) && !optional.includes(f)), 'built but not listed').to.deep.equal([]);
  });
});
