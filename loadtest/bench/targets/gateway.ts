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
      // The publish carries data = {ts, i, p}: send time, sequence and padding sized so that the
      // delivered frame {t:'msg', topic, seq, prev, kind, data, ts} is about FRAME_BYTES long.
      const probe = (pad: string) =>
        (
          msgpackCodec.encode({
            t: 'msg',
            topic,
            seq: 50_000,
            prev: 49_999,
            kind: 'event',
            data: { ts: 12345.678, i: 50_000, p: pad },
            ts: Date.now(),
          }) as Uint8Array
        ).length;
      const pad = 'x'.repeat(Math.max(0, FRAME_BYTES - probe('')));
      const client: BenchClient = {
        subscriberPath: '/ws',
        publisherPath: '/ws',
        subprotocol: SUBPROTOCOL_MSGPACK,
        // Heartbeats ({t:'hb'}, ~5 bytes) and other small frames stay out of the count.
        minCountBytes: 64,
        async subscribe(ws) {
          await request(ws, { t: 'hello', v: PROTOCOL_VERSION, client: 'symphonic-bench' }, 'welcome');
          await request(ws, { t: 'sub', id: 1, topic }, 'subscribed');
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
          const data = f?.data as { ts?: unknown } | undefined;
          return f?.t === 'msg' && f.topic === topic && typeof data?.ts === 'number' ? data.ts : undefined;
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
