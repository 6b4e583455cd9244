/**
 * One generator process of scale.ts (driven over IPC, see lib/fleet.ts): opens its share of the
 * connections, each from its assigned local address to its assigned gateway, `hello` with
 * `compact: true` (as the SDK does by default) and one `sub`; then counts the messages each socket
 * receives without decoding them (count-only raw sockets), except a few sampled sockets per
 * process that decode every message and check the numbering (1, 2, 3... per topic) and latency.
 *
 * Commands (replies in brackets):
 *   {type:'connect', ...ConnectPlan}  [connected]   progress notices {type:'progress', done, failed} meanwhile
 *   {type:'counts', owed: number[]}   [counts]      per-socket received counts against what each topic was owed
 *   {type:'close'}                    [closed]
 */
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { msgpackCodec } from '../../protocol/codec.ts';
import { PROTOCOL_VERSION, SUBPROTOCOL_MSGPACK } from '../../protocol/version.ts';
import { notifyParent, serveParent, type ChildMessage } from '../lib/fleet.ts';
import { percentile } from '../lib/percentile.ts';
import { sleep } from '../lib/proc.ts';
import { connectRawWs, type RawWs } from '../lib/raw-ws.ts';

/** Delivered frames at least this long are counted: a message (~66 bytes with its padding), never a heartbeat (~5). */
export const MIN_COUNT_BYTES = 40;

export interface ConnectPlan {
  host: string;
  ports: number[];
  topics: string[];
  addresses: string[];
  /** Per connection of this process: indices into ports, topics and addresses. */
  gw: number[];
  topic: number[];
  addr: number[];
  /** Handshakes (connect, upgrade, hello/welcome, sub/subscribed) in flight at most. */
  window: number;
  /** New connections per second at most (this process's share); 0: only the window paces. */
  ratePerSec: number;
  /** Sockets of this process that decode every message (spread over the topics). */
  samples: number;
  handshakeTimeoutMs: number;
}

interface Sample {
  topic: number;
  last: number;
  gaps: number;
  latencies: number[];
}

/** This process's event-loop delay since its connections were all open: a generator that reads late shows here. */
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
/** Garbage-collection pauses since the connections were all open (a long one delays every socket's reads). */
const gc = { count: 0, totalMs: 0, maxMs: 0, on: false };
new PerformanceObserver((list) => {
  if (!gc.on) return;
  for (const e of list.getEntries()) {
    gc.count++;
    gc.totalMs += e.duration;
    gc.maxMs = Math.max(gc.maxMs, e.duration);
  }
}).observe({ entryTypes: ['gc'] });
const sockets: RawWs[] = [];
const socketTopic: number[] = [];
const samples: Sample[] = [];

type Frame = Record<string, unknown>;
const decode = (p: Buffer): Frame | undefined => {
  try {
    const f = msgpackCodec.decode(p);
    return typeof f === 'object' && f !== null && !Array.isArray(f) ? (f as Frame) : undefined;
  } catch {
    return undefined;
  }
};

async function request(ws: RawWs, frame: Frame, t: string, timeoutMs: number): Promise<Frame> {
  const reply = ws.waitFor((p) => {
    const f = decode(p);
    return f && (f.t === t || f.t === 'error') ? f : undefined;
  }, timeoutMs);
  ws.send(msgpackCodec.encode(frame) as Uint8Array);
  const f = await reply;
  if (f.t === 'error') throw new Error(`${String(frame.t)} refused: ${f.code} ${String(f.message)}`);
  return f;
}

/** A sampled socket decodes every compact `msg` ([1, alias, seq, dseq, kind, data, ts]) and checks the numbering. */
function sampleReader(s: Sample): (p: Buffer) => void {
  return (p) => {
    let f: unknown;
    try {
      f = msgpackCodec.decode(p);
    } catch {
      return;
    }
    if (!Array.isArray(f) || f[0] !== 1) return;
    const n = (f[5] as { n?: number }).n ?? -1;
    if (n !== s.last + 1) s.gaps++;
    s.last = n;
    s.latencies.push(Date.now() - (f[6] as number));
  };
}

async function open(plan: ConnectPlan, i: number, sample: boolean): Promise<number> {
  const t0 = performance.now();
  const ws = await connectRawWs({
    host: plan.host,
    port: plan.ports[plan.gw[i]!]!,
    localAddress: plan.addresses[plan.addr[i]!]!,
    path: '/ws',
    protocol: SUBPROTOCOL_MSGPACK,
    decode: true,
    minCountBytes: MIN_COUNT_BYTES,
    timeoutMs: plan.handshakeTimeoutMs,
  });
  try {
    const welcome = await request(ws, { t: 'hello', v: PROTOCOL_VERSION, compact: true }, 'welcome', plan.handshakeTimeoutMs);
    if (welcome.compact !== true) throw new Error('compact msg frames not granted');
    await request(ws, { t: 'sub', id: 1, topic: plan.topics[plan.topic[i]!]! }, 'subscribed', plan.handshakeTimeoutMs);
  } catch (e) {
    ws.destroy();
    throw e;
  }
  // Nothing is published before every socket is subscribed: from here on, counted frames are messages.
  ws.parser.count = 0;
  ws.parser.bytes = 0;
  if (sample) {
    const s: Sample = { topic: plan.topic[i]!, last: 0, gaps: 0, latencies: [] };
    samples.push(s);
    ws.onMessage = sampleReader(s);
  } else {
    ws.parser.decode = false;
  }
  sockets.push(ws);
  socketTopic.push(plan.topic[i]!);
  return performance.now() - t0;
}

async function connectAll(plan: ConnectPlan): Promise<ChildMessage> {
  const n = plan.gw.length;
  const t0 = performance.now();
  const handshakeMs: number[] = [];
  const errors = new Map<string, number>();
  let next = 0;
  let failed = 0;
  const sampleEvery = plan.samples > 0 ? Math.max(1, Math.floor(n / plan.samples)) : 0;
  const progress = setInterval(() => notifyParent({ type: 'progress', done: handshakeMs.length, failed }), 500);
  const lane = async () => {
    while (next < n) {
      const i = next++;
      if (plan.ratePerSec > 0) {
        const due = t0 + (i * 1000) / plan.ratePerSec;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
      }
      try {
        handshakeMs.push(await open(plan, i, sampleEvery > 0 && i % sampleEvery === 0));
      } catch (e) {
        failed++;
        const msg = (e as Error).message;
        errors.set(msg, (errors.get(msg) ?? 0) + 1);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(plan.window, n) }, lane));
  clearInterval(progress);
  loopDelay.reset();
  loopDelay.enable();
  gc.on = true;
  handshakeMs.sort((a, b) => a - b);
  // What the kernel actually bound, as a check of the plan's spread.
  const bound = new Set(sockets.map((ws) => ws.socket.localAddress));
  return {
    type: 'connected',
    ok: handshakeMs.length,
    failed,
    errors: [...errors].slice(0, 5).map(([m, k]) => `${k}x ${m}`),
    ms: Math.round(performance.now() - t0),
    localAddresses: bound.size,
    handshakeMs: { p50: percentile(handshakeMs, 50), p99: percentile(handshakeMs, 99), max: handshakeMs[handshakeMs.length - 1] ?? 0 },
  };
}

function counts(owed: number[]): ChildMessage {
  const topics = owed.length;
  const perTopic = Array.from({ length: topics }, () => ({ sockets: 0, received: 0, complete: 0, short: 0, extra: 0, lost: 0, surplus: 0 }));
  const closeCodes: Record<string, number> = {};
  let closed = 0;
  for (let k = 0; k < sockets.length; k++) {
    const ws = sockets[k]!;
    const t = perTopic[socketTopic[k]!]!;
    const got = ws.parser.count;
    const due = owed[socketTopic[k]!]!;
    t.sockets++;
    t.received += got;
    if (got === due) t.complete++;
    else if (got < due) {
      t.short++;
      t.lost += due - got;
    } else {
      t.extra++;
      t.surplus += got - due;
    }
    if (ws.closed) {
      closed++;
      const code = String(ws.closeCode || 'none');
      closeCodes[code] = (closeCodes[code] ?? 0) + 1;
    }
  }
  const lat = samples.flatMap((s) => s.latencies).sort((a, b) => a - b);
  return {
    type: 'counts',
    perTopic,
    closed,
    closeCodes,
    samples: {
      sockets: samples.length,
      gaps: samples.reduce((g, s) => g + s.gaps, 0),
      behind: samples.filter((s) => s.last !== owed[s.topic]).length,
      gc: { count: gc.count, totalMs: Math.round(gc.totalMs), maxMs: Math.round(gc.maxMs) },
      loopDelayMs: { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 },
      latencyMs: { n: lat.length, p50: percentile(lat, 50), p99: percentile(lat, 99), max: lat[lat.length - 1] ?? 0 },
    },
  };
}

serveParent(async (cmd) => {
  if (cmd.type === 'connect') return connectAll(cmd as unknown as ConnectPlan);
  if (cmd.type === 'counts') return counts(cmd.owed as number[]);
  if (cmd.type === 'close') {
    for (const ws of sockets) ws.destroy();
    return { type: 'closed' };
  }
  throw new Error(`unknown command ${cmd.type}`);
});
