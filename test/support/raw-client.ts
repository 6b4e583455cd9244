/**
 * A protocol-level test client: a real `ws` socket speaking frames directly (no SDK), with
 * awaitable frame matching so tests wait on events, never on sleeps.
 */
import WebSocket from 'ws';
import { codecFor, type Encoding, type ServerFrame, SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK } from '../../protocol/index.ts';

export interface RawClient {
  readonly ws: WebSocket;
  readonly frames: ServerFrame[];
  send(frame: object): void;
  sendRaw(data: Buffer | string): void;
  /** Resolves with the first frame (already received or future) matching `pred`. */
  next<T extends ServerFrame = ServerFrame>(pred: (f: ServerFrame) => boolean, timeoutMs?: number): Promise<T>;
  /** Resolves once `count` frames match `pred`. */
  collect(pred: (f: ServerFrame) => boolean, count: number, timeoutMs?: number): Promise<ServerFrame[]>;
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

export async function connectRaw(url: string, encoding: Encoding = 'msgpack', protocols?: string[]): Promise<RawClient> {
  const codec = codecFor(encoding);
  const ws = new WebSocket(url, protocols ?? [encoding === 'json' ? SUBPROTOCOL_JSON : SUBPROTOCOL_MSGPACK]);
  ws.binaryType = 'nodebuffer';
  const frames: ServerFrame[] = [];
  const waiters = new Set<() => void>();
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    frames.push(codec.decode(isBinary ? data : data.toString('utf8')) as ServerFrame);
    for (const w of [...waiters]) w();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => {
      resolve({ code, reason: reason.toString() });
      for (const w of [...waiters]) w();
    });
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });

  function waitFor<R>(check: () => R | undefined, what: string, timeoutMs: number): Promise<R> {
    return new Promise((resolve, reject) => {
      const attempt = () => {
        const r = check();
        if (r === undefined) return false;
        cleanup();
        resolve(r);
        return true;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${JSON.stringify(frames.slice(-5))}`));
      }, timeoutMs);
      const waiter = () => void attempt();
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(waiter);
      };
      waiters.add(waiter);
      attempt();
    });
  }

  return {
    ws,
    frames,
    send: (frame) => ws.send(codec.encode(frame)),
    sendRaw: (data) => ws.send(data),
    next: (pred, timeoutMs = 5000) => waitFor(() => frames.find(pred) as never, 'a matching frame', timeoutMs),
    collect: (pred, count, timeoutMs = 10_000) =>
      waitFor(
        () => {
          const got = frames.filter(pred);
          return got.length >= count ? got : undefined;
        },
        `${count} matching frames`,
        timeoutMs,
      ),
    closed,
    close: () => ws.close(),
  };
}

/** Connects and completes the handshake; returns the client and its welcome. */
export async function connectHello(url: string, encoding: Encoding = 'msgpack', session?: { id: string; key: string }) {
  const c = await connectRaw(url, encoding);
  c.send({ t: 'hello', v: 1, ...(session ? { session } : {}) });
  const welcome = await c.next<Extract<ServerFrame, { t: 'welcome' }>>((f) => f.t === 'welcome');
  return { c, welcome };
}

export const isMsg = (topic: string) => (f: ServerFrame) => f.t === 'msg' && f.topic === topic;
export const isReply = (id: number) => (f: ServerFrame) => 'id' in f && f.id === id;
