/**
 * openSifRootfs (src/core/image.ts) opens the SIF once: the SIF reader and
 * the squashfs reader share one descriptor, close() closes it, and a file
 * that is not a SIF (or a directory) leaves no descriptor behind.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openSifRootfs } from '../../src/core/image.js';
import { HpccError } from '../../src/errors/index.js';
import { SifDataType } from '../../src/formats/sif/index.js';
import { makeTempDir, removeTree, runHpcc } from '../helpers/env.js';

const openFds = (): number => fs.readdirSync('/proc/self/fd').length;

describe('launch: the image is opened once', function () {
  this.timeout(60_000);
  let tmp: string;
  let sif: string;

  before(() => {
    tmp = makeTempDir('hpcc-image-open-');
    const tree = path.join(tmp, 'tree');
    fs.mkdirSync(path.join(tree, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(tree, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    sif = path.join(tmp, 'img.sif');
    const r = runHpcc(['build', sif, tree]);
    expect(r.status, r.stderr).to.equal(0);
  });
  after(() => {
    if (tmp) removeTree(tmp);
  });

  it('one descriptor for both readers, closed by close()', async () => {
    const before = openFds();
    const img = await openSifRootfs(sif);
    try {
      expect(openFds() - before).to.equal(1);
      expect((await img.rootfs.readFile('/etc/passwd')).toString()).to.equal('root:x:0:0:root:/root:/bin/sh\n');
      const meta = img.sif.objectsByType(SifDataType.GenericJSON)[0];
      if (meta) expect((await img.sif.readObject(meta)).length).to.equal(meta.size);
      expect(img.partitionOffset).to.equal(img.sif.primaryPartition().offset);
    } finally {
      await img.close();
    }
    expect(openFds()).to.equal(before);
    await img.close(); // twice is harmless
    expect(openFds()).to.equal(before);
  });

  it('not a SIF, a directory, a missing file: typed errors, no descriptor left open', async () => {
    const junk = path.join(tmp, 'junk.sif');
    fs.writeFileSync(junk, Buffer.alloc(4096, 7));
    const before = openFds();
    for (const [p, code] of [
      [junk, 'HPCC_E_SIF_BAD_MAGIC'],
      [tmp, 'HPCC_E_SIF_NOT_A_FILE'],
      [path.join(tmp, 'missing.sif'), 'HPCC_E_IO_ENOENT'],
    ] as const) {
      const e = await openSifRootfs(p).then(
        () => null,
        (x: unknown) => x,
      );
      expect(e, p).to.be.instanceOf(HpccError);
      expect((e as HpccError).code, p).to.equal(code);
      expect(openFds(), p).to.equal(before);
    }
  });
});
