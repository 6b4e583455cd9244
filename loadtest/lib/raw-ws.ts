/**
 * A minimal WebSocket client over node:net, for the load generator only (framing in ws-frames.ts).
 *
 * Why not `ws`: it parses every frame in JS through streams and events, which at millions of frames
 * per second makes the generator, not the server, the bottleneck. Here every socket reads through
 * `onread` into one shared buffer (no allocation per read, no stream machinery) and a
 * "count-only" socket only walks frame headers: it never copies or decodes a payload. A few
 * "decode" sockets copy whole messages out, for latency samples and for handshakes.
 *
 * Scope: RFC 6455 client side, no extensions (no permessage-deflate), no TLS.
 */
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { FrameParser, OP_BINARY, OP_CLOSE, OP_PONG, OP_TEXT, encodeFrame, type PayloadStreamFactory } from './ws-frames.ts';

export interface ConnectOptions {
  host: string;
  port: number;
  /** Path and query, e.g. `/ws?sub=bench`. */
  path: string;
  /**
   * Local address to bind before connecting, e.g. `127.0.1.7`: a bound socket takes its port from
   * that address's own ephemeral range (~28,000 ports), so spreading sockets over 127.0.0.0/8
   * passes 64k connections to one server port.
   */
  localAddress?: string;
  /** Subprotocol to offer; the server must accept exactly it. */
  protocol?: string;
  /** Start in decode mode (needed for handshakes); switch with `ws.parser.decode = false`. */
  decode: boolean;
  minCountBytes?: number;
  /** Read buffer, shareable by every socket of the process (reads are handled synchronously). */
  readBuffer?: Buffer;
  timeoutMs?: number;
  onMessage?: (payload: Buffer, binary: boolean) => void;
  /** Data messages below minCountBytes, in both modes (see FrameEvents.onShortMessage). */
  onShortMessage?: (ws: RawWs, payload: Buffer, binary: boolean) => void;
  /** A protocol carried as a byte stream over the frames, which counts its own messages (see PayloadStream). */
  stream?: PayloadStreamFactory;
}

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const MAX_RESPONSE_HEAD = 8192;
const MAX_EARLY = 64;

export class RawWs {
  readonly parser: FrameParser;
  /** Set once the socket is closed (by either side, or by an error). */
  closed = false;
  closeCode = 0;
  closeReason = '';
  onMessage: ((payload: Buffer, binary: boolean) => void) | undefined;
  private waiter: ((payload: Buffer, binary: boolean) => boolean) | null = null;
  private closeSent = false;
  // Decoded messages that came before anyone listened (e.g. with the 101 response), for waitFor.
  private early: { p: Buffer; b: boolean }[] = [];

  constructor(
    readonly socket: net.Socket,
    opts: ConnectOptions,
  ) {
    this.onMessage = opts.onMessage;
    const onMessage = (p: Buffer, b: boolean) => {
      if (this.waiter?.(p, b)) return;
      if (this.onMessage) this.onMessage(p, b);
      else if (this.early.push({ p, b }) > MAX_EARLY) this.early.shift();
    };
    const onShort = opts.onShortMessage;
    this.parser = new FrameParser(
      {
        onMessage,
        ...(onShort ? { onShortMessage: (p: Buffer, b: boolean) => onShort(this, p, b) } : {}),
        onPing: (p) => this.sendFrame(OP_PONG, p),
        onClose: (code, reason) => {
          this.closeCode = code;
          this.closeReason = reason;
          // Echo the close (unless we started it), then let the server end the TCP connection.
          if (!this.closeSent) this.sendFrame(OP_CLOSE, closePayload(code === 1005 ? 1000 : code));
          this.closeSent = true;
        },
      },
      { decode: opts.decode, minCountBytes: opts.minCountBytes ?? 0 },
    );
    if (opts.stream) this.parser.stream = opts.stream({ parser: this.parser, emit: onMessage, send: (d) => this.sendFrame(OP_BINARY, d) });
  }

  send(data: Uint8Array | string): void {
    if (typeof data === 'string') this.sendFrame(OP_TEXT, Buffer.from(data, 'utf8'));
    else this.sendFrame(OP_BINARY, data);
  }

  /** Several messages in one socket write (fewer syscalls for a fast publisher). */
  sendMany(payloads: readonly Uint8Array[], binary: boolean): void {
    if (this.closed || !this.socket.writable || payloads.length === 0) return;
    const op = binary ? OP_BINARY : OP_TEXT;
    this.socket.write(Buffer.concat(payloads.map((p) => encodeFrame(op, p))));
  }

  sendFrame(opcode: number, payload: Uint8Array): void {
    if (!this.closed && this.socket.writable) this.socket.write(encodeFrame(opcode, payload));
  }

  /** Bytes queued in user space, not yet handed to the kernel. */
  get pendingBytes(): number {
    return this.socket.writableLength;
  }

  /**
   * The next decoded message for which `pick` returns a value (others go to onMessage), looking
   * first at messages that arrived while nobody listened. Decode mode only; one waiter at a time.
   */
  waitFor<T>(pick: (payload: Buffer, binary: boolean) => T | undefined, timeoutMs: number): Promise<T> {
    while (this.early.length) {
      const m = this.early.shift()!;
      const v = pick(m.p, m.b);
      if (v !== undefined) return Promise.resolve(v);
    }
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`no expected message within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = (p, b) => {
        const v = pick(p, b);
        if (v === undefined) return false;
        clearTimeout(timer);
        this.waiter = null;
        resolve(v);
        return true;
      };
    });
  }

  close(code = 1000): void {
    if (this.closed) return;
    if (!this.closeSent) this.sendFrame(OP_CLOSE, closePayload(code));
    this.closeSent = true;
    this.socket.end();
  }

  destroy(): void {
    this.closed = true;
    this.socket.destroy();
  }
}

function closePayload(code: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code, 0);
  return b;
}

let sharedReadBuffer: Buffer | null = null;

/** Opens a socket, performs the HTTP upgrade, resolves once the 101 response is verified. */
export function connectRawWs(opts: ConnectOptions): Promise<RawWs> {
  const key = randomBytes(16).toString('base64');
  const accept = createHash('sha1')
    .update(key + GUID)
    .digest('base64');
  const readBuffer = opts.readBuffer ?? (sharedReadBuffer ??= Buffer.allocUnsafe(256 * 1024));

  return new Promise<RawWs>((resolve, reject) => {
    let ws: RawWs | null = null;
    let upgraded = false;
    let head = Buffer.alloc(0);
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };

    const onRead = (nread: number, buf: Buffer): boolean => {
      if (upgraded) {
        try {
          ws!.parser.push(buf, 0, nread);
        } catch (e) {
          ws!.closeReason = `protocol error: ${(e as Error).message}`;
          ws!.destroy();
        }
        return true;
      }
      // Before the upgrade: gather the HTTP response head (copied: the read buffer is shared).
      head = Buffer.concat([head, buf.subarray(0, nread)]);
      const endOfHead = head.indexOf('\r\n\r\n');
      if (endOfHead < 0) {
        if (head.length > MAX_RESPONSE_HEAD) fail(new Error('upgrade response head too large'));
        return true;
      }
      const err = checkUpgrade(head.subarray(0, endOfHead).toString('latin1'), accept, opts.protocol);
      if (err) {
        fail(new Error(err));
        return false;
      }
      upgraded = true;
      clearTimeout(timer);
      ws = new RawWs(socket, opts);
      const rest = head.subarray(endOfHead + 4);
      head = Buffer.alloc(0);
      resolve(ws);
      // Frames that came with the response head: held for waitFor unless opts.onMessage takes them.
      if (rest.length > 0) ws.parser.push(rest);
      return true;
    };

    const socket = net.connect({
      host: opts.host,
      port: opts.port,
      ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
      onread: { buffer: readBuffer, callback: onRead },
    });
    socket.setNoDelay(true);
    const timer = setTimeout(() => fail(new Error(`upgrade timed out after ${opts.timeoutMs ?? 10_000} ms`)), opts.timeoutMs ?? 10_000);
    socket.on('connect', () => {
      const lines = [
        `GET ${opts.path} HTTP/1.1`,
        `Host: ${opts.host}:${opts.port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Key: ${key}`,
        'Sec-WebSocket-Version: 13',
      ];
      if (opts.protocol) lines.push(`Sec-WebSocket-Protocol: ${opts.protocol}`);
      socket.write(lines.join('\r\n') + '\r\n\r\n');
    });
    socket.on('error', (e) => {
      if (!upgraded) fail(e);
      else if (ws) ws.closeReason ||= e.message;
    });
    socket.on('close', () => {
      if (!upgraded) fail(new Error('connection closed during upgrade'));
      else if (ws) ws.closed = true;
    });
  });
}

/** Checks a 101 response head; returns what is wrong, or null. */
function checkUpgrade(head: string, accept: string, protocol: string | undefined): string | null {
  const [status, ...lines] = head.split('\r\n');
  if (!/^HTTP\/1\.1 101\b/.test(status ?? '')) return `upgrade refused: ${status}`;
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  if (headers.get('sec-websocket-accept') !== accept) return 'bad Sec-WebSocket-Accept';
  const got = headers.get('sec-websocket-protocol');
  if (protocol && got !== protocol) return `server did not accept subprotocol ${protocol} (got ${got ?? 'none'})`;
  if (headers.has('sec-websocket-extensions')) return 'server negotiated an extension we do not support';
  return null;
}
