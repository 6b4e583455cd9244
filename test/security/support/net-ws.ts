/**
 * A minimal WebSocket client on a raw `net` socket, for tests that need what `ws` hides: a client
 * that stops reading (so TCP buffers really fill), the HTTP answer to a refused upgrade, raw
 * frames of any opcode, and thousands of cheap connections. Server frames are parsed
 * incrementally; client frames are masked as RFC 6455 requires.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { encodeFrame } from '../../../loadtest/lib/ws-frames.ts';

export interface UpgradeRefused {
  ok: false;
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface NetWs {
  ok: true;
  readonly socket: Socket;
  /** The subprotocol the server picked ('' if none). */
  readonly protocol: string;
  /** Called for every data frame (opcode 1 text, 2 binary), in order. */
  onMessage: (payload: Buffer, binary: boolean) => void;
  /** Sends one data frame, masked. */
  send(data: Uint8Array | string): void;
  /** Sends one frame with any opcode/fin bits (for fuzzing the framing layer). */
  sendFrame(opcode: number, payload: Uint8Array, fin?: boolean): void;
  /** Writes raw bytes to the socket, bypassing framing. */
  writeRaw(bytes: Uint8Array): void;
  /** Stops reading from the kernel: the server's writes pile up in TCP buffers, then in its own. */
  pause(): void;
  resume(): void;
  /** Resolves when the TCP connection is gone, with the close frame's code if one arrived. */
  readonly closed: Promise<{ code: number | null; reason: string }>;
  destroy(): void;
}

export interface NetWsOptions {
  path?: string;
  protocol?: string;
  origin?: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

export function openNetWs(port: number, opts: NetWsOptions = {}): Promise<NetWs | UpgradeRefused> {
  const { path = '/ws', protocol, origin, headers = {}, timeoutMs = 10_000 } = opts;
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setNoDelay(true);
    const key = randomBytes(16).toString('base64');
    const lines = [
      `GET ${path} HTTP/1.1`,
      `Host: 127.0.0.1:${port}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${key}`,
      'Sec-WebSocket-Version: 13',
      ...(protocol ? [`Sec-WebSocket-Protocol: ${protocol}`] : []),
      ...(origin ? [`Origin: ${origin}`] : []),
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    ];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('upgrade timed out'));
    }, timeoutMs);
    let head = Buffer.alloc(0);
    let settled = false;
    socket.once('error', (e) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(e);
    });
    const onHead = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine, ...hdrLines] = head.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(statusLine!.split(' ')[1]);
      const hdrs: Record<string, string> = {};
      for (const l of hdrLines) {
        const i = l.indexOf(':');
        hdrs[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const rest = head.subarray(end + 4);
      socket.off('data', onHead);
      settled = true;
      clearTimeout(timer);
      if (status !== 101) {
        // A refused upgrade: read the body (content-length or until the server closes).
        const len = Number(hdrs['content-length'] ?? NaN);
        let body = rest;
        const finish = () => {
          socket.destroy();
          resolve({ ok: false, status, headers: hdrs, body: body.toString('utf8') });
        };
        if (body.length >= len) return finish();
        socket.on('data', (c: Buffer) => {
          body = Buffer.concat([body, c]);
          if (body.length >= len) finish();
        });
        socket.once('end', finish);
        socket.once('close', finish);
        return;
      }
      resolve(makeClient(socket, hdrs['sec-websocket-protocol'] ?? '', rest));
    };
    socket.on('data', onHead);
    socket.write(lines.join('\r\n') + '\r\n\r\n');
  });
}

function makeClient(socket: Socket, protocol: string, initial: Buffer): NetWs {
  // Unparsed bytes as a queue of chunks: a frame inside one chunk is a view of it (no copy);
  // only frames straddling chunks are copied, once.
  const chunks: Buffer[] = initial.length ? [initial] : [];
  let total = initial.length;
  let closeCode: number | null = null;
  let closeReason = '';
  let fragments: Buffer[] = [];
  let fragBinary = false;
  const client: NetWs = {
    ok: true,
    socket,
    protocol,
    onMessage: () => {},
    send(data) {
      const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      client.sendFrame(typeof data === 'string' ? 1 : 2, bytes);
    },
    sendFrame(opcode, payload, fin = true) {
      if (socket.destroyed) return;
      socket.write(encodeFrame(opcode, payload, fin));
    },
    writeRaw(bytes) {
      if (!socket.destroyed) socket.write(bytes);
    },
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    closed: new Promise((resolve) => {
      socket.once('close', () => resolve({ code: closeCode, reason: closeReason }));
    }),
    destroy: () => socket.destroy(),
  };
  socket.on('error', () => {}); // resets are expected in these tests; `closed` reports the end

  /** The first `n` queued bytes (a view when they lie in one chunk); removes them if `consume`. */
  const head = (n: number, consume: boolean): Buffer => {
    const first = chunks[0]!;
    let out: Buffer;
    if (first.length >= n) out = first.subarray(0, n);
    else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      for (const c of chunks) {
        const k = Math.min(c.length, n - filled);
        c.copy(out, filled, 0, k);
        filled += k;
        if (filled === n) break;
      }
    }
    if (consume) {
      let left = n;
      while (left > 0) {
        const c = chunks[0]!;
        if (c.length <= left) {
          chunks.shift();
          left -= c.length;
        } else {
          chunks[0] = c.subarray(left);
          left = 0;
        }
      }
      total -= n;
    }
    return out;
  };

  const parse = () => {
    for (;;) {
      if (total < 2) return;
      const h = head(Math.min(total, 10), false);
      const b0 = h[0]!;
      const b1 = h[1]!;
      let len = b1 & 0x7f;
      let off = 2;
      if (len === 126) {
        if (total < 4) return;
        len = h.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (total < 10) return;
        len = Number(h.readBigUInt64BE(2));
        off = 10;
      }
      if (total < off + len) return;
      head(off, true);
      const payload = len ? head(len, true) : Buffer.alloc(0);
      const opcode = b0 & 0x0f;
      const fin = (b0 & 0x80) !== 0;
      if (opcode === 8) {
        closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        closeReason = payload.subarray(2).toString('utf8');
        socket.end();
      } else if (opcode === 9) {
        client.sendFrame(10, payload);
      } else if (opcode === 1 || opcode === 2 || opcode === 0) {
        if (opcode !== 0) fragBinary = opcode === 2;
        if (!fin) {
          fragments.push(Buffer.from(payload));
          continue;
        }
        const whole = fragments.length ? Buffer.concat([...fragments, payload]) : payload;
        fragments = [];
        client.onMessage(whole, fragBinary);
      }
    }
  };
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    total += chunk.length;
    parse();
  });
  if (total) queueMicrotask(parse);
  return client;
}

export { encodeFrame } from '../../../loadtest/lib/ws-frames.ts';
