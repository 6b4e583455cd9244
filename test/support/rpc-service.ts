/**
 * A real HTTP RPC service on a random loopback port for the gateway's RPC tests. It dispatches on
 * the body's `method` by its last token:
 *   echo       200 {data, method, seen: the Symphonic-* headers, names: every header name}
 *   fail       422 {error: {message: "out of stock", data: {sku}}}
 *   plain500   500 with a text body
 *   empty      204
 *   big        200 with a JSON body of 4 KB (content-length set)
 *   stream     200, chunked, written until the gateway stops reading (no content-length)
 *   hold       answered only when the test calls `release(tag)` (the data is the tag)
 *   never      never answered (until the service closes)
 * `calls` counts requests by method; `onAbort` hears of requests whose client went away.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TestRpcService {
  readonly url: string;
  readonly calls: Map<string, number>;
  /** Resolves once a `hold` call with this tag has arrived. */
  held(tag: string, timeoutMs?: number): Promise<void>;
  release(tag: string, answer: unknown): void;
  /** Resolves once the gateway dropped the connection of a held/never call with this tag. */
  aborted(tag: string, timeoutMs?: number): Promise<void>;
  /** Whether the `stream` answer was cut off by the gateway (it stopped reading). */
  streamCut(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startRpcService(): Promise<TestRpcService> {
  const calls = new Map<string, number>();
  const holds = new Map<string, ServerResponse>();
  const events = new EventTarget();
  const abortedTags = new Set<string>();
  let cut = false;
  const waitFor = (check: () => boolean, what: string, timeoutMs: number) =>
    new Promise<void>((resolve, reject) => {
      if (check()) return resolve();
      const on = () => {
        if (!check()) return;
        clearTimeout(timer);
        events.removeEventListener('change', on);
        resolve();
      };
      const timer = setTimeout(() => {
        events.removeEventListener('change', on);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      events.addEventListener('change', on);
    });
  const changed = () => events.dispatchEvent(new Event('change'));

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, res, JSON.parse(Buffer.concat(chunks).toString('utf8')) as { method: string; data: unknown }));
  });

  function handle(req: IncomingMessage, res: ServerResponse, body: { method: string; data: unknown }) {
    const name = body.method.split('.').pop()!;
    calls.set(body.method, (calls.get(body.method) ?? 0) + 1);
    const json = (status: number, v: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(v));
    };
    switch (name) {
      case 'echo': {
        const seen = Object.fromEntries(Object.entries(req.headers).filter(([k]) => k.startsWith('symphonic-')));
        return json(200, { data: body.data, method: body.method, seen, names: Object.keys(req.headers) });
      }
      case 'fail':
        return json(422, { error: { message: 'out of stock', data: { sku: (body.data as { sku?: string })?.sku ?? null } } });
      case 'plain500':
        res.writeHead(500, { 'content-type': 'text/plain' });
        return res.end('boom');
      case 'empty':
        res.writeHead(204);
        return res.end();
      case 'big':
        return json(200, { blob: 'x'.repeat(4096) });
      case 'stream': {
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = `"${'y'.repeat(16 * 1024)}",`;
        res.write('[');
        const pump = () => {
          // Written until the gateway hangs up; a gateway reading on would get megabytes.
          while (!res.destroyed && res.write(chunk));
          if (!res.destroyed) res.once('drain', pump);
        };
        res.on('close', () => {
          cut = true;
          changed();
        });
        return pump();
      }
      case 'hold':
      case 'never': {
        const tag = String(body.data);
        if (name === 'hold') holds.set(tag, res);
        res.on('close', () => {
          if (!res.writableEnded) abortedTags.add(tag);
          changed();
        });
        return changed();
      }
      default:
        return json(404, { error: { message: `no method ${body.method}` } });
    }
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/rpc`,
    calls,
    held: (tag, timeoutMs = 5000) => waitFor(() => holds.has(tag), `held call ${tag}`, timeoutMs),
    release(tag, answer) {
      const res = holds.get(tag);
      if (!res) throw new Error(`no held call ${tag}`);
      holds.delete(tag);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer));
    },
    aborted: (tag, timeoutMs = 5000) => waitFor(() => abortedTags.has(tag), `call ${tag} aborted`, timeoutMs),
    streamCut: (timeoutMs = 5000) => waitFor(() => cut, 'the stream cut off', timeoutMs),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A loopback URL where nothing listens (a port bound and released). */
export async function refusedUrl(): Promise<string> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return `http://127.0.0.1:${port}/rpc`;
}
