/**
 * One generator process of the memory benchmark (memory.ts forks it): opens `count` idle
 * connections to a target, each through the target's handshake and one subscription, then holds
 * them until told to exit. Speaks with the parent over the fork IPC channel:
 *
 *   parent -> {t:'open', host, port, target, topic, count, concurrency}
 *   child  -> {t:'opened', opened, failed, firstError, ms}
 *   parent -> {t:'status'}   child -> {t:'status', open}
 *   parent -> {t:'exit'}     (the child destroys its sockets and exits)
 *
 * The gateway targets connect as the SDK does by default: msgpack, `hello` with `compact: true`,
 * then `sub`; the others through their target's own `subscribe` (targets/).
 */
import { msgpackCodec } from '../../protocol/codec.ts';
import { PROTOCOL_VERSION, SUBPROTOCOL_MSGPACK } from '../../protocol/version.ts';
import { connectRawWs, type RawWs } from '../lib/raw-ws.ts';
import { TARGETS } from './targets/index.ts';

export interface OpenRequest {
  t: 'open';
  host: string;
  port: number;
  target: string;
  topic: string;
  count: number;
  concurrency: number;
}

export type ClientsReply = { t: 'opened'; opened: number; failed: number; firstError?: string; ms: number } | { t: 'status'; open: number };

const TIMEOUT_MS = 30_000;
type Frame = Record<string, unknown>;

/** Sends a msgpack frame and waits for the reply of type `t` (an error frame fails). */
async function request(ws: RawWs, frame: Frame, t: string): Promise<void> {
  const reply = ws.waitFor((p) => {
    const f = msgpackCodec.decode(p) as Frame;
    return f.t === t || f.t === 'error' ? f : undefined;
  }, TIMEOUT_MS);
  ws.send(msgpackCodec.encode(frame) as Uint8Array);
  const f = await reply;
  if (f.t === 'error') throw new Error(`gateway refused ${String(frame.t)}: ${String(f.code)} ${String(f.message)}`);
}

function opener(r: OpenRequest): () => Promise<RawWs> {
  const gateway = r.target.startsWith('gateway');
  const client = TARGETS[r.target]!.client(r.topic);
  return async () => {
    const ws = await connectRawWs({
      host: r.host,
      port: r.port,
      path: client.subscriberPath,
      protocol: gateway ? SUBPROTOCOL_MSGPACK : client.subprotocol,
      decode: true,
      timeoutMs: TIMEOUT_MS,
    });
    try {
      if (gateway) {
        await request(ws, { t: 'hello', v: PROTOCOL_VERSION, compact: true }, 'welcome');
        await request(ws, { t: 'sub', id: 1, topic: r.topic }, 'subscribed');
      } else {
        await client.subscribe(ws);
      }
    } catch (e) {
      ws.destroy();
      throw e;
    }
    // Idle from here: heartbeats and pings are read (pongs answered), nothing is kept.
    ws.onMessage = () => {};
    ws.parser.decode = false;
    return ws;
  };
}

const sockets: RawWs[] = [];

async function openAll(r: OpenRequest): Promise<ClientsReply> {
  const t0 = performance.now();
  const open = opener(r);
  let next = 0;
  let failed = 0;
  let firstError: string | undefined;
  const worker = async () => {
    while (next < r.count) {
      next++;
      try {
        sockets.push(await open());
      } catch (e) {
        failed++;
        firstError ??= (e as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(r.concurrency, r.count) }, worker));
  return { t: 'opened', opened: sockets.length, failed, ...(firstError ? { firstError } : {}), ms: Math.round(performance.now() - t0) };
}

const reply = (m: ClientsReply) => process.send!(m);

process.on('message', (m: OpenRequest | { t: 'status' } | { t: 'exit' }) => {
  if (m.t === 'open') void openAll(m).then(reply);
  else if (m.t === 'status') reply({ t: 'status', open: sockets.filter((s) => !s.closed).length });
  else if (m.t === 'exit') {
    for (const s of sockets) s.destroy();
    process.exit(0);
  }
});
// The parent went away: nothing to hold the sockets for.
process.on('disconnect', () => process.exit(0));
