/**
 * --timings: per-phase wall times of one hpcc command, measured on
 * CLOCK_MONOTONIC (process.hrtime, the clock the launch helper's own
 * records use: native/launch/status.c), printed on stderr or returned in
 * --json output. Measuring only: no phase changes what a command does.
 *
 * Phases, in the order they happen:
 *  - launches (exec/run/shell/test): start (Node's start-up up to the
 *    launch), plan (options, facts, the image's metadata, the plan; a
 *    docker:// reference's pull is inside it), spawn (until the helper
 *    runs), then the helper's image-open, mount, overlay and exec (up to
 *    execve of the payload);
 *  - pull and build: resolve, fetch, convert, write (see core/pull.ts and
 *    core/build.ts for what each holds).
 * Text form, one line per phase: `hpcc: timing PHASE MS ms`, then
 * `hpcc: timing total MS ms`. JSON: { PHASE: MS, ..., total: MS }. A phase
 * measured twice (pull's write: the cache entry, then the copy) is summed.
 * Launch phases follow each other, and total is their sum (up to execve);
 * a registry pull's fetch overlaps its convert (layers stream into the
 * converter as they arrive), so there total is the wall time.
 */

export interface TimingRow {
  phase: string;
  ms: number;
}

/** Milliseconds with microsecond resolution, from nanoseconds. */
const toMs = (ns: bigint): number => Number(ns / 1000n) / 1000;

export interface TimingsOptions {
  /** phases listed (0 ms) even when they do not happen, in this order */
  phases?: readonly string[];
  /** total is the wall time since this object was made, not the phases' sum (phases overlap) */
  wall?: boolean;
}

export class Timings {
  readonly rows: TimingRow[];
  private readonly created = process.hrtime.bigint();
  private last = this.created;
  private printed = false;

  constructor(private readonly opts: TimingsOptions = {}) {
    this.rows = (opts.phases ?? []).map((phase) => ({ phase, ms: 0 }));
  }

  /** Record `phase` as the time since the previous mark (or since this object was made). */
  mark(phase: string): void {
    const now = process.hrtime.bigint();
    this.add(phase, now - this.last);
    this.last = now;
  }

  /** Record a phase measured elsewhere (the helper's records), in nanoseconds. */
  add(phase: string, ns: bigint): void {
    const ms = toMs(ns < 0n ? 0n : ns);
    const row = this.rows.find((r) => r.phase === phase);
    if (row) row.ms = Math.round((row.ms + ms) * 1000) / 1000;
    else this.rows.push({ phase, ms });
  }

  /** { phase: ms, ..., total } for --json. */
  toJSON(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.rows) out[r.phase] = r.ms;
    const sum = this.rows.reduce((s, r) => s + r.ms, 0);
    out.total = this.opts.wall ? toMs(process.hrtime.bigint() - this.created) : Math.round(sum * 1000) / 1000;
    return out;
  }

  render(): string {
    return Object.entries(this.toJSON())
      .map(([phase, ms]) => `hpcc: timing ${phase} ${ms.toFixed(3)} ms\n`)
      .join('');
  }

  /** Write the phases on stderr once (text, or one JSON line with json). */
  print(json = false): void {
    if (this.printed) return;
    this.printed = true;
    process.stderr.write(json ? JSON.stringify({ timings: this.toJSON() }) + '\n' : this.render());
  }
}

/** Node's start-up up to now: the time since the process started (performance's time origin). */
export function sinceProcessStart(): bigint {
  return BigInt(Math.round(performance.now() * 1e6));
}

/** One helper timing record's fields ("status/1 info -1 timing PHASE NS"), or null. */
export function parseTimingRecord(line: string): { phase: string; ns: bigint } | null {
  const m = /^status\/1 info -1 timing ([a-z-]{1,32}) (\d{1,20})$/.exec(line);
  return m ? { phase: m[1]!, ns: BigInt(m[2]!) } : null;
}

/**
 * Feeds the helper's status stream into `t`: "start" becomes the spawn
 * phase (helper start minus `spawnedAt`), the others are added as they come;
 * after "exec" (sent just before execve) the phases are printed.
 */
export function helperTimings(t: Timings, spawnedAt: bigint, json: boolean): (line: string) => void {
  return (line) => {
    const r = parseTimingRecord(line);
    if (!r) return;
    if (r.phase === 'start') t.add('spawn', r.ns - spawnedAt);
    else t.add(r.phase, r.ns);
    if (r.phase === 'exec') t.print(json);
  };
}
