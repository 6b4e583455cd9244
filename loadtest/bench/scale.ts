/**
 * Scale benchmark: C concurrent connections (default 100,000) over G gateway processes on the
 * NATS engine and P generator processes, every one subscribed and receiving, nothing lost.
 *
 *   npx tsx loadtest/bench/scale.ts [--conns 100000] [--gateways 6] [--workers 6] [--topics 10]
 *     [--addresses 16] [--connect-rate 2000] [--window 64] [--pub-rate 1] [--seconds 10]
 *     [--samples 8] [--session-ttl-ms 300000] [--out file.json]
 *
 * One nats-server and G gateways (cluster.ts); P child processes (scale-worker.ts, at most ~19,000
 * sockets each: the open-files limit here is 20,000 per process) open the connections, paced, each
 * socket bound to one of A local addresses 127.0.1.1, 127.0.1.2, ... (each address has its own
 * ephemeral port range) and assigned round-robin to a gateway and to one of T topics. Then a
 * backend publishes numbered messages to every topic through JetStream for --seconds, and every
 * socket's count is checked against what its topic was owed. See loadtest/README.md ("Scale").
 */
import { writeFileSync } from 'node:fs';
import { connect } from 'nats';
import { decodeEnvelope } from '../../protocol/envelope.ts';
import { printWarnings } from '../../test/support/gateway-process.ts';
import { startFleet, type ChildMessage, type FleetChild } from '../lib/fleet.ts';
import { percentile } from '../lib/percentile.ts';
import { procRssBytes, sleep } from '../lib/proc.ts';
import { usageBetween, usageSnapshot } from '../lib/usage.ts';
import { startCluster, stopOnSignal, warningCounts, type BenchCluster } from './cluster.ts';
import { NumberedPublisher } from './numbered-publisher.ts';
import { summaryLines } from './scale-report.ts';
import { planProblems, workerPlans, type ScalePlan } from './scale-plan.ts';
import { REPO_ROOT } from './targets/paths.ts';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const CONNS = Number(arg('conns', '100000'));
const GATEWAYS = Number(arg('gateways', '6'));
/** Sockets one generator process holds at most (open-files limit 20,000, minus its own files). */
const PER_WORKER_MAX = 19_000;
const WORKERS = Number(arg('workers', String(Math.max(1, Math.ceil(CONNS / PER_WORKER_MAX)))));
const TOPICS = Number(arg('topics', '10'));
const ADDRESSES = Number(arg('addresses', '16'));
const CONNECT_RATE = Number(arg('connect-rate', '2000'));
const WINDOW = Number(arg('window', '64'));
const PUB_RATE = Number(arg('pub-rate', '1'));
const SECONDS = Number(arg('seconds', '10'));
const SAMPLES = Number(arg('samples', '8'));
/**
 * The gateways' session TTL, by default the gateway's own. It no longer sets the registry's write
 * load: connected sessions are not rewritten per TTL since 2026-12-05 (loadtest/README.md, "Scale",
 * "The session registry refresh"); earlier runs used 1 h to keep that refresh out of the way.
 */
const SESSION_TTL_MS = Number(arg('session-ttl-ms', '300000'));
const OUT = arg('out', '');
/** Longest wait, after publishing stops, for the last deliveries (ends sooner once all arrived). */
const DRAIN_MS = 60_000;
/** ...or once nothing more has arrived for this long. */
const STALL_MS = 15_000;
const HANDSHAKE_TIMEOUT_MS = 30_000;
/** The idle window measured between connecting and publishing. */
const IDLE_MS = 5000;
const PAD = 'x'.repeat(40);

const mb = (bytes: number) => Math.round(bytes / 1024 / 1024);

const PLAN: ScalePlan = {
  conns: CONNS,
  gateways: GATEWAYS,
  workers: WORKERS,
  topics: TOPICS,
  addresses: ADDRESSES,
  connectRate: CONNECT_RATE,
  window: WINDOW,
  samples: SAMPLES,
  handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
};

/** CPU and run-queue wait of every process of the run, by group. */
const usageOf = (cluster: BenchCluster, workers: FleetChild[]) =>
  usageSnapshot({
    gateways: cluster.gateways.map((g) => g.pid),
    nats: [cluster.nats.pid!],
    generators: workers.map((w) => w.pid),
    publisher: [process.pid],
  });

async function gatewayMetrics(cluster: BenchCluster): Promise<Record<string, number>[]> {
  return Promise.all(cluster.gateways.map((g) => g.metrics().catch(() => ({}) as Record<string, number>)));
}

async function connectPhase(workers: FleetChild[], ports: number[], topics: string[]) {
  const done = workers.map(() => 0);
  const failed = workers.map(() => 0);
  for (const w of workers) {
    w.onMessage = (m) => {
      if (m.type === 'progress') {
        done[w.index] = m.done as number;
        failed[w.index] = m.failed as number;
      }
    };
  }
  const t0 = performance.now();
  let peakRate = 0;
  const timeline: [number, number][] = [];
  let lastDone = 0;
  let lastAt = t0;
  const ticker = setInterval(() => {
    const now = performance.now();
    const total = done.reduce((a, b) => a + b, 0);
    peakRate = Math.max(peakRate, ((total - lastDone) * 1000) / (now - lastAt));
    lastDone = total;
    lastAt = now;
    timeline.push([Math.round((now - t0) / 1000), total]);
    console.log(`  ${((now - t0) / 1000).toFixed(0)} s: ${total} subscribed, ${failed.reduce((a, b) => a + b, 0)} failed`);
  }, 2000);
  try {
    const all = workerPlans(PLAN, ports, topics);
    const replies = await Promise.all(workers.map((w, i) => w.request<ChildMessage>({ type: 'connect', ...all[i]! }, 'connected', 30 * 60_000)));
    return { ms: performance.now() - t0, peakRate, timeline, replies };
  } finally {
    clearInterval(ticker);
  }
}

interface TopicCounts {
  sockets: number;
  received: number;
  complete: number;
  short: number;
  extra: number;
  lost: number;
  surplus: number;
}

async function collectCounts(workers: FleetChild[], owed: number[]) {
  const replies = await Promise.all(workers.map((w) => w.request<ChildMessage>({ type: 'counts', owed }, 'counts', 30_000)));
  const sum = { sockets: 0, received: 0, complete: 0, short: 0, extra: 0, lost: 0, surplus: 0 };
  for (const r of replies) for (const t of r.perTopic as TopicCounts[]) for (const k of Object.keys(sum) as (keyof TopicCounts)[]) sum[k] += t[k];
  const closeCodes: Record<string, number> = {};
  for (const r of replies) for (const [code, n] of Object.entries(r.closeCodes as Record<string, number>)) closeCodes[code] = (closeCodes[code] ?? 0) + n;
  return { ...sum, closed: replies.reduce((n, r) => n + (r.closed as number), 0), closeCodes, replies };
}

async function main(): Promise<void> {
  const problems = planProblems(PLAN);
  if (problems.length) throw new Error(`this plan does not fit:\n  ${problems.join('\n  ')}`);
  const topics = Array.from({ length: TOPICS }, (_, t) => `scale.t${t}`);
  console.log(
    `scale: ${CONNS} connections, ${GATEWAYS} gateways, ${WORKERS} generator processes, ${TOPICS} topics, ${ADDRESSES} source addresses, connect rate <= ${CONNECT_RATE}/s, window ${WINDOW}/process`,
  );
  const cluster = await startCluster({
    gateways: GATEWAYS,
    prefix: `scale${process.pid}`,
    // Anonymous subscribers: the per-user limits do not apply. Per-IP limit off (the default; the
    // generator's sockets come from a few addresses).
    config: { limits: { maxConnectionsPerIp: 0 }, session: { ttlMs: SESSION_TTL_MS }, log: { level: 'warn' } },
  });
  let workers: FleetChild[] = [];
  let failedRun = true;
  stopOnSignal(async () => {
    await Promise.allSettled(workers.map((w) => w.kill()));
    await cluster.stop(1000);
  });
  try {
    workers = await startFleet('loadtest/bench/scale-worker.ts', WORKERS, REPO_ROOT);
    const ports = cluster.gateways.map((g) => g.port);
    const rss0 = {
      gateways: cluster.gateways.map((g) => procRssBytes(g.pid)),
      nats: procRssBytes(cluster.nats.pid!),
      workers: workers.map((w) => procRssBytes(w.pid)),
    };

    // 1. Connect and subscribe everyone.
    const c0 = usageOf(cluster, workers);
    const conn = await connectPhase(workers, ports, topics);
    const c1 = usageOf(cluster, workers);
    const ok = conn.replies.reduce((n, r) => n + (r.ok as number), 0);
    const failed = conn.replies.reduce((n, r) => n + (r.failed as number), 0);
    const connectCpu = usageBetween(c0, c1);
    const m1 = await gatewayMetrics(cluster);
    const rss1 = {
      gateways: cluster.gateways.map((g) => procRssBytes(g.pid)),
      nats: procRssBytes(cluster.nats.pid!),
      workers: workers.map((w) => procRssBytes(w.pid)),
    };
    const held = m1.map((m) => m.symphonic_connections ?? 0);
    console.log(`connected: ${ok} subscribed, ${failed} failed in ${(conn.ms / 1000).toFixed(1)} s (${Math.round((ok * 1000) / conn.ms)}/s)`);
    for (const r of conn.replies) for (const e of r.errors as string[]) console.log(`  generator error: ${e}`);

    // 2. What holding the connections costs with nothing published (heartbeats, pings, timers).
    const i0 = usageOf(cluster, workers);
    await sleep(IDLE_MS);
    const idleCpu = usageBetween(i0, usageOf(cluster, workers));

    // 3. Publish numbered messages to every topic, then wait until every socket has what it is owed.
    const nc = await connect({ servers: cluster.nats.url, name: 'symphonic-scale-publisher' });
    // The RePublish copies as a gateway gets them: the NATS part of the publish-to-socket latency.
    const natsLatency: number[] = [];
    nc.subscribe(`${cluster.prefix}.out.>`, {
      callback: (_e, m) => void natsLatency.push(Date.now() - decodeEnvelope(m.data, 0).ts),
    });
    await nc.flush();
    const publisher = new NumberedPublisher(nc, cluster.prefix, topics, (n) => ({ n, p: PAD }));
    const before = await collectCounts(
      workers,
      topics.map(() => 0),
    );
    const p0 = usageOf(cluster, workers);
    publisher.start(PUB_RATE, SECONDS * 1000);
    await sleep(SECONDS * 1000);
    await publisher.stop();
    const p1 = usageOf(cluster, workers);
    const pub = publisher.stats();
    await nc.close();
    // Drain: until every socket has what it is owed, STALL_MS without progress, or DRAIN_MS.
    let counts = await collectCounts(workers, pub.acked);
    const drainStart = performance.now();
    let progressAt = drainStart;
    let lastReceived = counts.received;
    while (counts.lost > 0 && performance.now() - drainStart < DRAIN_MS && performance.now() - progressAt < STALL_MS) {
      await sleep(500);
      counts = await collectCounts(workers, pub.acked);
      if (counts.received !== lastReceived) {
        lastReceived = counts.received;
        progressAt = performance.now();
      }
    }
    const drainEnd = performance.now();
    const publishCpu = usageBetween(p0, p1);
    const m2 = await gatewayMetrics(cluster);
    const rss2 = { gateways: cluster.gateways.map((g) => procRssBytes(g.pid)), nats: procRssBytes(cluster.nats.pid!) };
    const owedTotal = counts.replies.reduce((n, r) => n + (r.perTopic as TopicCounts[]).reduce((k, t, i) => k + t.sockets * pub.acked[i]!, 0), 0);
    const deliveredInWindow = counts.received - before.received;
    const sampleReplies = counts.replies.map(
      (r) =>
        r.samples as {
          sockets: number;
          gaps: number;
          behind: number;
          latencyMs: { p50: number; p99: number };
          loopDelayMs: { p99: number; max: number };
          gc: unknown;
        },
    );

    const result = {
      date: new Date().toISOString(),
      plan: {
        conns: CONNS,
        gateways: GATEWAYS,
        workers: WORKERS,
        topics: TOPICS,
        addresses: ADDRESSES,
        connectRate: CONNECT_RATE,
        window: WINDOW,
        pubRatePerTopic: PUB_RATE,
        seconds: SECONDS,
        sessionTtlMs: SESSION_TTL_MS,
      },
      connect: {
        subscribed: ok,
        failed,
        errors: conn.replies.flatMap((r) => r.errors as string[]),
        seconds: +(conn.ms / 1000).toFixed(1),
        ratePerSec: Math.round((ok * 1000) / conn.ms),
        peakRatePerSec: Math.round(Math.max(conn.peakRate, (ok * 1000) / conn.ms)),
        /** [seconds, subscribed so far], every 2 s. */
        timeline: conn.timeline,
        localAddressesPerProcess: conn.replies.map((r) => r.localAddresses as number),
        handshakeMsP99PerProcess: conn.replies.map((r) => Math.round((r.handshakeMs as { p99: number }).p99)),
        cpu: connectCpu,
      },
      idle: { cpu: idleCpu },
      heldPerGateway: held,
      subscriptionsPerGateway: m1.map((m) => m.symphonic_subscriptions ?? 0),
      memory: {
        gatewayRssMB: rss1.gateways.map(mb),
        gatewayRssAfterPublishMB: rss2.gateways.map(mb),
        gatewayKBPerConnection: rss1.gateways.map((r, i) => +((r - rss0.gateways[i]!) / 1024 / Math.max(1, held[i]!)).toFixed(1)),
        gatewayIdleRssMB: rss0.gateways.map(mb),
        natsRssMB: { before: mb(rss0.nats), connected: mb(rss1.nats), afterPublish: mb(rss2.nats) },
        generatorRssMB: rss1.workers.map(mb),
        generatorKBPerConnection: rss1.workers.map((r, i) => +((r - rss0.workers[i]!) / 1024 / Math.max(1, conn.replies[i]!.ok as number)).toFixed(1)),
      },
      publish: {
        perTopicAcked: pub.acked,
        failed: pub.failed,
        firstError: pub.firstError,
        stalls: pub.stalls,
        deliveriesPerSec: Math.round(deliveredInWindow / publishCpu.seconds),
        gatewayDeliveries: m2.reduce((n, m, i) => n + (m.symphonic_messages_out_total ?? 0) - (m1[i]!.symphonic_messages_out_total ?? 0), 0),
        cpu: publishCpu,
      },
      gatewayWarnings: warningCounts(cluster.gateways),
      delivery: {
        owed: owedTotal,
        /** From the end of publishing until every socket had what it was owed (or the drain gave up). */
        drainSeconds: +((drainEnd - drainStart) / 1000).toFixed(1),
        received: deliveredInWindow,
        lost: counts.lost,
        surplus: counts.surplus,
        socketsComplete: counts.complete,
        socketsShort: counts.short,
        socketsExtra: counts.extra,
        closed: counts.closed,
        closeCodes: counts.closeCodes,
        slowConsumers: m2.reduce((n, m) => n + (m.symphonic_slow_consumers_total ?? 0), 0),
        natsRepublishMs: (() => {
          const l = natsLatency.sort((a, b) => a - b);
          return { n: l.length, p50: percentile(l, 50), p99: percentile(l, 99) };
        })(),
        sampled: {
          sockets: sampleReplies.reduce((n, s) => n + s.sockets, 0),
          gaps: sampleReplies.reduce((n, s) => n + s.gaps, 0),
          behind: sampleReplies.reduce((n, s) => n + s.behind, 0),
          latencyMsP50PerProcess: sampleReplies.map((s) => s.latencyMs.p50),
          latencyMsP99PerProcess: sampleReplies.map((s) => s.latencyMs.p99),
          generatorLoopDelayMsP99: sampleReplies.map((s) => Math.round(s.loopDelayMs.p99)),
          generatorLoopDelayMsMax: sampleReplies.map((s) => Math.round(s.loopDelayMs.max)),
          generatorGc: sampleReplies.map((s) => s.gc),
        },
      },
    };
    if (OUT) writeFileSync(OUT, JSON.stringify(result, null, 2));
    else console.log(JSON.stringify(result, null, 2));
    for (const line of summaryLines(result)) console.log(line);
    failedRun = failed > 0 || counts.lost > 0 || counts.surplus > 0 || counts.closed > 0 || pub.failed > 0 || ok !== CONNS;
    if (failedRun) console.error('FAILED: not every connection subscribed and received exactly what it was owed');
  } finally {
    if (failedRun) printWarnings(cluster.gateways);
    // Generators first: their exit closes 100,000 sockets at once, then the gateways stop without a drain to wait for.
    await Promise.allSettled(workers.map((w) => w.kill()));
    await cluster.stop(5000);
  }
  if (failedRun) process.exitCode = 1;
}

await main();
