/**
 * The client side of the NATS text protocol as a byte stream, for the load generator's
 * nats-server WebSocket target (a PayloadStream of lib/raw-ws.ts).
 *
 * nats-server writes its outbound buffer to a WebSocket as it would to TCP: one frame may carry
 * several `MSG`s (it does, under load), and a `MSG` may be split over two frames. So messages are
 * counted by parsing the protocol, not by counting frames. It stays cheap: a protocol line is
 * found with a short byte loop (a `MSG` line is ~25 bytes), the size is read from the end of a
 * `MSG` line, and the payload is then skipped without being looked at (copied only when the
 * socket samples it). Every `MSG` counts one delivery; `PING` is answered with `PONG` in both
 * modes; other lines (`PONG`, `INFO`, `-ERR`, `+OK`) are handed to the socket as text messages,
 * `MSG` payloads that are sampled as binary ones.
 */
import type { PayloadStream, StreamContext } from './ws-frames.ts';

const CR = 0x0d;
const LF = 0x0a;
/** Longest protocol line accepted (INFO is the longest, well under this). */
const MAX_LINE = 64 * 1024;
const PONG = Buffer.from('PONG\r\n');

export class NatsStream implements PayloadStream {
  /** A line split over reads or frames is gathered here. */
  private line = Buffer.allocUnsafe(256);
  private lineLen = 0;
  /** Bytes of the current MSG still to come: payload, then its CRLF. */
  private left = 0;
  /** Payload copy of a sampled MSG, and its length (without the CRLF). */
  private collect: Buffer | null = null;
  private collectPos = 0;
  private msgIndex = 0;

  constructor(private readonly ctx: StreamContext) {}

  push(chunk: Uint8Array, start: number, end: number): void {
    let i = start;
    while (i < end) {
      if (this.left > 0) {
        const n = Math.min(this.left, end - i);
        if (this.collect) {
          // Copy what belongs to the payload (not its trailing CRLF).
          const room = this.collect.length - this.collectPos;
          const k = Math.min(room, n);
          if (k > 0) {
            this.collect.set(chunk.subarray(i, i + k), this.collectPos);
            this.collectPos += k;
          }
        }
        i += n;
        this.left -= n;
        if (this.left === 0 && this.collect) {
          const p = this.collect;
          this.collect = null;
          this.ctx.emit(p, true);
        }
        continue;
      }
      // A protocol line: find its LF.
      let j = i;
      while (j < end && chunk[j] !== LF) j++;
      if (j === end) {
        this.append(chunk, i, end);
        return;
      }
      if (this.lineLen === 0) this.onLine(chunk, i, j);
      else {
        this.append(chunk, i, j);
        const len = this.lineLen;
        this.lineLen = 0;
        this.onLine(this.line, 0, len);
      }
      i = j + 1;
    }
  }

  private append(chunk: Uint8Array, from: number, to: number): void {
    const n = to - from;
    if (this.lineLen + n > this.line.length) {
      if (this.lineLen + n > MAX_LINE) throw new Error('NATS protocol line too long');
      const grown = Buffer.allocUnsafe(Math.min(MAX_LINE, Math.max(2 * this.line.length, this.lineLen + n)));
      this.line.copy(grown, 0, 0, this.lineLen);
      this.line = grown;
    }
    this.line.set(chunk.subarray(from, to), this.lineLen);
    this.lineLen += n;
  }

  /** A line [s, e) without its LF (a CR before it is dropped). */
  private onLine(b: Uint8Array, s: number, e: number): void {
    if (e > s && b[e - 1] === CR) e--;
    if (e - s >= 6 && b[s] === 0x4d && b[s + 1] === 0x53 && b[s + 2] === 0x47 && b[s + 3] === 0x20) {
      // MSG <subject> <sid> [reply-to] <#bytes>: the size is the last field.
      let size = 0;
      let mul = 1;
      let k = e - 1;
      while (k > s && b[k]! >= 0x30 && b[k]! <= 0x39) {
        size += (b[k]! - 0x30) * mul;
        mul *= 10;
        k--;
      }
      if (mul === 1 || b[k] !== 0x20) throw new Error('bad MSG line');
      const p = this.ctx.parser;
      p.count++;
      p.bytes += e - s + 2 + size + 2; // the whole MSG on the wire: line, CRLF, payload, CRLF
      this.left = size + 2;
      if (p.decode && ++this.msgIndex % p.sampleEvery === 0) {
        this.collect = Buffer.allocUnsafe(size);
        this.collectPos = 0;
      }
      return;
    }
    if (e - s === 4 && b[s] === 0x50 && b[s + 1] === 0x49 && b[s + 2] === 0x4e && b[s + 3] === 0x47) {
      this.ctx.send(PONG); // PING
      return;
    }
    if (e === s) return;
    this.ctx.emit(Buffer.from(b.subarray(s, e)), false);
  }
}

/** Protocol lines for the client side. */
export const natsConnectLine = (name: string): string =>
  `CONNECT ${JSON.stringify({ verbose: false, pedantic: false, protocol: 1, headers: false, no_responders: false, name })}\r\n`;

/** Whether a line handed to the socket is the given protocol verb (e.g. `PONG`, `-ERR`). */
export function isNatsLine(payload: Buffer, binary: boolean, verb: string): boolean {
  return !binary && payload.length >= verb.length && payload.toString('latin1', 0, verb.length) === verb;
}
