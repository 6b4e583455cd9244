/**
 * WebSocket framing for the load generator, with no I/O: an incremental parser of server frames
 * and the encoder of (masked) client frames. raw-ws.ts puts them on a socket.
 *
 * The parser is built for millions of frames per second: a "count-only" parser only walks frame
 * headers and never copies or decodes a payload; "decode" mode copies whole messages out, for
 * latency samples and for handshakes.
 *
 * Scope: RFC 6455 client side, no extensions (no permessage-deflate).
 */
import { randomFillSync } from 'node:crypto';

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

  constructor(
    private readonly events: FrameEvents,
    opts: { decode: boolean; minCountBytes?: number },
  ) {
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
