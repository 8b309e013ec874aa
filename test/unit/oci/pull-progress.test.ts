import { expect } from 'chai';
import { PullProgress } from '../../../src/oci/pull-progress.js';
import type { PullEvent } from '../../../src/oci/registry-source.js';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const MiB = 1 << 20;

/** Drive a PullProgress with a fake clock and collect what it writes. */
function run(opts: { tty: boolean; quiet?: boolean; columns?: number }, events: Array<[number, PullEvent]>): string {
  let out = '';
  let now = 0;
  const p = new PullProgress({ write: (s: string) => (out += s), columns: opts.columns ?? 80 }, { tty: opts.tty, quiet: opts.quiet ?? false, now: () => now });
  for (const [t, ev] of events) {
    now = t;
    p.event(ev);
  }
  p.converted(1, 2, 42);
  p.clear();
  return out;
}

const EVENTS: Array<[number, PullEvent]> = [
  [0, { type: 'manifest', reference: 'reg/x:1', digest: D1, platform: { os: 'linux', architecture: 'amd64' }, layers: 2, bytes: 12 * MiB }],
  [0, { type: 'layer-start', index: 0, digest: D1, size: 4 * MiB }],
  [0, { type: 'layer-start', index: 1, digest: D2, size: 8 * MiB }],
  [1000, { type: 'layer-progress', index: 0, digest: D1, size: 4 * MiB, bytes: 2 * MiB }],
  [1100, { type: 'layer-progress', index: 1, digest: D2, size: 8 * MiB, bytes: 1 * MiB }], // within 0.2 s: not drawn
  [2000, { type: 'layer-progress', index: 1, digest: D2, size: 8 * MiB, bytes: 4 * MiB }],
  [2000, { type: 'layer-done', index: 0, digest: D1, size: 4 * MiB, fetched: true, ms: 2000 }],
  [3000, { type: 'layer-done', index: 1, digest: D2, size: 8 * MiB, fetched: false, ms: 0 }],
];

describe('pull progress rendering', () => {
  it('TTY: a live block per downloading layer (bytes, rate, ETA) plus a total, redrawn in place and erased at the end', () => {
    const out = run({ tty: true }, EVENTS);
    expect(out).to.contain('  Layer 1/2 111111111111: 2.0 MiB / 4.0 MiB  2.0 MiB/s  ETA 1s\n  Layer 2/2 222222222222: 0 B / 8.0 MiB  0 B/s  ETA --\n  Total: 2.0 MiB / 12.0 MiB  2.0 MiB/s  ETA 5s');
    expect(out).to.not.contain('1.0 MiB / 8.0 MiB'); // throttled
    expect(out).to.contain('  Layer 2/2 222222222222: 4.0 MiB / 8.0 MiB  2.0 MiB/s  ETA 2s');
    // a three-line block is erased with CR + erase line, then two times cursor up + erase line
    expect(out).to.contain('\r\x1b[K\x1b[1A\x1b[K\x1b[1A\x1b[KLayer 1/2');
    expect(out).to.contain('Layer 1/2 111111111111: 4.0 MiB in 2.00 s (2.0 MiB/s)\n');
    expect(out).to.contain('Layer 2/2 222222222222: 8.0 MiB (cached)\n');
    expect(out.endsWith('Converted layer 2/2 into the SIF (42 entries so far)\n')).to.equal(true);
  });

  it('TTY: live lines are cut to the terminal width, so the block never wraps', () => {
    const out = run({ tty: true, columns: 30 }, EVENTS);
    const live = out.split(/\r\x1b\[K|\x1b\[1A\x1b\[K|\n/).filter((l) => l.startsWith('  '));
    expect(live.length).to.be.greaterThan(2);
    for (const l of live) expect(l.length, l).to.be.at.most(29);
  });

  it('not a TTY: plain lines only; quiet: nothing', () => {
    const plain = run({ tty: false }, EVENTS);
    expect(plain).to.not.match(/[\r\x1b]/);
    expect(plain.split('\n').filter(Boolean)).to.deep.equal([
      `Pulling reg/x:1 (linux/amd64, 2 layers, 12.0 MiB), manifest ${D1}`,
      'Layer 1/2 111111111111: 4.0 MiB in 2.00 s (2.0 MiB/s)',
      'Layer 2/2 222222222222: 8.0 MiB (cached)',
      'Converted layer 2/2 into the SIF (42 entries so far)',
    ]);
    expect(run({ tty: true, quiet: true }, EVENTS)).to.equal('');
  });
});
