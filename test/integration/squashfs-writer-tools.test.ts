/**
 * Proof of hpcc's squashfs writer with real tools (issue 2, "Proof with real
 * tools"; squashfs-format.md §9.3). The corpus tree (test/fixtures/corpus.ts)
 * goes through addDirectoryTree into SquashfsWriter, and each image must be:
 *   - accepted by `unsquashfs -stat`, with an `unsquashfs -lls` listing equal
 *     to that of mksquashfs's image of the same tree;
 *   - equal to mksquashfs's image for `sqfsdiff` (contents, owners, modes, mtimes);
 *   - extracted by `unsquashfs -d` into a tree equal to the corpus;
 *   - mounted by the kernel (root) with every entry, owner, mode, mtime,
 *     xattr (also via getfattr) and hard-link group as on disk;
 *   - mounted by squashfuse and squashfuse_ll as the unprivileged user.
 * HPCC_TEST_LARGE=1 adds a sparse file over 4 GiB to the corpus.
 */
import { expect } from 'chai';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { addDirectoryTree } from '../../src/formats/squashfs/from-dir.js';
import { SquashfsWriter, type SquashfsWriterOptions } from '../../src/formats/squashfs/index.js';
import { xattrAddon } from '../../src/util/xattr.js';
import { makeCorpus, removeCorpus, type CorpusInfo } from '../fixtures/corpus.js';
import { IN_CI, IS_ROOT, makeTempDir, requireRoot, requireTestUser, requireTools, runUnprivileged, testUserIds } from '../helpers/env.js';
import { compareTrees, compareTreesAsUser } from '../helpers/tree-compare.js';

type Variant = {
  name: string;
  writer: Partial<SquashfsWriterOptions>;
  /** mksquashfs options giving the same layout choices (for listings). */
  mksquashfs: string[];
  /** Run the slower checks (extraction, FUSE mounts) on this variant. */
  full: boolean;
};

const VARIANTS: Variant[] = [
  { name: 'gzip, 128 KiB blocks (defaults, deterministic)', writer: { deterministic: true, mkfsTime: 1_700_000_000 }, mksquashfs: [], full: true },
  { name: 'gzip, 4 KiB blocks', writer: { blockSize: 4096 }, mksquashfs: ['-b', '4096'], full: false },
  { name: 'no fragments, no dedupe', writer: { fragments: false, dedupe: false }, mksquashfs: ['-no-fragments', '-no-duplicates'], full: false },
];

const LARGE = process.env.HPCC_TEST_LARGE === '1';

function sh(cmd: string, args: string[], opts: { cwd?: string; timeout?: number } = {}): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, timeout: opts.timeout ?? (LARGE ? 1_200_000 : 120_000), ...(opts.cwd ? { cwd: opts.cwd } : {}) });
}

function ok(r: SpawnSyncReturns<string>, what: string): string {
  expect(r.status, `${what} failed (${r.status ?? r.signal}): ${r.stderr}${r.error ?? ''}`).to.equal(0);
  return r.stdout;
}

/** Is `dir` (an absolute path without symlinks) a mount point? No stat: root cannot enter a user's FUSE mount. */
function isMounted(dir: string): boolean {
  const real = path.resolve(dir);
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === real);
}

/** The listing without the run-dependent first token of the root line's path. */
function listing(img: string): string[] {
  return ok(sh('unsquashfs', ['-lln', '-no-progress', img]), `unsquashfs -lln ${img}`)
    .split('\n')
    .filter((l) => /^[-dlcbps][-rwxsStT]{9} /.test(l));
}

/** attr's `getfattr -R -d` of a tree: path → its sorted "name=0xvalue" lines (directory order differs by filesystem). */
function getfattrDump(dir: string): Map<string, string> {
  const out = ok(sh('getfattr', ['-h', '-R', '-d', '-m', '-', '-e', 'hex', '.'], { cwd: dir }), 'getfattr');
  const m = new Map<string, string>();
  for (const block of out.split('\n\n')) {
    const lines = block.split('\n').filter((l) => l !== '');
    if (lines.length === 0) continue;
    expect(lines[0]).to.match(/^# file: /);
    m.set(lines[0]!.slice('# file: '.length), lines.slice(1).sort().join('\n'));
  }
  return m;
}

/** Lines `diff -r` prints for entries it cannot compare (checked by compareTrees instead). */
const SPECIAL_DIFF = /^File .* is a (fifo|socket|character special file|block special file) while file .* is a (fifo|socket|character special file|block special file)$/;

describe('squashfs writer proven with real tools (corpus)', function () {
  this.timeout(LARGE ? 1_800_000 : 300_000);
  let work: string;
  let corpus: string;
  let info: CorpusInfo;
  const mountpoints: string[] = [];
  const images: string[] = [];

  before(async function () {
    requireTools(this, 'mksquashfs', 'unsquashfs', 'sqfsdiff', 'setfattr', 'getfattr', 'mkfifo');
    try {
      xattrAddon();
    } catch (e) {
      if (IN_CI) throw e;
      this.skip();
    }
    work = makeTempDir('hpcc-sqfs-tools-');
    corpus = path.join(work, 'corpus');
    info = await makeCorpus(corpus, { large: LARGE });
    if (info.skipped.length > 0) console.log(`      corpus: ${info.entries} entries; skipped: ${info.skipped.join('; ')}`);
  });

  after(function () {
    this.timeout(60_000);
    for (const m of mountpoints) {
      try {
        if (!isMounted(m)) continue;
      } catch {
        continue;
      }
      if (sh('umount', [m]).status !== 0) sh('umount', ['-l', m]);
    }
    if (IS_ROOT) {
      for (const img of images) {
        const loops = sh('losetup', ['-j', img]).stdout ?? '';
        for (const line of loops.split('\n')) {
          const dev = line.split(':')[0];
          if (dev) sh('losetup', ['-d', dev]);
        }
      }
    }
    if (work) removeCorpus(work); // also clears read-only directories as non-root
  });

  async function writeImage(file: string, opts: Partial<SquashfsWriterOptions>): Promise<void> {
    const handle = await fsp.open(file, 'w+');
    const warnings: string[] = [];
    try {
      const writer = new SquashfsWriter({ handle, compressor: 'gzip', ...opts, onWarning: (_c, m) => warnings.push(m) });
      try {
        const r = await addDirectoryTree(writer, corpus, { blockSize: opts.blockSize ?? 131072, onWarning: (m) => warnings.push(m) });
        expect(r.entries).to.equal(info.entries);
        const fin = await writer.finish();
        expect(fin.size % 4096).to.equal(0);
        expect((await handle.stat()).size).to.equal(fin.size);
      } catch (e) {
        await writer.abort().catch(() => undefined);
        throw e;
      }
    } finally {
      await handle.close();
    }
    expect(warnings, 'no warnings for the corpus').to.deep.equal([]);
    fs.chmodSync(file, 0o644);
  }

  function mountpoint(name: string, owner?: { uid: number; gid: number }): string {
    const m = path.join(work, name);
    fs.mkdirSync(m);
    if (owner && IS_ROOT) fs.chownSync(m, owner.uid, owner.gid);
    mountpoints.push(m);
    return m;
  }

  for (const [vi, v] of VARIANTS.entries()) {
    describe(v.name, function () {
      let img: string;
      let ref: string;

      before(async function () {
        if (!work) this.skip();
        img = path.join(work, `hpcc-${vi}.sqfs`);
        ref = path.join(work, `mksquashfs-${vi}.sqfs`);
        images.push(img, ref);
        await writeImage(img, v.writer);
        ok(sh('mksquashfs', [corpus, ref, '-noappend', '-comp', 'gzip', '-no-progress', '-quiet', ...v.mksquashfs]), 'mksquashfs');
      });

      it('is accepted by unsquashfs -stat', function () {
        const out = ok(sh('unsquashfs', ['-stat', img]), 'unsquashfs -stat');
        expect(out).to.match(/Found a valid SQUASHFS 4:0 superblock/);
        expect(out).to.match(new RegExp(`Block size ${v.writer.blockSize ?? 131072}\\b`));
        expect(out).to.match(/Compression gzip/);
        if (v.writer.fragments === false) expect(out).to.match(/Number of fragments 0\b/);
        else expect(out).to.match(/Number of fragments [1-9]/);
        expect(out).to.contain(v.writer.dedupe === false ? 'Duplicates are not removed' : 'Duplicates are removed');
        const inodes = /Number of inodes (\d+)/.exec(out);
        const groups = info.hardLinkGroups.reduce((n, g) => n + g.length - 1, 0);
        expect(Number(inodes?.[1])).to.equal(info.entries - groups);
      });

      it('lists exactly like mksquashfs (unsquashfs -lln)', function () {
        const ours = listing(img);
        const theirs = listing(ref);
        expect(ours.length).to.equal(info.entries);
        const missing = theirs.filter((l) => !ours.includes(l));
        const extra = ours.filter((l) => !theirs.includes(l));
        expect({ missing: missing.slice(0, 20), extra: extra.slice(0, 20) }).to.deep.equal({ missing: [], extra: [] });
        expect(ours).to.deep.equal(theirs); // and in the same order
      });

      it('has the same contents, owners, modes and mtimes as mksquashfs image (sqfsdiff -T)', function () {
        const r = sh('sqfsdiff', ['-T', '-a', ref, '-b', img]);
        // sqfsdiff also flags basic-vs-extended inode choices; mksquashfs marks a file
        // sparse only when it is sparse on disk (st_blocks), which a stream cannot know.
        const real = r.stdout.split('\n').filter((l) => l !== '' && !/ has an extended type$/.test(l));
        expect(real, r.stdout + r.stderr).to.deep.equal([]);
        expect(r.status === 0 || (r.status === 1 && real.length === 0), `sqfsdiff exit ${r.status}: ${r.stderr}`).to.equal(true);
      });

      it(`stores identical files ${v.writer.dedupe === false ? 'separately' : 'once'} (rdsquashfs -s)`, function () {
        requireTools(this, 'rdsquashfs');
        const where = (p: string) => {
          const out = ok(sh('rdsquashfs', ['-s', p, img]), `rdsquashfs -s ${p}`);
          const f = (k: string) => new RegExp(`^${k}: (.*)$`, 'm').exec(out)?.[1];
          return `${f('Blocks start')} ${f('Fragment index')} ${f('Fragment offset')}`;
        };
        for (const [group, trap] of [
          [['/dupes/big-a', '/dupes/sub/big-b', '/dupes/sub/deeper/big-c'], '/dupes/big-same-size-differs'],
          [['/dupes/small-a', '/dupes/sub/small-b', '/dupes/sub/deeper/small-c'], '/dupes/small-same-size-differs'],
        ] as const) {
          const locs = group.map(where);
          if (v.writer.dedupe === false) expect(new Set(locs).size, locs.join('; ')).to.equal(locs.length);
          else expect(new Set(locs).size, locs.join('; ')).to.equal(1);
          expect(locs).to.not.include(where(trap));
        }
      });

      it('mounts with the kernel: every entry, owner, mode, mtime, xattr and hard link as on disk', function () {
        requireRoot(this);
        const mnt = mountpoint(`kmnt-${vi}`);
        ok(sh('mount', ['-t', 'squashfs', '-o', 'loop,ro', img, mnt]), 'mount -t squashfs');
        return (async () => {
          try {
            const diffs = await compareTrees(mnt, corpus, { owners: true, mtimes: true, xattrs: true });
            expect(diffs, diffs.join('\n')).to.deep.equal([]);
            // Independent xattr view through attr's getfattr.
            const ours = getfattrDump(mnt);
            expect(ours.get('xattrs/large-1')).to.match(/^user\.large=0x/m);
            if (info.asRoot) expect(ours.get('xattrs/cap-raw')).to.match(/^security\.capability=0x/m);
            expect(ours.size).to.be.at.least(info.xattrPaths.length);
            expect(ours).to.deep.equal(getfattrDump(corpus));
          } finally {
            if (sh('umount', [mnt]).status !== 0) sh('umount', ['-l', mnt]);
          }
        })();
      });

      if (!v.full) return;

      it('is byte-identical when written again in deterministic mode', async function () {
        const again = path.join(work, `hpcc-${vi}-again.sqfs`);
        images.push(again);
        await writeImage(again, v.writer);
        const [x, y] = [fs.readFileSync(img), fs.readFileSync(again)];
        expect(x.length).to.equal(y.length);
        expect(x.equals(y), 'images differ').to.equal(true);
        fs.rmSync(again);
      });

      it('extracts with unsquashfs -d into a tree equal to the corpus', async function () {
        const out = path.join(work, `extract-${vi}`);
        ok(sh('unsquashfs', ['-no-progress', '-d', out, img], { timeout: LARGE ? 1_200_000 : 180_000 }), 'unsquashfs -d');
        try {
          const d = sh('diff', ['-r', '--no-dereference', out, corpus]);
          const unexpected = d.stdout.split('\n').filter((l) => l !== '' && !SPECIAL_DIFF.test(l));
          expect(unexpected.slice(0, 30), d.stderr).to.deep.equal([]);
          // unsquashfs restores owners, xattrs and setuid/setgid bits only as root; hard links always.
          const diffs = await compareTrees(out, corpus, { owners: IS_ROOT, mtimes: true, xattrs: IS_ROOT, modeMask: IS_ROOT ? 0o7777 : 0o1777 });
          expect(diffs, diffs.join('\n')).to.deep.equal([]);
        } finally {
          removeCorpus(out);
        }
      });

      for (const tool of ['squashfuse', 'squashfuse_ll']) {
        it(`mounts with ${tool} as the unprivileged user: same tree, modes, owners, mtimes; xattrs as for mksquashfs's image`, function () {
          requireTools(this, tool, 'fusermount3');
          requireTestUser(this);
          const mnt = mountpoint(`${tool}-${vi}`, testUserIds());
          const refMnt = mountpoint(`${tool}-ref-${vi}`, testUserIds());
          const unmount = (m: string) => {
            const u = runUnprivileged('fusermount3', ['-u', m]);
            if (u.status !== 0 && isMounted(m)) sh('umount', ['-l', m]);
          };
          ok(runUnprivileged(tool, [img, mnt], { timeout: 60_000 }) as SpawnSyncReturns<string>, `${tool} as test user`);
          try {
            ok(runUnprivileged(tool, [ref, refMnt], { timeout: 60_000 }) as SpawnSyncReturns<string>, `${tool} (reference image)`);
            expect(isMounted(mnt)).to.equal(true);
            // Only the mounting user can enter a FUSE mount, so compare as that user.
            // High-level squashfuse invents inode numbers (no hard-link groups), and
            // squashfuse 0.1.105 swaps the trusted/security prefixes and hides empty
            // values — so xattrs are checked against mksquashfs's image seen the same way.
            const diffs = compareTreesAsUser(mnt, corpus, { owners: true, mtimes: true, hardLinks: tool === 'squashfuse_ll', timeoutMs: LARGE ? 1_200_000 : 170_000 });
            expect(diffs, diffs.join('\n')).to.deep.equal([]);
            const vsRef = compareTreesAsUser(mnt, refMnt, { owners: true, mtimes: true, xattrs: true, hardLinks: false, contents: false, timeoutMs: LARGE ? 1_200_000 : 170_000 });
            expect(vsRef, vsRef.join('\n')).to.deep.equal([]);
          } finally {
            unmount(mnt);
            unmount(refMnt);
          }
          expect(isMounted(mnt)).to.equal(false);
          expect(isMounted(refMnt)).to.equal(false);
        });
      }
    });
  }
});
