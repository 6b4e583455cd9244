/**
 * Peer target: Socket.IO v4 (socketio-server.ts), rooms named by the topic. The generator speaks
 * Engine.IO v4 / Socket.IO v5 over the raw socket, WebSocket transport only:
 *
 *   GET /socket.io/?EIO=4&transport=websocket
 *   server `0{"sid":...,"pingInterval":...}` (open)  ->  client `40` (connect to `/`)  ->  server `40{"sid":...}`
 *   client `42["sub","<topic>"]`  ->  server `42["subscribed","<topic>"]`
 *   publisher `42["pub","<topic>","<data>"]`  ->  every subscriber `42["m","<data>"]`
 *   server `2` (ping)  ->  client `3` (pong), on every socket, count-only ones too (onShortMessage)
 *
 * The payload is text: a binary one would make Socket.IO send two frames per event (a
 * placeholder packet, then the attachment). `<data>` is `<send time, ms, 3 decimals>|<seq, 10
 * digits>|<padding>`, sized so that the delivered frame is exactly FRAME_BYTES (100) bytes, one
 * frame per delivery. Count-only sockets count frames of at least 64 bytes: pings (`2`, 1 byte)
 * and the handshake replies are shorter (the open packet, ~100 bytes, comes once per socket
 * before anything is measured).
 */
import { startServer } from '../../lib/proc.ts';
import type { RawWs } from '../../lib/raw-ws.ts';
import { REPO_ROOT, nodeTs } from './paths.ts';
import type { BenchClient, Target } from './types.ts';

/** Size of a delivered `42["m","<data>"]` frame. */
export const FRAME_BYTES = 100;
const HANDSHAKE_TIMEOUT_MS = 10_000;
const PATH = '/socket.io/?EIO=4&transport=websocket';
/** `42["m","` : what precedes the data in a delivered frame. */
const DELIVERY_PREFIX = '42["m","';
const TS_CHARS = 17; // 1764860000000.123
const SEQ_CHARS = 10;
const PAD = 'x'.repeat(FRAME_BYTES - DELIVERY_PREFIX.length - 2 - (TS_CHARS + 1 + SEQ_CHARS + 1));

const text = (p: Buffer) => p.toString('latin1');

/** Engine.IO open, then the Socket.IO connect to the main namespace. */
async function connectNamespace(ws: RawWs): Promise<void> {
  await ws.waitFor((p, binary) => (!binary && p[0] === 0x30 /* 0 */ ? true : undefined), HANDSHAKE_TIMEOUT_MS);
  const reply = ws.waitFor((p, binary) => (!binary && p[0] === 0x34 && (p[1] === 0x30 || p[1] === 0x34) ? text(p) : undefined), HANDSHAKE_TIMEOUT_MS);
  ws.send('40');
  const r = await reply;
  if (r.startsWith('44')) throw new Error(`socket.io refused the connection: ${r}`);
}

/** The data of one publish: send time, sequence, padding (fixed width, so every frame has the same size). */
export function socketioData(sentAt: number, seq: number): string {
  return `${sentAt.toFixed(3).padStart(TS_CHARS, '0')}|${String(seq >>> 0).padStart(SEQ_CHARS, '0')}|${PAD}`;
}

/** The send time in a delivered `42["m","<data>"]` frame, or undefined. */
export function socketioSentAt(p: Buffer): number | undefined {
  if (p.length !== FRAME_BYTES || p[0] !== 0x34 || p[1] !== 0x32 || p[4] !== 0x6d /* m */) return undefined;
  const o = DELIVERY_PREFIX.length;
  if (p[o + TS_CHARS] !== 0x7c /* | */) return undefined;
  const ts = Number(p.toString('latin1', o, o + TS_CHARS));
  return Number.isFinite(ts) ? ts : undefined;
}

export function socketioClient(topic: string): BenchClient {
  const pubPrefix = `42${JSON.stringify(['pub', topic]).slice(0, -1)},"`;
  return {
    subscriberPath: PATH,
    publisherPath: PATH,
    minCountBytes: 64,
    textPublish: true,
    onShortMessage(ws, p, binary) {
      if (!binary && p.length === 1 && p[0] === 0x32) ws.send('3'); // Engine.IO ping -> pong
    },
    // The same handshake for the native sink: open packet, `40` -> `40{...}` (`44`: refused), sub -> subscribed.
    sink: {
      steps: [
        { expect: { bytes: '0', at: 'start' } },
        { send: '40', expect: { bytes: '40', at: 'start' } },
        { send: `42${JSON.stringify(['sub', topic])}`, expect: { bytes: '42["subscribed"', at: 'start' } },
      ],
      fail: { bytes: '44', at: 'start' },
      ping: { match: '2', reply: '3' },
    },
    async subscribe(ws) {
      await connectNamespace(ws);
      const done = ws.waitFor((p, binary) => (!binary && text(p).startsWith('42["subscribed"') ? true : undefined), HANDSHAKE_TIMEOUT_MS);
      ws.send(`42${JSON.stringify(['sub', topic])}`);
      await done;
    },
    async preparePublisher(ws) {
      await connectNamespace(ws);
    },
    encodePublish(sentAt, seq) {
      return Buffer.from(`${pubPrefix}${socketioData(sentAt, seq)}"]`, 'latin1');
    },
    sentAt: socketioSentAt,
    publisherNotice(p) {
      const s = text(p);
      // Pings (answered by onShortMessage) and handshake packets are not problems.
      if (s === '2' || s === '3' || s.startsWith('0{') || s.startsWith('40')) return undefined;
      return `unexpected packet to the publisher: ${s.slice(0, 80)}`;
    },
  };
}

export const socketioTarget: Target = {
  name: 'socketio',
  description: 'Socket.IO 4 rooms, websocket transport only (node:http + ws engine), io.to(room).emit',
  baseline: 'bare',
  peer: true,
  start: (port) => startServer({ ...nodeTs('loadtest/bench/socketio-server.ts'), cwd: REPO_ROOT, env: { PORT: String(port), HOST: '127.0.0.1' }, port }),
  client: socketioClient,
};
