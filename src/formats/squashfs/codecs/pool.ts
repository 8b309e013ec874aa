/**
 * A small pool of worker threads that runs synchronous block compressors
 * (worker.ts) on all cores. Workers start on first use and are unref'd while
 * idle, so an idle pool never keeps the process alive.
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CodecError } from '../../../errors/index.js';
import type { WorkReply, WorkRequest } from './worker.js';

interface Slot {
  worker: Worker;
  busy: number;
}

interface Pending {
  resolve: (b: Uint8Array) => void;
  reject: (e: Error) => void;
  slot: Slot;
}

const fromSource = import.meta.url.endsWith('.ts');

/**
 * Start a worker. From TypeScript sources (tests run through tsx) Node 20
 * does not carry tsx's loader into workers, so a small bootstrap loads the
 * .ts worker through tsx's API; the compiled build uses worker.js directly.
 */
function startWorker(): Worker {
  if (!fromSource) return new Worker(new URL('./worker.js', import.meta.url));
  const target = JSON.stringify(new URL('./worker.ts', import.meta.url).href);
  const api = JSON.stringify(pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api')).href);
  const boot = `import(${api}).then((m) => m.tsImport(${target}, ${target}))` +
    `.catch((e) => { console.error(e); process.exit(70); });`;
  return new Worker(boot, { eval: true });
}

export class CodecPool {
  private readonly slots: Slot[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(private readonly size = Math.max(1, Math.min(availableParallelism(), 8))) {}

  run(op: WorkRequest['op'], level: number, data: Uint8Array): Promise<Uint8Array> {
    const slot = this.pick();
    const id = this.nextId++;
    return new Promise<Uint8Array>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, slot });
      if (slot.busy++ === 0) slot.worker.ref();
      // Structured clone copies a view's whole backing buffer (a block is often a view into a large
      // file buffer), so send an exact copy of the block and transfer it instead.
      const own = new Uint8Array(data); // a copy (Buffer#slice would be a view)
      const req: WorkRequest = { id, op, level, data: own };
      slot.worker.postMessage(req, [own.buffer as ArrayBuffer]);
    });
  }

  /** Stop all workers (pending work is rejected). */
  async close(): Promise<void> {
    const all = this.slots.splice(0);
    await Promise.all(all.map((s) => s.worker.terminate()));
  }

  private pick(): Slot {
    let best: Slot | undefined;
    for (const s of this.slots) if (!best || s.busy < best.busy) best = s;
    if (best && (best.busy === 0 || this.slots.length >= this.size)) return best;
    return this.spawn();
  }

  private spawn(): Slot {
    const worker = startWorker();
    const slot: Slot = { worker, busy: 0 };
    worker.unref();
    worker.on('message', (m: WorkReply) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (--slot.busy === 0) worker.unref();
      if (m.data) p.resolve(m.data);
      else p.reject(new CodecError('HPCC_E_CODEC_FAILED', `compression failed in a worker: ${m.error ?? 'unknown error'}`));
    });
    const fail = (e: Error): void => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      for (const [id, p] of this.pending) {
        if (p.slot !== slot) continue;
        this.pending.delete(id);
        p.reject(new CodecError('HPCC_E_CODEC_FAILED', `a compression worker stopped: ${e.message}`, { cause: e }));
      }
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
    this.slots.push(slot);
    return slot;
  }
}

let shared: CodecPool | undefined;
/** The process-wide pool (created on first use). */
export function codecPool(): CodecPool {
  shared ??= new CodecPool();
  return shared;
}
