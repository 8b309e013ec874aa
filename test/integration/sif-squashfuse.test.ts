/**
 * The squashfs partition of a SIF hpcc writes mounts with squashfuse_ll and
 * squashfuse at its offset, as the unprivileged test user inside `unshare -rm`
 * (how Apptainer and hpcc's launcher mount it), and files read back intact.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SifReader } from '../../src/formats/sif/index.js';
import { IS_ROOT, makeTempDir, removeTree, requireTestUser, requireTools, runUnprivileged, testUserIds } from '../helpers/env.js';
import { writeSquashSif } from './sif-helpers.js';

describe('integration: SIF partition mounts with squashfuse as an unprivileged user', function () {
  this.timeout(60_000);
  let dir: string;

  beforeEach(function () {
    requireTools(this, 'mksquashfs', 'unshare', 'squashfuse_ll', 'squashfuse');
    requireTestUser(this);
    dir = makeTempDir('hpcc-sifmnt-');
    if (IS_ROOT) {
      const { uid, gid } = testUserIds();
      fs.chownSync(dir, uid, gid);
    }
  });
  afterEach(() => {
    if (dir) removeTree(dir);
  });

  for (const tool of ['squashfuse_ll', 'squashfuse']) {
    it(`${tool} -o offset=N`, async () => {
      const { sif, tree } = await writeSquashSif(dir);
      const r = await SifReader.open(sif);
      const offset = r.primaryPartition().offset;
      await r.close();
      expect(offset % 4096).to.equal(0);
      // The mount lives in a private mount namespace; the trap unmounts it so the FUSE daemon exits.
      const script = [
        'set -e',
        'cd "$1"',
        'mkdir -p mnt',
        `${tool} -o offset=$2 img.sif mnt`,
        "trap 'umount mnt 2>/dev/null || fusermount3 -u mnt' EXIT",
        'cat mnt/etc/hello.txt',
        'sha256sum < mnt/big.bin',
        'ls mnt',
      ].join('\n');
      const res = runUnprivileged('unshare', ['-rm', 'sh', '-c', script, 'sh', dir, String(offset)], { timeout: 30_000 });
      expect(res.status, String(res.stderr)).to.equal(0);
      const want = createHash('sha256').update(fs.readFileSync(path.join(tree, 'big.bin'))).digest('hex');
      const lines = String(res.stdout).split('\n');
      expect(lines[0]).to.equal('hello from hpcc');
      expect(lines[1]).to.match(new RegExp(`^${want}\\b`));
      expect(lines.slice(2).filter(Boolean).sort()).to.deep.equal(['big.bin', 'etc']);
    });
  }

  it('a wrong offset does not mount (the check can fail)', async () => {
    const { sif } = await writeSquashSif(dir);
    const res = runUnprivileged('unshare', ['-rm', 'sh', '-c', 'cd "$1" && mkdir -p mnt && squashfuse_ll -o offset=4096 img.sif mnt', 'sh', dir], { timeout: 30_000 });
    expect(res.status).to.not.equal(0);
    expect(fs.existsSync(sif)).to.equal(true);
  });
});
