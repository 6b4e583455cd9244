/**
 * A minimal WebSocket client over node:net, for the load generator only.
 *
 * Why not `ws`: it parses every frame in JS through streams and events, which at millions of frames
 * per second makes the generator, not the server, the bottleneck. Here every socket reads through
 * `onread` into one shared buffer (no allocation per read, no stream machinery) and a
 * "count-only" socket only walks frame headers: it never copies or decodes a payload. A few
 * "decode" sockets copy whole messages out, for latency samples and for handshakes.
 *
 * Scope: RFC 6455 client side, no extensions (no permessage-deflate), no TLS.
 */
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import net from 'node:net';

export const OP_CONT = 0x0;
export const OP_TEXT = 0x1;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

export interface FrameEvents {
  /** A complete data message, in decode mode only. The buffer is the callee's to keep. */
  onMessage?(payload: Buffer, binary: boolean): void;
  /**
   * A complete single-frame data message shorter than `minCountBytes`, in both modes (so a
   * count-only socket can still answer a protocol-level ping, e.g. Engine.IO's `2`). Only read
   * when set; such messages are never counted. In decode mode onMessage gets them too.
   */
  onShortMessage?(payload: Buffer, binary: boolean): void;
  onPing?(payload: Buffer): void;
  onClose?(code: number, reason: string): void;
}

/**
 * A protocol that runs as a byte stream over the data frames (NATS over WebSocket: the server may
 * put several protocol messages into one frame, or split one over two). When a parser has one, the
 * payload bytes of every data frame go to it in order, in both modes, without being copied, and
 * the parser itself counts nothing: the stream counts messages (into `parser.count` and
 * `parser.bytes`) and decodes what it wants (see `StreamContext`).
 */
export interface PayloadStream {
  /** Bytes [start, end) of `chunk`: the next payload bytes of the data frames (unmasked). */
  push(chunk: Uint8Array, start: number, end: number): void;
}

/** What a PayloadStream gets from its socket. */
export interface StreamContext {
  /** The socket's frame parser: `count`, `bytes`, `decode` and `sampleEvery` apply to the stream's messages. */
  readonly parser: FrameParser;
  /** Hands a decoded message to the socket (its waitFor / onMessage), as a data message would be. */
  emit(payload: Buffer, binary: boolean): void;
  /** Sends a data message (binary frame) on the socket, e.g. a protocol-level pong. */
  send(data: Uint8Array): void;
}

export type PayloadStreamFactory = (ctx: StreamContext) => PayloadStream;

/**
 * Incremental parser of server-to-client frames. Feed it chunks as they arrive, in any split.
 * Both modes count complete data messages whose length is at least `minCountBytes` (so small
 * control-ish frames such as heartbeats can be left out of the count without decoding them).
 */
export class FrameParser {
  /** Complete data messages of at least `minCountBytes`. */
  count = 0;
  /** Payload bytes of the counted messages. */
  bytes = 0;
  /**
   * Decode mode copies each message out and calls `onMessage`. It may be switched between
   * messages (e.g. from inside onMessage after a handshake); the switch applies from the next frame.
   */
  decode: boolean;
  /** In decode mode, decode only every n-th data message (the others are only counted). */
  sampleEvery = 1;
  minCountBytes: number;
  /** Set to hand data payloads to a protocol stream instead of counting frames (see PayloadStream). */
  stream: PayloadStream | null = null;

  // A header split across chunks is gathered here (at most 2 + 8 + 4 bytes).
  private readonly head = Buffer.alloc(14);
  private headLen = 0;
  // The frame being read.
  private left = 0; // payload bytes still to come
  private frameLen = 0;
  private opcode = 0;
  private fin = false;
  private collect: Buffer | null = null; // payload copy target when collecting
  private collectPos = 0;
  private mask: Buffer | null = null; // servers must not mask, but tolerate it
  // The message being read (a message may be fragmented over several frames).
  private msgOpcode = 0;
  private msgCollect = false; // whether the current message is being decoded
  private msgShort = false; // whether it goes to onShortMessage (below minCountBytes, one frame)
  private msgIndex = 0;
  private msgLen = 0;
  private parts: Buffer[] = [];

  constructor(private readonly events: FrameEvents, opts: { decode: boolean; minCountBytes?: number }) {
    this.decode = opts.decode;
    this.minCountBytes = opts.minCountBytes ?? 0;
  }

  /** Consumes bytes [start, end) of `chunk`. Throws on a protocol error. */
  push(chunk: Uint8Array, start = 0, end = chunk.length): void {
    let i = start;
    while (i < end) {
      if (this.left > 0) {
        // Inside a payload: count-only skips it, collecting copies it.
        const n = Math.min(this.left, end - i);
        if (this.collect) this.copyPayload(chunk, i, n);
        else if (this.stream && this.opcode < 8) this.streamPayload(chunk, i, n);
        i += n;
        this.left -= n;
        if (this.left === 0) this.endFrame();
        continue;
      }
      if (this.headLen === 0 && end - i >= 2) {
        // Fast path: the whole header is in this chunk.
        const hl = headerLength(chunk[i + 1]!);
        if (end - i >= hl) {
          this.startFrame(chunk, i);
          i += hl;
          continue;
        }
      }
      // Slow path: gather the header byte by byte.
      this.head[this.headLen++] = chunk[i++]!;
      if (this.headLen >= 2 && this.headLen === headerLength(this.head[1]!)) {
        this.headLen = 0;
        this.startFrame(this.head, 0);
      }
    }
  }

  private startFrame(b: Uint8Array, o: number): void {
    const b0 = b[o]!;
    const b1 = b[o + 1]!;
    if (b0 & 0x70) throw new Error('reserved bits set (no extension was negotiated)');
    this.fin = (b0 & 0x80) !== 0;
    this.opcode = b0 & 0x0f;
    let len = b1 & 0x7f;
    let p = o + 2;
    if (len === 126) {
      len = (b[p]! << 8) | b[p + 1]!;
      p += 2;
    } else if (len === 127) {
      const hi = ((b[p]! << 24) >>> 0) + (b[p + 1]! << 16) + (b[p + 2]! << 8) + b[p + 3]!;
      const lo = ((b[p + 4]! << 24) >>> 0) + (b[p + 5]! << 16) + (b[p + 6]! << 8) + b[p + 7]!;
      if (hi > 0x1fffff) throw new Error('frame length beyond 2^53');
      len = hi * 2 ** 32 + lo;
      p += 8;
    }
    this.mask = b1 & 0x80 ? Buffer.from([b[p]!, b[p + 1]!, b[p + 2]!, b[p + 3]!]) : null;
    const control = this.opcode >= 8;
    if (control) {
      if (len > 125 || !this.fin) throw new Error('bad control frame');
      if (this.opcode > OP_PONG) throw new Error(`reserved opcode ${this.opcode}`);
    } else if (this.opcode > OP_BINARY) {
      throw new Error(`reserved opcode ${this.opcode}`);
    } else if (this.opcode !== OP_CONT) {
      // A new message: decode it or only count it (decided once for all its fragments).
      this.msgOpcode = this.opcode;
      this.msgShort = this.fin && len < this.minCountBytes && this.events.onShortMessage !== undefined;
      this.msgCollect = this.msgShort || (this.decode && ++this.msgIndex % this.sampleEvery === 0);
    }
    // Control frames are always read whole (ping needs its payload echoed, close its code); data
    // frames of a stream go to it as they come.
    this.collect = control || (this.msgCollect && !this.stream) ? Buffer.allocUnsafe(len) : null;
    this.collectPos = 0;
    this.left = len;
    this.frameLen = len;
    if (len === 0) this.endFrame();
  }

  private copyPayload(chunk: Uint8Array, i: number, n: number): void {
    const dst = this.collect!;
    if (this.mask) {
      for (let k = 0; k < n; k++) dst[this.collectPos + k] = chunk[i + k]! ^ this.mask[(this.collectPos + k) & 3]!;
    } else {
      dst.set(chunk.subarray(i, i + n), this.collectPos);
    }
    this.collectPos += n;
  }

  /** Payload bytes of a data frame, to the stream (unmasked first if the server masked them). */
  private streamPayload(chunk: Uint8Array, i: number, n: number): void {
    if (!this.mask) return this.stream!.push(chunk, i, i + n);
    const pos = this.frameLen - this.left;
    const b = Buffer.allocUnsafe(n);
    for (let k = 0; k < n; k++) b[k] = chunk[i + k]! ^ this.mask[(pos + k) & 3]!;
    this.stream!.push(b, 0, n);
  }

  private endFrame(): void {
    const payload = this.collect;
    this.collect = null;
    if (this.opcode >= 8) {
      if (this.opcode === OP_PING) this.events.onPing?.(payload!);
      else if (this.opcode === OP_CLOSE) {
        const code = payload!.length >= 2 ? payload!.readUInt16BE(0) : 1005;
        this.events.onClose?.(code, payload!.subarray(2).toString('utf8'));
      }
      return;
    }
    if (this.stream) return; // the stream counts and decodes
    if (this.msgShort) {
      // Below minCountBytes, never counted; to the short-message hook (and to onMessage in decode mode).
      const binary = this.msgOpcode === OP_BINARY;
      this.events.onShortMessage!(payload!, binary);
      if (this.decode) this.events.onMessage?.(payload!, binary);
      return;
    }
    this.msgLen += this.frameLen;
    if (payload) this.parts.push(payload);
    if (!this.fin) return;
    const len = this.msgLen;
    const parts = this.parts;
    this.msgLen = 0;
    this.parts = [];
    if (len >= this.minCountBytes) {
      this.count++;
      this.bytes += len;
    }
    if (parts.length > 0 && this.events.onMessage) {
      this.events.onMessage(parts.length === 1 ? parts[0]! : Buffer.concat(parts), this.msgOpcode === OP_BINARY);
    }
  }
}

/** Header length from the second header byte: 2, plus extended length, plus mask key. */
function headerLength(b1: number): number {
  const len7 = b1 & 0x7f;
  return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
}

// ---- client-to-server frames ------------------------------------------------------------------

// Mask keys come from a pool of random bytes, refilled when used up (a fresh key per frame, cheaply).
const maskPool = Buffer.alloc(4096);
let maskPos = maskPool.length;

/** One masked frame (clients must mask every frame, RFC 6455 5.3); `fin = false` starts or continues a fragmented message. */
export function encodeFrame(opcode: number, payload: Uint8Array, fin = true): Buffer {
  const len = payload.length;
  const hl = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(hl + 4 + len);
  out[0] = (fin ? 0x80 : 0) | (opcode & 0x0f);
  if (len < 126) out[1] = 0x80 | len;
  else if (len < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    out.writeUInt32BE(len >>> 0, 6);
  }
  if (maskPos + 4 > maskPool.length) {
    randomFillSync(maskPool);
    maskPos = 0;
  }
  maskPool.copy(out, hl, maskPos, maskPos + 4);
  maskPos += 4;
  for (let k = 0; k < len; k++) out[hl + 4 + k] = payload[k]! ^ out[hl + (k & 3)]!;
  return out;
}

// ---- the client -------------------------------------------------------------------------------

export interface ConnectOptions {
  host: string;
  port: number;
  /** Path and query, e.g. `/ws?sub=bench`. */
  path: string;
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

  constructor(readonly socket: net.Socket, opts: ConnectOptions) {
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
  const accept = createHash('sha1').update(key + GUID).digest('base64');
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

    const socket = net.connect({ host: opts.host, port: opts.port, onread: { buffer: readBuffer, callback: onRead } });
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
