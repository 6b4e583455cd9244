/**
 * An in-memory WebSocket for unit tests of the client's logic: the test plays the server, frame by
 * frame, synchronously. Server frames are encoded with msgpackr (the gateway's codec), so every
 * client test also checks the SDK's own msgpack decoder against it.
 */
import { Packr, Unpackr } from 'msgpackr';
import type { SocketLike, WebSocketConstructor } from '../../../sdk/transport.ts';

const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export type Frame = Record<string, unknown> & { t: string };

export class FakeSocket implements SocketLike {
  binaryType = 'blob';
  protocol = '';
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  /** Frames the client sent, decoded. */
  readonly sent: Frame[] = [];
  closedByClient: { code?: number; reason?: string } | undefined;

  constructor(
    readonly url: string,
    readonly protocols: string[],
  ) {}

  send(data: string | Uint8Array): void {
    if (this.closedByClient) throw new Error('send on a closed socket');
    this.sent.push((typeof data === 'string' ? JSON.parse(data) : unpackr.unpack(data)) as Frame);
  }

  close(code?: number, reason?: string): void {
    this.closedByClient = { code, reason };
  }

  // ---- the server's side ----

  open(): void {
    this.protocol = this.protocols[0] ?? '';
    this.onopen?.({});
  }

  deliver(frame: Frame): void {
    const json = this.protocol.endsWith('.json');
    const bytes = packr.pack(frame);
    this.onmessage?.({ data: json ? JSON.stringify(frame) : bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) });
  }

  serverClose(code: number, reason = ''): void {
    this.onclose?.({ code, reason });
  }

  /** Sent frames of one type. */
  framesOf(t: string): Frame[] {
    return this.sent.filter((f) => f.t === t);
  }

  lastOf(t: string): Frame {
    const all = this.framesOf(t);
    const f = all[all.length - 1];
    if (!f) throw new Error(`no ${t} frame was sent; sent: ${this.sent.map((s) => s.t).join(',')}`);
    return f;
  }
}

export class FakeServer {
  readonly sockets: FakeSocket[] = [];
  readonly WebSocket: WebSocketConstructor;

  constructor() {
    const sockets = this.sockets;
    this.WebSocket = class extends FakeSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols === undefined ? [] : Array.isArray(protocols) ? protocols : [protocols]);
        sockets.push(this);
      }
    };
  }

  get last(): FakeSocket {
    const s = this.sockets[this.sockets.length - 1];
    if (!s) throw new Error('no socket was opened');
    return s;
  }

  /** Opens the newest socket and answers its hello with a welcome. */
  accept(welcome: Partial<Frame> = {}): FakeSocket {
    const s = this.last;
    s.open();
    s.deliver({ t: 'welcome', v: 1, session: 'sess-1', key: 'key-1', resumed: false, heartbeat: 1000, node: 'node-a', ...welcome });
    return s;
  }
}

/** A publication as the server sends it. */
export function msg(topic: string, seq: number, prev: number, kind: 'event' | 'set' | 'patch', data: unknown): Frame {
  return { t: 'msg', topic, seq, prev, kind, data, ts: 1_700_000_000_000 + seq };
}
