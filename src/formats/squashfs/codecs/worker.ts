/**
 * Worker thread body for codecs whose libraries are synchronous (zstd wasm,
 * the TypeScript lz4 HC encoder): the pool in pool.ts posts one block per
 * message so compression runs on every core, not on the main thread.
 */
import { parentPort } from 'node:worker_threads';
import { lz4EncodeBlock } from './lz4block.js';
import { zstdWasm } from './zstdwasm.js';

export interface WorkRequest {
  id: number;
  op: 'zstd' | 'lz4hc';
  level: number;
  data: Uint8Array;
}
export interface WorkReply {
  id: number;
  data?: Uint8Array;
  error?: string;
}

const port = parentPort;
if (port) {
  port.on('message', (req: WorkRequest) => {
    void (async () => {
      let reply: WorkReply;
      try {
        const out = req.op === 'zstd' ? (await zstdWasm()).compress(req.data, req.level) : lz4EncodeBlock(req.data, true);
        reply = { id: req.id, data: out };
      } catch (e) {
        reply = { id: req.id, error: (e as Error).message };
      }
      port.postMessage(reply, reply.data ? [reply.data.buffer as ArrayBuffer] : []);
    })();
  });
}
