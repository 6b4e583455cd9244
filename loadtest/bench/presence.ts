/**
 * Presence benchmark: M members join one presence topic, spread round-robin over G gateway
 * processes on NATS (one nats-server). Reports:
 *   - the time until every gateway agrees: every subscriber's `count` has reached M;
 *   - presence bytes per member: what subscribers received (presence frames, the full list after
 *     `subscribed` included), what the gateways published to each other (core NATS; NATS copies
 *     it to each watching gateway), and what the gateways pushed through topics (the batched
 *     frames, without the per-subscriber full lists);
 *   - CPU per join: the gateways' process CPU (user + system, from /proc) over the run / M;
 *   - the generator's own CPU (over ~70% of a core, it measures itself: lower --concurrency).
 *
 *   npx tsx loadtest/bench/presence.ts [--members 5000] [--gateways 3] [--concurrency 100]
 *     [--max-members 1000] [--interval 250] [--mode members|count|off] [--out file.json]
 *
 * `--mode off` runs the same joins on a namespace without presence: its CPU per join is the
 * connection + subscribe baseline, so the difference is what presence costs.
 */
import { writeFileSync } from 'node:fs';
import { msgpackCodec, SUBPROTOCOL_MSGPACK } from '../../protocol/index.ts';
import { startGatewayProcess, type GatewayProcess } from '../../test/support/gateway-process.ts';
import { startNatsServer } from '../../test/support/nats-server.ts';
import { procCpuSeconds, sleep, waitUntil } from '../lib/proc.ts';
import { connectRawWs, type RawWs } from '../lib/raw-ws.ts';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const MEMBERS = Number(arg('members', '5000'));
const GATEWAYS = Number(arg('gateways', '3'));
const CONCURRENCY = Number(arg('concurrency', '100'));
const MAX_MEMBERS = Number(arg('max-members', '1000'));
const INTERVAL = Number(arg('interval', '250'));
/** `members` (lists), `count`, or `off`: the same joins without presence, the baseline for CPU per join. */
const MODE = arg('mode', 'members');
const OUT = arg('out', '');
const TOPIC = 'bench.presence';
const KEY = 'bench-key-0123456789';
const DEADLINE_MS = 300_000;

interface Member {
  ws: RawWs;
  count: number;
  agreedAt: number;
  presenceBytes: number;
  presenceFrames: number;
}

async function join(gw: GatewayProcess, m: Member): Promise<void> {
  let subscribed!: () => void;
  const done = new Promise<void>((r) => (subscribed = r));
  m.ws = await connectRawWs({
    host: '127.0.0.1',
    port: gw.port,
    path: '/ws',
    protocol: SUBPROTOCOL_MSGPACK,
    decode: true,
    timeoutMs: 30_000,
    onMessage(payload) {
      const f = msgpackCodec.decode(payload) as { t: string; count?: number };
      if (f.t === 'welcome') m.ws.send(msgpackCodec.encode({ t: 'sub', id: 1, topic: TOPIC }) as Uint8Array);
      else if (f.t === 'subscribed') {
        if (MODE === 'off') m.agreedAt = Date.now();
        subscribed();
      } else if (f.t === 'presence') {
        m.presenceBytes += payload.byteLength;
        m.presenceFrames++;
        m.count = f.count!;
        if (m.count >= MEMBERS && m.agreedAt === 0) m.agreedAt = Date.now();
      }
    },
  });
  m.ws.send(msgpackCodec.encode({ t: 'hello', v: 1 }) as Uint8Array);
  await done;
}

async function metricSum(gws: GatewayProcess[], name: string): Promise<number> {
  const all = await Promise.all(gws.map((g) => g.metrics()));
  return all.reduce((n, m) => n + (m[name] ?? 0), 0);
}

async function main(): Promise<void> {
  const nats = await startNatsServer();
  const config = {
    bus: { engine: 'nats', nats: { servers: [nats.url], prefix: `presence${process.pid}` } },
    api: { keys: [{ key: KEY, scopes: ['publish', 'admin'] }] },
    cluster: { heartbeatMs: 1000 },
    presence: { maxMembers: MAX_MEMBERS, intervalMs: INTERVAL },
    namespaces: { bench: { presence: MODE === 'off' ? false : MODE } },
    limits: { connRatePerSec: 0, userRatePerSec: 0, maxConnectionsPerIp: 0 },
    log: { level: 'warn' },
  };
  const gws = await Promise.all(Array.from({ length: GATEWAYS }, (_, i) => startGatewayProcess({ name: `gw-${i}`, config, readyTimeoutMs: 60_000 })));
  const members: Member[] = [];
  try {
    // The roster must be whole before joins (presence syncs ride on it).
    for (const start = Date.now(); Date.now() - start < 30_000; ) {
      const views = await Promise.all(
        gws.map((g) =>
          fetch(`${g.httpUrl}/api/admin/cluster`, { headers: { authorization: `Bearer ${KEY}` } }).then((r) => r.json() as Promise<{ gateways?: unknown[] }>),
        ),
      );
      if (views.every((v) => (v.gateways?.length ?? 0) === GATEWAYS)) break;
      await sleep(100);
    }

    const cpu0 = gws.map((g) => procCpuSeconds(g.pid));
    const gen0 = process.cpuUsage();
    const t0 = Date.now();
    let next = 0;
    let lastSubscribed = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < MEMBERS) {
          const i = next++;
          const m: Member = { ws: null as never, count: 0, agreedAt: 0, presenceBytes: 0, presenceFrames: 0 };
          members.push(m);
          await join(gws[i % GATEWAYS]!, m);
          lastSubscribed = Date.now();
        }
      }),
    );
    const agreed = await waitUntil(() => members.every((m) => m.agreedAt > 0), DEADLINE_MS, 20);
    const tAgree = Math.max(...members.map((m) => m.agreedAt)) - t0;
    const wall = (Date.now() - t0) / 1000;
    const gen = process.cpuUsage(gen0);
    const gatewayCpu = gws.map((g, i) => procCpuSeconds(g.pid) - cpu0[i]!);
    const natsBytes = await metricSum(gws, 'symphonic_bus_presence_bytes_sent_total');
    const natsMessages = await metricSum(gws, 'symphonic_bus_presence_messages_sent_total');
    const pushedBytes = await metricSum(gws, 'symphonic_presence_bytes_out_total');
    const received = members.reduce((n, m) => n + m.presenceBytes, 0);
    const frames = members.reduce((n, m) => n + m.presenceFrames, 0);
    const totalCpu = gatewayCpu.reduce((a, b) => a + b, 0);
    const result = {
      members: MEMBERS,
      mode: MODE,
      gateways: GATEWAYS,
      maxMembers: MAX_MEMBERS,
      intervalMs: INTERVAL,
      allAgreed: agreed,
      joinsDoneMs: lastSubscribed - t0,
      everyGatewayAgreesMs: tAgree,
      afterLastJoinMs: tAgree - (lastSubscribed - t0),
      presenceBytesPerMember: {
        receivedBySubscribers: Math.round(received / MEMBERS),
        betweenGateways: Math.round(natsBytes / MEMBERS),
        pushedToSubscribers: Math.round(pushedBytes / MEMBERS),
      },
      presenceFramesPerMember: +(frames / MEMBERS).toFixed(1),
      gatewayMessagesBetweenGateways: natsMessages,
      gatewayCpuSeconds: gatewayCpu.map((s) => +s.toFixed(2)),
      cpuPerJoinMs: +((totalCpu * 1000) / MEMBERS).toFixed(3),
      generatorCpuPercentOfCore: Math.round(((gen.user + gen.system) / 1e6 / wall) * 100),
      wallSeconds: +wall.toFixed(1),
    };
    console.log(JSON.stringify(result, null, 2));
    if (OUT) writeFileSync(OUT, JSON.stringify(result, null, 2));
    if (!agreed) process.exitCode = 1;
  } finally {
    for (const m of members) m.ws?.destroy();
    await Promise.allSettled(gws.map((g) => g.stop()));
    await nats.cleanup();
  }
}

await main();
