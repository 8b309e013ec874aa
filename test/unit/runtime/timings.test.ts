/**
 * src/runtime/timings.ts: the helper's timing records, the phases' text and
 * JSON forms. No wall time is asserted, only what is derived from given
 * nanoseconds and the shape of what is printed.
 */
import { expect } from 'chai';
import { helperTimings, parseTimingRecord, Timings } from '../../../src/runtime/timings.js';

describe('runtime: --timings phases', () => {
  it('parses the helper records (status.c) and nothing else', () => {
    expect(parseTimingRecord('status/1 info -1 timing image-open 1234567')).to.deep.equal({ phase: 'image-open', ns: 1234567n });
    expect(parseTimingRecord('status/1 info -1 timing start 98765432109876')).to.deep.equal({ phase: 'start', ns: 98765432109876n });
    for (const bad of ['status/1 info 0 overlay kernel', 'status/1 info -1 timing exec', 'status/1 info -1 timing exec -5', 'status/1 info -1 timing EXEC 5', 'status/1 fail -1 exec 2 127 x', 'status/1 info -1 timing exec 5 x']) {
      expect(parseTimingRecord(bad), bad).to.equal(null);
    }
  });

  it('helper records: start becomes the spawn phase; the rest are added in order; exec prints once', () => {
    const t = new Timings();
    const written: string[] = [];
    const orig = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => (written.push(s), true)) as typeof process.stderr.write;
    try {
      const feed = helperTimings(t, 1_000_000n, false);
      feed('status/1 info -1 timing start 3500000');
      feed('status/1 info -1 timing image-open 2000000');
      feed('status/1 info 0 overlay kernel');
      feed('status/1 info -1 timing mount 250000');
      feed('status/1 info -1 timing overlay 1000');
      expect(written).to.deep.equal([]);
      feed('status/1 info -1 timing exec 999');
      t.print(); // the launch's own print after the helper's: nothing more
    } finally {
      process.stderr.write = orig;
    }
    expect(t.toJSON()).to.deep.equal({ spawn: 2.5, 'image-open': 2, mount: 0.25, overlay: 0.001, exec: 0, total: 4.751 });
    expect(written).to.have.length(1);
    expect(written[0]).to.equal(
      'hpcc: timing spawn 2.500 ms\nhpcc: timing image-open 2.000 ms\nhpcc: timing mount 0.250 ms\nhpcc: timing overlay 0.001 ms\n' +
        'hpcc: timing exec 0.000 ms\nhpcc: timing total 4.751 ms\n',
    );
  });

  it('listed phases show as 0 until measured; a phase measured twice is summed; wall totals are numbers', () => {
    const t = new Timings({ phases: ['resolve', 'fetch', 'convert', 'write'], wall: true });
    t.add('write', 1_500_000n);
    t.add('write', 500_000n);
    t.add('resolve', -5n); // a clock step backwards is 0, not negative
    const j = t.toJSON();
    expect(Object.keys(j)).to.deep.equal(['resolve', 'fetch', 'convert', 'write', 'total']);
    expect(j).to.deep.include({ resolve: 0, fetch: 0, convert: 0, write: 2 });
    expect(j.total).to.be.a('number').and.to.be.at.least(0);
    t.mark('convert');
    expect(t.toJSON().convert).to.be.a('number').and.to.be.at.least(0);
  });
});
