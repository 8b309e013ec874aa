/**
 * The comparison helper behind the writer's real-tool proof must itself
 * notice every kind of difference it claims to check.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeTempDir, removeTree } from '../../helpers/env.js';
import { compareTrees } from '../../helpers/tree-compare.js';

function build(root: string): void {
  fs.mkdirSync(path.join(root, 'd/e'), { recursive: true });
  fs.writeFileSync(path.join(root, 'd/f'), 'content');
  fs.linkSync(path.join(root, 'd/f'), path.join(root, 'd/e/g'));
  fs.writeFileSync(path.join(root, 'h'), 'other');
  fs.symlinkSync('d/f', path.join(root, 'l'));
  spawnSync('setfattr', ['-n', 'user.x', '-v', '1', path.join(root, 'h')]);
  for (const p of ['d/f', 'h', 'd/e', 'd', '']) fs.utimesSync(path.join(root, p), 1000, 1000);
  fs.lutimesSync(path.join(root, 'l'), 1000, 1000);
}

describe('test helper: compareTrees', function () {
  this.timeout(30_000);
  let a: string;
  let b: string;
  beforeEach(() => {
    a = makeTempDir('hpcc-cmp-a-');
    b = makeTempDir('hpcc-cmp-b-');
    build(a);
    build(b);
  });
  afterEach(() => {
    removeTree(a);
    removeTree(b);
  });

  const all = { owners: true, mtimes: true, xattrs: true };

  it('finds no difference between identical trees', async () => {
    expect(await compareTrees(a, b, all)).to.deep.equal([]);
  });

  const cases: Array<[string, (root: string) => void, RegExp]> = [
    ['content', (r) => fs.writeFileSync(path.join(r, 'h'), 'OTHER'), /^h: content/],
    ['size', (r) => fs.writeFileSync(path.join(r, 'h'), 'longer'), /^h: size/],
    ['mode', (r) => fs.chmodSync(path.join(r, 'h'), 0o4644), /^h: mode 644 vs 4644/],
    ['mtime', (r) => fs.utimesSync(path.join(r, 'h'), 1000, 2000), /^h: mtime 1000 vs 2000/],
    ['symlink target', (r) => (fs.unlinkSync(path.join(r, 'l')), fs.symlinkSync('h', path.join(r, 'l'))), /^l: symlink target/],
    ['missing entry', (r) => fs.unlinkSync(path.join(r, 'h')), /^h: only in/],
    ['type', (r) => (fs.unlinkSync(path.join(r, 'h')), fs.mkdirSync(path.join(r, 'h'))), /^h: type file vs dir/],
    ['xattr', (r) => spawnSync('setfattr', ['-n', 'user.x', '-v', '2', path.join(r, 'h')]), /^h: xattrs/],
    [
      'hard-link group',
      (r) => {
        fs.unlinkSync(path.join(r, 'd/e/g'));
        fs.writeFileSync(path.join(r, 'd/e/g'), 'content');
      },
      /hard links|nlink/,
    ],
  ];
  for (const [what, mutate, want] of cases) {
    it(`reports a ${what} difference`, async () => {
      mutate(b);
      const diffs = await compareTrees(a, b, all);
      expect(diffs.some((d) => want.test(d)), diffs.join('\n')).to.equal(true);
    });
  }

  it('leaves out ignored paths and owners/mtimes when not asked', async () => {
    fs.utimesSync(path.join(b, 'h'), 1000, 2000);
    fs.writeFileSync(path.join(b, 'd/e/new'), '');
    expect(await compareTrees(a, b, { ignore: ['d/e'], mtimes: false, hardLinks: false, nlink: false })).to.deep.equal([]);
  });
});
