/**
 * Progress of `hpcc pull` on stderr.
 *   Not a TTY: plain lines only — the manifest, one line per finished layer
 *   (size, time, rate, or "cached"), one per converted layer.
 *   A TTY: the same lines, plus a live block under them redrawn in place
 *   (carriage return, cursor up, erase line): one line per layer being
 *   downloaded (bytes / size, rate, ETA) and a total line. Lines are cut to
 *   the terminal width so the block never wraps.
 *   quiet: nothing.
 */
import { formatPlatform } from './platform.js';
import type { PullEvent } from './registry-source.js';

export interface ProgressSink {
  write(s: string): unknown;
  columns?: number;
}

const REDRAW_MS = 200;

/** Same units as `hpcc build` prints. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

function eta(remaining: number, rate: number): string {
  if (rate <= 0) return 'ETA --';
  const s = Math.ceil(remaining / rate);
  return s >= 60 ? `ETA ${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `ETA ${s}s`;
}

interface Active {
  index: number;
  digest: string;
  size: number;
  bytes: number;
  t0: number;
}

export class PullProgress {
  private total = 0;
  private count = 0;
  private downloaded = 0;
  private t0 = Date.now();
  private readonly active = new Map<number, Active>();
  private readonly seen = new Map<number, number>();
  private liveLines = 0;
  private lastDraw = 0;

  constructor(
    private readonly out: ProgressSink,
    private readonly opts: { quiet?: boolean; tty?: boolean; now?: () => number } = {},
  ) {}

  private now(): number {
    return this.opts.now ? this.opts.now() : Date.now();
  }

  private tag(i: number, d: string): string {
    return `Layer ${i + 1}/${this.count} ${d.slice(7, 19)}`;
  }

  /** Erase the live block (TTY); the cursor ends at the start of its first line. */
  clear(): void {
    if (this.liveLines === 0) return;
    let s = '\r\x1b[K';
    for (let i = 1; i < this.liveLines; i++) s += '\x1b[1A\x1b[K';
    this.out.write(s);
    this.liveLines = 0;
  }

  /** A permanent line (above the live block on a TTY). */
  line(s: string): void {
    if (this.opts.quiet) return;
    this.clear();
    this.out.write(`${s}\n`);
    this.draw(true);
  }

  private draw(force = false): void {
    if (!this.opts.tty || this.opts.quiet || this.active.size === 0) return;
    const now = this.now();
    if (!force && now - this.lastDraw < REDRAW_MS) return;
    this.lastDraw = now;
    const width = Math.max(20, (this.out.columns || 80) - 1);
    const cut = (s: string) => (s.length > width ? s.slice(0, width) : s);
    const rows: string[] = [];
    for (const a of [...this.active.values()].sort((x, y) => x.index - y.index)) {
      const rate = a.bytes / Math.max((now - a.t0) / 1000, 0.001);
      rows.push(cut(`  ${this.tag(a.index, a.digest)}: ${formatBytes(a.bytes)} / ${formatBytes(a.size)}  ${formatBytes(Math.round(rate))}/s  ${eta(a.size - a.bytes, rate)}`));
    }
    const rate = this.downloaded / Math.max((now - this.t0) / 1000, 0.001);
    rows.push(cut(`  Total: ${formatBytes(this.downloaded)} / ${formatBytes(this.total)}  ${formatBytes(Math.round(rate))}/s  ${eta(this.total - this.downloaded, rate)}`));
    this.clear();
    this.out.write(rows.join('\n'));
    this.liveLines = rows.length;
  }

  converted(index: number, count: number, entries: number): void {
    this.line(`Converted layer ${index + 1}/${count} into the SIF (${entries} entries so far)`);
  }

  event(ev: PullEvent): void {
    if (this.opts.quiet) return;
    switch (ev.type) {
      case 'manifest':
        this.total = ev.bytes;
        this.count = ev.layers;
        this.t0 = this.now();
        this.line(`Pulling ${ev.reference} (${formatPlatform(ev.platform)}, ${ev.layers} layers, ${formatBytes(ev.bytes)}), manifest ${ev.digest}`);
        break;
      case 'layer-start':
        this.active.set(ev.index, { index: ev.index, digest: ev.digest, size: ev.size, bytes: 0, t0: this.now() });
        break;
      case 'layer-wait':
        this.line(`${this.tag(ev.index, ev.digest)}: waiting for another hpcc process downloading it`);
        break;
      case 'layer-progress': {
        this.downloaded += ev.bytes - (this.seen.get(ev.index) ?? 0);
        this.seen.set(ev.index, ev.bytes);
        const a = this.active.get(ev.index);
        if (a) a.bytes = ev.bytes;
        this.draw();
        break;
      }
      case 'layer-done': {
        this.active.delete(ev.index);
        if (!ev.fetched) {
          this.line(`${this.tag(ev.index, ev.digest)}: ${formatBytes(ev.size)} (cached)`);
          break;
        }
        const secs = Math.max(ev.ms / 1000, 0.001);
        this.line(`${this.tag(ev.index, ev.digest)}: ${formatBytes(ev.size)} in ${secs.toFixed(2)} s (${formatBytes(Math.round(ev.size / secs))}/s)`);
        break;
      }
    }
  }
}
