/**
 * The Symphonic gateway as a target: gateway/main.ts with its msgpack protocol. The engine is
 * chosen by environment, so the NATS engine becomes another `gatewayTarget(...)` in index.ts.
 */
import { msgpackCodec } from '../../../protocol/codec.ts';
import { encodeEnvelope } from '../../../protocol/envelope.ts';
import { PROTOCOL_VERSION, SUBPROTOCOL_MSGPACK } from '../../../protocol/version.ts';
import { startServer } from '../../lib/proc.ts';
import type { RawWs } from '../../lib/raw-ws.ts';
import { REPO_ROOT, nodeTs } from './paths.ts';
import { BENCH_NATS_PREFIX, benchInSubject, startWithNats } from './nats.ts';
import type { BenchClient, Target } from './types.ts';

/** Size the delivered `msg` frame is padded to (the "100-byte messages"). */
const FRAME_BYTES = 100;
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** The first element of a compact `msg` array (docs/protocol.md section 7, "msg, compact"). */
const COMPACT_MSG = 1;

/** The bytes of `t: <type>` inside a msgpack frame (a map's key and value), which the native sink waits for. */
const typeField = (type: string): Uint8Array => (msgpackCodec.encode({ t: type }) as Uint8Array).subarray(1);

type Frame = Record<string, unknown>;

function decode(p: Buffer): Frame | undefined {
  try {
    const f = msgpackCodec.decode(p);
    return typeof f === 'object' && f !== null ? (f as Frame) : undefined;
  } catch {
    return undefined;
  }
}

/** Sends `frame` and waits for the reply of type `t`; an error frame fails the wait. */
async function request(ws: RawWs, frame: Frame, t: string): Promise<Frame> {
  const reply = ws.waitFor((p) => {
    const f = decode(p);
    return f && (f.t === t || f.t === 'error') ? f : undefined;
  }, HANDSHAKE_TIMEOUT_MS);
  ws.send(msgpackCodec.encode(frame) as Uint8Array);
  const f = await reply;
  if (f.t === 'error') throw new Error(`gateway refused ${String(frame.t)}: ${f.code} ${String(f.message)}`);
  return f;
}

export interface GatewayTargetOptions {
  /** The target compared with (see Target.baseline) and the CPU-per-delivery ratio of the verdict. */
  baseline?: string;
  maxCpuRatio?: number;
  /**
   * The NATS engine: a nats-server is started for the run (targets/nats.ts), the gateway pointed
   * at it, and the publisher publishes the bus envelope straight to `<prefix>.in.<topic>` over
   * JetStream, as a backend does (no publisher socket, no `pub` frames).
   */
  nats?: boolean;
  /**
   * Subscribers ask for compact `msg` frames (`hello.compact`, msgpack arrays naming the topic by
   * alias), as the SDK does by default. Default true; false gives the plain map frames.
   */
  compact?: boolean;
}

export function gatewayTarget(name: string, description: string, env: Record<string, string>, opts: GatewayTargetOptions = {}): Target {
  const startGateway = (port: number, extraEnv: Record<string, string>) =>
    startServer({
      ...nodeTs('gateway/main.ts'),
      cwd: REPO_ROOT,
      env: { ...env, ...extraEnv, PORT: String(port), HOST: '127.0.0.1' },
      port,
    });
  return {
    name,
    description,
    baseline: opts.baseline,
    maxCpuRatio: opts.maxCpuRatio,
    start: (port) =>
      opts.nats
        ? startWithNats((natsUrl) => startGateway(port, { SYMPHONIC_bus__nats__servers: natsUrl, SYMPHONIC_bus__nats__prefix: BENCH_NATS_PREFIX }))
        : startGateway(port, {}),
    client(topic): BenchClient {
      const compact = opts.compact !== false;
      // The topic's alias on this gateway (one per topic), from the sampled sockets' `subscribed`.
      let alias: number | undefined;
      // The publish carries data = {ts, i, p}: send time, sequence and padding sized so that the
      // delivered frame (compact: [1, alias, seq, seq - prev, kind, data, ts]; else
      // {t:'msg', topic, seq, prev, kind, data, ts}) is about FRAME_BYTES long.
      const probe = (pad: string) => {
        const data = { ts: 12345.678, i: 50_000, p: pad };
        const frame = compact
          ? [COMPACT_MSG, 1, 50_000, 1, 0, data, Date.now()]
          : { t: 'msg', topic, seq: 50_000, prev: 49_999, kind: 'event', data, ts: Date.now() };
        return (msgpackCodec.encode(frame) as Uint8Array).length;
      };
      const pad = 'x'.repeat(Math.max(0, FRAME_BYTES - probe('')));
      const hello = { t: 'hello', v: PROTOCOL_VERSION, client: 'symphonic-bench', ...(compact ? { compact: true } : {}) };
      const sub = { t: 'sub', id: 1, topic };
      const client: BenchClient = {
        subscriberPath: '/ws',
        publisherPath: '/ws',
        subprotocol: SUBPROTOCOL_MSGPACK,
        // Heartbeats ({t:'hb'}, ~5 bytes) and other small frames stay out of the count.
        minCountBytes: 64,
        async subscribe(ws) {
          const welcome = await request(ws, hello, 'welcome');
          if (compact && welcome.compact !== true) throw new Error('the gateway did not grant compact msg frames (hello.compact)');
          const subscribed = await request(ws, sub, 'subscribed');
          if (!compact) return;
          if (typeof subscribed.alias !== 'number') throw new Error('subscribed without an alias on a compact connection');
          if (alias !== undefined && alias !== subscribed.alias) throw new Error(`two aliases for ${topic}: ${alias} and ${subscribed.alias}`);
          alias = subscribed.alias;
        },
        // The same handshake for the native sink: it waits for the frames' `t`; an `error` frame fails.
        sink: {
          steps: [
            { send: msgpackCodec.encode(hello) as Uint8Array, expect: { bytes: typeField('welcome'), at: 'anywhere' } },
            { send: msgpackCodec.encode(sub) as Uint8Array, expect: { bytes: typeField('subscribed'), at: 'anywhere' } },
          ],
          fail: { bytes: typeField('error'), at: 'anywhere' },
        },
        async preparePublisher(ws) {
          await request(ws, { t: 'hello', v: PROTOCOL_VERSION, client: 'symphonic-bench-pub' }, 'welcome');
        },
        encodePublish(sentAt, seq) {
          // No id: fire-and-forget, no ack per message.
          return msgpackCodec.encode({ t: 'pub', topic, kind: 'event', data: { ts: sentAt, i: seq, p: pad } }) as Uint8Array;
        },
        sentAt(p) {
          const f = decode(p);
          let data: { ts?: unknown } | undefined;
          if (compact) {
            if (Array.isArray(f) && f[0] === COMPACT_MSG && f[1] === alias) data = f[5] as typeof data;
          } else if (f?.t === 'msg' && f.topic === topic) data = f.data as typeof data;
          return typeof data?.ts === 'number' ? data.ts : undefined;
        },
        publisherNotice(p) {
          const f = decode(p);
          if (!f) return 'undecodable frame';
          return f.t === 'hb' || f.t === 'ack' ? undefined : `${String(f.t)}: ${f.code ?? ''} ${String(f.message ?? '')}`.trim();
        },
      };
      if (!opts.nats) return client;
      // Published as a backend does: the bus envelope {kind, data, ts} (protocol/envelope.ts);
      // the gateway delivers it as the same msg frame as a client `pub`.
      return {
        ...client,
        natsSubject: benchInSubject(topic),
        encodePublish: (sentAt, seq) => encodeEnvelope('event', { ts: sentAt, i: seq, p: pad }, Math.floor(sentAt)),
      };
    },
  };
}
