/**
 * A fault-injecting HTTP proxy on 127.0.0.1 in front of a test registry:
 *   cutBlobAfter: the next `cutCount` blob GETs are forwarded but the
 *                 connection is destroyed after N body bytes (a dropped connection);
 *   status:       answer requests matching `statusPath` with this HTTP status and a
 *                 distribution-style error body (429/500/... fault registry);
 *   stall:        with cutBlobAfter, go silent instead of dropping (a hung download);
 *   ignoreRange:  strip Range headers (a server without Range support).
 * Every request is logged (method, path, Range, status sent).
 */
import * as http from 'node:http';
import type * as net from 'node:net';

export interface FaultProxy {
  host: string;
  port: number;
  cutBlobAfter?: number;
  cutCount: number;
  /** with cutBlobAfter: keep the connection open and silent instead of dropping it */
  stall: boolean;
  status?: number;
  /** how many requests get `status` (undefined: all) */
  statusTimes?: number;
  statusPath: RegExp;
  ignoreRange: boolean;
  log: Array<{ method: string; path: string; range?: string; status: number; cut?: boolean }>;
  stop(): Promise<void>;
}

export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  const [uhost, uport] = upstream.split(':') as [string, string];
  const sockets = new Set<net.Socket>();
  const p: FaultProxy = {
    host: '',
    port: 0,
    cutCount: 1,
    stall: false,
    statusPath: /^\/v2\/.+/,
    ignoreRange: false,
    log: [],
    stop: async () => undefined,
  };
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    const range = req.headers.range;
    if (p.status !== undefined && p.statusPath.test(url) && (p.statusTimes === undefined || p.statusTimes-- > 0)) {
      const code = p.status === 401 ? 'UNAUTHORIZED' : p.status === 404 ? 'MANIFEST_UNKNOWN' : p.status === 429 ? 'TOOMANYREQUESTS' : 'UNKNOWN';
      res.writeHead(p.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code, message: `injected HTTP ${p.status}` }] }));
      p.log.push({ method: req.method ?? '', path: url, ...(range ? { range } : {}), status: p.status });
      return;
    }
    const headers = { ...req.headers, host: upstream };
    if (p.ignoreRange) delete headers.range;
    const up = http.request({ host: uhost, port: Number(uport), method: req.method, path: url, headers }, (ures) => {
      const isBlob = req.method === 'GET' && /\/blobs\/sha256:/.test(url);
      const len = Number(ures.headers['content-length'] ?? NaN);
      const cut = isBlob && p.cutBlobAfter !== undefined && p.cutCount > 0 && (ures.statusCode ?? 0) < 300 && len > p.cutBlobAfter;
      if (cut) p.cutCount--;
      p.log.push({ method: req.method ?? '', path: url, ...(range ? { range } : {}), status: ures.statusCode ?? 0, ...(cut ? { cut } : {}) });
      res.writeHead(ures.statusCode ?? 502, ures.headers);
      if (!cut) {
        ures.pipe(res);
        return;
      }
      let sent = 0;
      const limit = p.cutBlobAfter!;
      ures.on('data', (chunk: Buffer) => {
        if (sent >= limit) return;
        const part = chunk.subarray(0, limit - sent);
        sent += part.length;
        res.write(part);
        if (sent >= limit) {
          ures.destroy();
          if (p.stall) return; // silent until stop()
          // let the bytes go out, then drop the connection
          setTimeout(() => res.socket?.destroy(), 20);
        }
      });
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  p.port = (server.address() as net.AddressInfo).port;
  p.host = `127.0.0.1:${p.port}`;
  p.stop = async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(() => r(undefined)));
  };
  return p;
}
