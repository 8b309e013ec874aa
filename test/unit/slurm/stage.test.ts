/**
 * Staging on a node (src/slurm/stage.ts), without Slurm: a verified copy
 * under its final name, the same request again is a no-op, a different file is
 * refused with nothing left behind, a stage directory open to others is
 * refused, a FIFO in the image's place fails at once instead of hanging.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeTempDir, removeTree } from '../../helpers/env.js';
import { stage, unstage } from '../../../src/slurm/stage.js';

const codeOf = async (p: Promise<unknown>): Promise<string> => p.then(() => 'no error', (e: { code?: string }) => e.code ?? String(e));

describe('slurm wrappers: staging a pinned image on a node', () => {
  let dir: string;
  let src: string;
  let sha: string;
  beforeEach(() => {
    dir = makeTempDir('hpcc-stage-unit-');
    src = path.join(dir, 'img.sif');
    fs.writeFileSync(src, Buffer.alloc(3 << 20, 7));
    sha = createHash('sha256').update(fs.readFileSync(src)).digest('hex');
  });
  afterEach(() => removeTree(dir));

  it('copies, verifies and renames into place once; unstage removes the job directory', async () => {
    const base = path.join(dir, 'local', 'hpcc-stage-x');
    fs.mkdirSync(path.dirname(base));
    const req = { base, job: '17', src, sha256: sha, size: 3 << 20 };
    const [a, b] = await Promise.all([stage(req), stage(req)]);
    expect(a).to.equal(path.join(base, '17', `${sha}.sif`)).and.equal(b);
    expect(fs.readdirSync(path.join(base, '17'))).to.deep.equal([`${sha}.sif`]);
    expect(fs.statSync(base).mode & 0o777).to.equal(0o700);
    expect(await stage(req)).to.equal(a);
    expect(unstage(base, '17')).to.equal(true);
    expect(fs.readdirSync(base)).to.deep.equal([]);
  });

  it('a file that is not the pinned one: HPCC_E_SLURM_IMAGE_CHANGED, no copy left', async () => {
    const base = path.join(dir, 'hpcc-stage-x');
    expect(await codeOf(stage({ base, job: '1', src, sha256: 'f'.repeat(64), size: 3 << 20 }))).to.equal('HPCC_E_SLURM_IMAGE_CHANGED');
    expect(await codeOf(stage({ base, job: '1', src, sha256: sha, size: 5 }))).to.equal('HPCC_E_SLURM_IMAGE_CHANGED');
    expect(fs.readdirSync(path.join(base, '1'))).to.deep.equal([]);
  });

  it('a stage directory open to others is refused', async () => {
    const base = path.join(dir, 'hpcc-stage-x');
    fs.mkdirSync(base, { mode: 0o777 });
    fs.chmodSync(base, 0o777);
    expect(await codeOf(stage({ base, job: '1', src, sha256: sha, size: 3 << 20 }))).to.equal('HPCC_E_SLURM_STAGE_DIR');
  });

  it('a FIFO in the image\'s place fails at once', async function () {
    this.timeout(10_000);
    const fifo = path.join(dir, 'fifo.sif');
    expect(spawnSync('mkfifo', [fifo]).status).to.equal(0);
    expect(await codeOf(stage({ base: path.join(dir, 'hpcc-stage-x'), job: '1', src: fifo, sha256: sha, size: 3 << 20 }))).to.equal('HPCC_E_SLURM_STAGE');
  });
});
