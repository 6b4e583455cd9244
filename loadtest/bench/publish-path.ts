/**
 * Publish-path benchmark: what one published message costs the gateway on each way in, on both
 * engines, in one run. The fan-out benchmark (fanout.ts) measures delivery; this one measures
 * ingress: `POST /api/publish` (one HTTP request per message), `POST /api/publish/batch`, a
 * WebSocket `pub` with an ack, and (NATS engine) a JetStream publish straight onto the bus.
 *
 *   npx tsx loadtest/bench/publish-path.ts [--engines memory,nats] [--paths http,batch,ws,nats]
 *     [--rates 1000,2000,4000,8000] [--seconds 3] [--subs 50] [--batch 100] [--concurrency 16]
 *     [--out file.json] [--md file.md] [--profile dir]
 *
 * Per engine a gateway process (and nats-server) is started; `--subs` subscribers (msgpack,
 * compact frames as the SDK asks) count every delivery, so a path that loses or drops messages
 * shows. Per path and rate it publishes for `--seconds` and reports: the rate achieved
 * (acknowledged messages/s), the gateway's CPU per message (server process plus nats-server, from
 * /proc: the figure that does not depend on how fast the generator is), publish-to-ack latency,
 * and the generator's own CPU (a step with the generator above 70% of a core says so: its
 * achieved rate is then the generator's limit).
 */
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { connect as natsConnect, type JetStreamClient, type NatsConnection } from 'nats';
import { msgpackCodec } from '../../protocol/codec.ts';
import { encodeEnvelope } from '../../protocol/envelope.ts';
import { PROTOCOL_VERSION, SUBPROTOCOL_MSGPACK } from '../../protocol/version.ts';
import { startGatewayProcess, type GatewayProcess } from '../../test/support/gateway-process.ts';
import { startNatsServer, type NatsServer } from '../../test/support/nats-server.ts';
import { LatencyRecorder } from '../lib/latency.ts';
import { procCpuSeconds, sleep, waitUntil } from '../lib/proc.ts';
import { connectRawWs, type RawWs } from '../lib/raw-ws.ts';
import { benchInSubject, BENCH_NATS_PREFIX } from './targets/nats.ts';
import { serverNodeArgs } from './targets/paths.ts';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const list = (name: string, fallback: string) => arg(name, fallback).split(',').filter(Boolean);
const ENGINES = list('engines', 'memory,nats');
const PATHS = list('paths', 'http,batch,ws,nats');
const RATES = list('rates', '1000,2000,4000,8000').map(Number);
const SECONDS = Number(arg('seconds', '3'));
const SUBS = Number(arg('subs', '50'));
const BATCH = Number(arg('batch', '100'));
const CONCURRENCY = Number(arg('concurrency', '16'));
const OUT = arg('out', '');
const MD = arg('md', '');
/** A directory for the gateway's CPU profile (`node --cpu-prof`), written when it stops. */
const PROFILE = arg('profile', '');
const KEY = 'bench-publish-key-0123456789';
const TOPIC = 'bench.ingress';
/** Unacknowledged messages at most, per path; past it a tick is skipped (counted as a stall). */
const MAX_IN_FLIGHT = 2000;
const TICK_MS = 5;
const PAD = 'x'.repeat(40);

interface Step {
  engine: string;
  path: string;
  rate: number;
  sent: number;
  acked: number;
  failed: number;
  stalls: number;
  achievedPerSec: number;
  delivered: number;
  expectedDeliveries: number;
  serverCpuPct: number;
  /** nats-server's part of serverCpuPct (0 on the embedded engine). */
  natsCpuPct: number;
  serverUsPerMessage: number;
  generatorCpuPct: number;
  ackMs: { p50: number; p99: number };
  generatorBound: boolean;
  /** NATS engine: JetStream publish attempts the gateway retried during the step (timeouts: the server answered too slowly). */
  retries: number;
}

/** One way in: `send(n)` starts n publishes; each settles through `done`. */
interface PublishPath {
  send(n: number, done: (ok: boolean, startedAt: number) => void): void;
  close(): void;
}

const body = (i: number) => ({ topic: TOPIC, kind: 'event', data: { i, ts: Date.now(), p: PAD } });

function httpPath(gw: GatewayProcess, route: '/api/publish' | '/api/publish/batch', perRequest: number): PublishPath {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let i = 0;
  const post = (payload: string, count: number, done: (ok: boolean, startedAt: number) => void) => {
    const startedAt = performance.now();
    const req = http.request(
      `${gw.httpUrl}${route}`,
      { method: 'POST', agent, headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
      (res) => {
        res.resume();
        res.on('end', () => {
          for (let k = 0; k < count; k++) done(res.statusCode === 200, startedAt);
        });
      },
    );
    req.on('error', () => {
      for (let k = 0; k < count; k++) done(false, startedAt);
    });
    req.end(payload);
  };
  return {
    send(n, done) {
      if (perRequest === 1) {
        for (let k = 0; k < n; k++) post(JSON.stringify(body(i++)), 1, done);
        return;
      }
      for (let left = n; left > 0; left -= perRequest) {
        const count = Math.min(perRequest, left);
        post(JSON.stringify({ messages: Array.from({ length: count }, () => body(i++)) }), count, done);
      }
    },
    close: () => agent.destroy(),
  };
}

async function wsPath(gw: GatewayProcess): Promise<PublishPath> {
  const ws = await connectRawWs({ host: '127.0.0.1', port: gw.port, path: '/ws', protocol: SUBPROTOCOL_MSGPACK, decode: true });
  await handshake(ws, { t: 'hello', v: PROTOCOL_VERSION, client: 'bench-ingress' }, 'welcome');
  const waiting = new Map<number, { startedAt: number; done: (ok: boolean, startedAt: number) => void }>();
  ws.onMessage = (p) => {
    const f = msgpackCodec.decode(p) as { t?: string; id?: number };
    const w = f.id === undefined ? undefined : waiting.get(f.id);
    if (!w) return;
    waiting.delete(f.id!);
    w.done(f.t === 'ack', w.startedAt);
  };
  let id = 0;
  return {
    send(n, done) {
      const frames: Uint8Array[] = [];
      const startedAt = performance.now();
      for (let k = 0; k < n; k++) {
        waiting.set(++id, { startedAt, done });
        frames.push(Uint8Array.from(msgpackCodec.encode({ t: 'pub', id, ...body(id) }) as Uint8Array));
      }
      ws.sendMany(frames, true);
    },
    close: () => ws.destroy(),
  };
}

async function natsPath(nc: NatsConnection, js: JetStreamClient): Promise<PublishPath> {
  let i = 0;
  return {
    send(n, done) {
      for (let k = 0; k < n; k++) {
        const startedAt = performance.now();
        const b = body(i);
        js.publish(benchInSubject(TOPIC), encodeEnvelope('event', b.data, b.data.ts), { msgID: `ingress-${process.pid}-${i++}` }).then(
          () => done(true, startedAt),
          () => done(false, startedAt),
        );
      }
    },
    close: () => void nc.close(),
  };
}

async function handshake(ws: RawWs, frame: object, t: string): Promise<void> {
  const reply = ws.waitFor((p) => {
    const f = msgpackCodec.decode(p) as { t?: string; code?: number };
    return f.t === t || f.t === 'error' ? f : undefined;
  }, 10_000);
  ws.send(msgpackCodec.encode(frame) as Uint8Array);
  const f = await reply;
  if (f.t === 'error') throw new Error(`gateway refused ${JSON.stringify(frame)}: ${f.code}`);
}

async function openSubscribers(gw: GatewayProcess): Promise<RawWs[]> {
  const subs: RawWs[] = [];
  for (let k = 0; k < SUBS; k++) {
    const ws = await connectRawWs({ host: '127.0.0.1', port: gw.port, path: '/ws', protocol: SUBPROTOCOL_MSGPACK, decode: true, minCountBytes: 40 });
    await handshake(ws, { t: 'hello', v: PROTOCOL_VERSION, client: 'bench-ingress-sub', compact: true }, 'welcome');
    await handshake(ws, { t: 'sub', id: 1, topic: TOPIC }, 'subscribed');
    ws.parser.decode = false; // count only: heartbeats (~5 bytes) stay under minCountBytes
    subs.push(ws);
  }
  return subs;
}

const delivered = (subs: RawWs[]) => subs.reduce((a, s) => a + s.parser.count, 0);

const retriesOf = async (gw: GatewayProcess) => (await gw.metrics()).symphonic_bus_nats_publish_retries_total ?? 0;

async function runStep(engine: string, name: string, path: PublishPath, rate: number, pids: number[], subs: RawWs[], gw: GatewayProcess): Promise<Step> {
  const retries0 = await retriesOf(gw);
  const latency = new LatencyRecorder();
  let sent = 0;
  let acked = 0;
  let failed = 0;
  let stalls = 0;
  const done = (ok: boolean, startedAt: number) => {
    if (ok) acked++;
    else failed++;
    latency.record(performance.now() - startedAt);
  };
  const cpu = () => pids.reduce((a, pid) => a + procCpuSeconds(pid), 0);
  const natsCpu = () => (pids[1] ? procCpuSeconds(pids[1]) : 0);
  const d0 = delivered(subs);
  const srv0 = cpu();
  const nats0 = natsCpu();
  const gen0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + SECONDS * 1000;
  while (performance.now() < end) {
    const due = Math.floor(((performance.now() - t0) / 1000) * rate) - sent;
    if (due > 0) {
      if (sent - acked - failed > MAX_IN_FLIGHT) stalls++;
      else {
        path.send(due, done);
        sent += due;
      }
    }
    await sleep(TICK_MS);
  }
  await waitUntil(() => acked + failed >= sent, 10_000);
  const tAcked = performance.now();
  const expectedDeliveries = acked * subs.length;
  await waitUntil(() => delivered(subs) - d0 >= expectedDeliveries, 10_000);
  const wall = (performance.now() - t0) / 1000;
  const srv = cpu() - srv0;
  const natsSecs = natsCpu() - nats0;
  const gen = process.cpuUsage(gen0);
  const generatorCpuPct = (100 * (gen.user + gen.system)) / 1e6 / wall;
  const [p50, p99] = latency.percentiles([50, 99]);
  return {
    engine,
    path: name,
    rate,
    sent,
    acked,
    failed,
    stalls,
    achievedPerSec: acked / ((tAcked - t0) / 1000),
    delivered: delivered(subs) - d0,
    expectedDeliveries,
    serverCpuPct: (100 * srv) / wall,
    natsCpuPct: (100 * natsSecs) / wall,
    serverUsPerMessage: acked > 0 ? (srv * 1e6) / acked : NaN,
    generatorCpuPct,
    ackMs: { p50: p50!, p99: p99! },
    generatorBound: generatorCpuPct > 70,
    retries: (await retriesOf(gw)) - retries0,
  };
}

async function runEngine(engine: string): Promise<Step[]> {
  let nats: NatsServer | undefined;
  let gw: GatewayProcess | undefined;
  const steps: Step[] = [];
  try {
    if (engine === 'nats') nats = await startNatsServer();
    gw = await startGatewayProcess({
      name: `gw-${engine}`,
      config: {
        bus: nats ? { engine: 'nats', nats: { servers: [nats.url], prefix: BENCH_NATS_PREFIX } } : { engine: 'memory' },
        api: { keys: [{ key: KEY, scopes: ['publish'] }] },
        clientPublish: true,
        defaultNamespace: { publish: 'anyone' },
        limits: { connRatePerSec: 0, userRatePerSec: 0, maxConnectionsPerUser: 0 },
      },
      readyTimeoutMs: 60_000,
      nodeArgs: [...serverNodeArgs(), ...(PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE}`] : [])],
    });
    const pids = [gw.pid, ...(nats?.pid ? [nats.pid] : [])];
    const subs = await openSubscribers(gw);
    for (const name of PATHS) {
      if (name === 'nats' && !nats) continue;
      let nc: NatsConnection | undefined;
      if (name === 'nats') nc = await natsConnect({ servers: nats!.url });
      const path =
        name === 'http'
          ? httpPath(gw, '/api/publish', 1)
          : name === 'batch'
            ? httpPath(gw, '/api/publish/batch', BATCH)
            : name === 'ws'
              ? await wsPath(gw)
              : await natsPath(nc!, nc!.jetstream());
      await runStep(engine, name, path, Math.min(...RATES), pids, subs, gw); // warm-up, unreported
      for (const rate of RATES) {
        const s = await runStep(engine, name, path, rate, pids, subs, gw);
        steps.push(s);
        console.log(line(s));
      }
      path.close();
    }
    for (const s of subs) s.destroy();
  } finally {
    await gw?.stop();
    await nats?.cleanup();
  }
  return steps;
}

const HEADER =
  '| engine | path | asked/s | achieved/s | failed | lost deliveries | server CPU % (nats-server) | server µs/msg | ack p50 / p99 ms | retries | generator CPU % |';
function line(s: Step): string {
  const lost = Math.max(0, s.expectedDeliveries - s.delivered);
  const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '-');
  return `| ${s.engine} | ${s.path} | ${s.rate} | ${f(s.achievedPerSec)} | ${s.failed} | ${lost} | ${f(s.serverCpuPct)}${s.natsCpuPct ? ` (${f(s.natsCpuPct)})` : ''} | ${f(s.serverUsPerMessage, 1)} | ${f(s.ackMs.p50, 1)} / ${f(s.ackMs.p99, 1)} | ${s.retries} | ${f(s.generatorCpuPct)}${s.generatorBound ? ' †' : ''} |`;
}

const all: Step[] = [];
console.log(`${HEADER}\n|${' --- |'.repeat(11)}`);
for (const engine of ENGINES) all.push(...(await runEngine(engine)));
const md = [
  `Publish paths, ${SUBS} subscribers, ${SECONDS} s per step, batch ${BATCH}, ${CONCURRENCY} HTTP connections`,
  '',
  HEADER,
  `|${' --- |'.repeat(11)}`,
  ...all.map(line),
  '',
  "†: the generator used over 70% of a core: the achieved rate is its limit, not the gateway's; gateway µs/msg still holds.",
].join('\n');
console.log(`\n${md}`);
if (MD) writeFileSync(MD, `${md}\n`);
if (OUT)
  writeFileSync(
    OUT,
    JSON.stringify({ steps: all, meta: { subs: SUBS, seconds: SECONDS, batch: BATCH, concurrency: CONCURRENCY, date: new Date().toISOString() } }, null, 2),
  );
process.exit(all.some((s) => s.failed > 0 || s.delivered < s.expectedDeliveries) ? 1 : 0);
