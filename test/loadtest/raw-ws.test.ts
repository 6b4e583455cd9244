import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRawWs } from '../../loadtest/lib/raw-ws.ts';

function filled(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

describe('connectRawWs against uWebSockets.js on loopback', () => {
  type App = { close(): void };
  let app: App;
  let port = 0;
  beforeAll(async () => {
    const uWS = createRequire(import.meta.url)('uWebSockets.js');
    const a = uWS.App();
    a.ws('/ws', {
      upgrade: (res: any, req: any, ctx: any) =>
        res.upgrade({}, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), ctx),
      // Echo each message twice: once as sent, once padded to a 16-bit length.
      message: (ws: any, msg: ArrayBuffer, isBinary: boolean) => {
        ws.send(msg, isBinary);
        ws.send(Buffer.concat([Buffer.from(msg), Buffer.alloc(300)]), true);
      },
    });
    await new Promise<void>((resolve, reject) =>
      a.listen('127.0.0.1', 0, (tok: unknown) => {
        if (!tok) return reject(new Error('listen failed'));
        port = uWS.us_socket_local_port(tok);
        resolve();
      }),
    );
    app = a;
  });
  afterAll(() => app?.close());

  it('upgrades with a subprotocol, sends masked frames and counts echoes', async () => {
    const ws = await connectRawWs({ host: '127.0.0.1', port, path: '/ws', protocol: 'bench.v1', decode: true });
    const echo = ws.waitFor((b, binary) => (binary ? undefined : b.toString()), 2000);
    ws.send('hello');
    expect(await echo).toBe('hello');
    ws.parser.decode = false;
    for (let i = 0; i < 100; i++) ws.send(filled(100, i));
    const deadline = Date.now() + 2000;
    while (ws.parser.count < 202 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(ws.parser.count).toBe(202);
    expect(ws.parser.bytes).toBe(5 + 305 + 100 * 100 + 100 * 400);
    ws.close();
  });
});
