/**
 * Hostile sparse entries: a few hundred bytes of layer that claim a huge real
 * size, or a map that is out of order, overlapping, past the real size or
 * not plain decimal. Each must be refused before the reader hands out a
 * single byte of the file (HPCC_E_OCI_SPARSE_LIMIT, HPCC_E_OCI_TAR), in all
 * four of GNU tar's sparse formats. The harness stops reading after 64 MiB,
 * so a reader that streams the zeros fails here instead of running for hours.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { HpccError, UsageError } from '../../../src/errors/index.js';
import { SPARSE_LIMIT_DEFAULT, newSparseBudget, parseSparseLimit, type SparseBudget } from '../../../src/oci/flatten/sparse.js';
import { readTar } from '../../../src/oci/flatten/tar-reader.js';
import { SPARSE_FORMATS, sparseTar, type SparseSpec } from '../../helpers/sparse-tars.js';

const CAP = 64 << 20;
const PiB = 1024 ** 5;

async function* once(b: Buffer) {
  yield b;
}

interface Outcome {
  code: string;
  /** bytes of file bodies handed out before the end or the error */
  handed: number;
  files: Array<{ path: string; size: number; sha: string }>;
}

async function read(tar: Buffer, budget?: SparseBudget): Promise<Outcome> {
  const out: Outcome = { code: 'no error', handed: 0, files: [] };
  try {
    for await (const { entry, body } of readTar(once(tar), budget ? { sparseBudget: budget } : {})) {
      const h = createHash('sha256');
      for await (const c of body) {
        out.handed += c.length;
        if (out.handed > CAP) throw new Error(`the reader expanded ${tar.length} bytes of tar past ${CAP} bytes`);
        h.update(c);
      }
      out.files.push({ path: entry.path, size: entry.size, sha: h.digest('hex') });
    }
  } catch (e) {
    if (!(e instanceof HpccError)) throw e;
    out.code = e.code;
  }
  return out;
}

function expected(s: SparseSpec): string {
  const b = Buffer.alloc(s.realSize);
  for (const [o, l] of s.map) b.fill('x', Number(o), Number(o) + Number(l));
  return createHash('sha256').update(b).digest('hex');
}

describe('oci/flatten sparse entries: limits and map checks', function () {
  this.timeout(20_000);

  for (const format of SPARSE_FORMATS) {
    describe(format, () => {
      it('a tiny entry claiming 1 PiB is refused with HPCC_E_OCI_SPARSE_LIMIT before any zero is streamed', async () => {
        const tar = sparseTar(format, [{ name: 'huge', realSize: PiB, map: [[PiB - 1, 1]] }]);
        expect(tar.length).to.be.below(4096);
        const t0 = Date.now();
        const r = await read(tar);
        expect(r.code).to.equal('HPCC_E_OCI_SPARSE_LIMIT');
        expect(r.handed).to.equal(0);
        expect(Date.now() - t0).to.be.below(2000);
      });

      it('holes are charged to one budget across entries and layers', async () => {
        const a: SparseSpec = { name: 'a', realSize: 2 << 20, map: [[4096, 10], [(2 << 20) - 5, 5]] };
        const budget: SparseBudget = { limit: 3 << 20, used: 0 };
        const first = await read(sparseTar(format, [a]), budget);
        expect(first.code).to.equal('no error');
        expect(first.files).to.deep.equal([{ path: 'a', size: 2 << 20, sha: expected(a) }]);
        expect(budget.used).to.equal((2 << 20) - 15);
        const second = await read(sparseTar(format, [{ ...a, name: 'b' }]), budget);
        expect(second.code).to.equal('HPCC_E_OCI_SPARSE_LIMIT');
        expect(second.handed).to.equal(0);
        // a file without holes costs nothing
        const full = await read(sparseTar(format, [{ name: 'c', realSize: 100, map: [[0, 100]] }]), budget);
        expect(full.code).to.equal('no error');
      });

      const bad: Array<[string, SparseSpec]> = [
        ['segments out of order', { name: 'f', realSize: 10000, map: [[5000, 10], [0, 10]] }],
        ['overlapping segments', { name: 'f', realSize: 10000, map: [[0, 600], [100, 10]] }],
        ['a segment past the real size', { name: 'f', realSize: 10000, map: [[0, 600], [9999, 2]] }],
        ['a segment past the real size, far', { name: 'f', realSize: 1000, map: [[0, 600], [2 ** 52, 2]] }],
      ];
      for (const [what, spec] of bad) {
        it(`${what}: HPCC_E_OCI_TAR before any byte`, async () => {
          const r = await read(sparseTar(format, [spec]));
          expect(r.code).to.equal('HPCC_E_OCI_TAR');
          expect(r.handed).to.equal(0);
        });
      }
    });
  }

  it('pax maps must be plain decimal within 2^53 (no 1e3, 0x10, empty or 17-digit values)', async () => {
    for (const v of ['1e3', '0x10', ' 5', '', '99999999999999999']) {
      for (const format of ['pax0.0', 'pax0.1', 'pax1.0'] as const) {
        if (v === '' && format === 'pax0.1') continue; // an empty item of a comma list is skipped
        const r = await read(sparseTar(format, [{ name: 'f', realSize: 2 ** 53 - 1, map: [[v, 1]] }]));
        expect(r.code, `${format} ${JSON.stringify(v)}`).to.equal('HPCC_E_OCI_TAR');
        expect(r.handed).to.equal(0);
      }
    }
  });

  it('HPCC_SPARSE_LIMIT: bytes or K/M/G/T, default 16 GiB, a bad value is a usage error', () => {
    expect(parseSparseLimit('0')).to.equal(0);
    expect(parseSparseLimit('4096')).to.equal(4096);
    expect(parseSparseLimit('64M')).to.equal(64 << 20);
    expect(parseSparseLimit('1t')).to.equal(1024 ** 4);
    expect(SPARSE_LIMIT_DEFAULT).to.equal(16 * 1024 ** 3);
    expect(newSparseBudget({})).to.deep.equal({ limit: SPARSE_LIMIT_DEFAULT, used: 0 });
    expect(newSparseBudget({ HPCC_SPARSE_LIMIT: '2G' })).to.deep.equal({ limit: 2 * 1024 ** 3, used: 0 });
    for (const v of ['-1', '1.5G', '10P', 'lots', '99999999999999999']) expect(() => parseSparseLimit(v)).to.throw(UsageError);
  });
});
