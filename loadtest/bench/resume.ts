/**
 * Resume storm: N clients on G gateways (NATS engine) while a backend publishes numbered messages
 * to their topic; one gateway is killed with SIGKILL and every client it held reconnects to a
 * surviving gateway and resumes its session and subscription from its last position. Reports the
 * time from the kill until all are resubscribed with `recovered: true`, until all have caught up
 * (hold every message published up to the moment the last one resubscribed), per-client resume
 * latency, and checks that every client ends with exactly the published sequence (no loss, no
 * duplicates kept).
 *
 *   npx tsx loadtest/bench/resume.ts [--clients 1000] [--gateways 3] [--workers N] [--rate R]
 *     [--restore] [--spread] [--jitter-ms 0] [--window 64] [--out file.json]
 *
 * By default every client starts on gateway 0 (the victim) and resumes spread over the others;
 * with --spread the clients start spread over all gateways and only the victim's share resumes.
 * --restore: resume with `hello.restore` (the gateway re-subscribes the session's topic from the
 * position in the hello) instead of `hello` then `sub` with `since`. The clients live in
 * child processes (resume-worker.ts, default one per 5,000 clients).
 */
import { writeFileSync } from 'node:fs';
import { connect } from 'nats';
import { printWarnings } from '../../test/support/gateway-process.ts';
import { startFleet, type ChildMessage, type FleetChild } from '../lib/fleet.ts';
import { listenOverflows } from '../lib/netstat.ts';
import { percentile } from '../lib/percentile.ts';
import { sleep, waitUntil } from '../lib/proc.ts';
import { usageBetween, usageSnapshot } from '../lib/usage.ts';
import { startCluster, stopOnSignal, warningCounts } from './cluster.ts';
import { NumberedPublisher } from './numbered-publisher.ts';
import type { OpenPlan } from './resume-worker.ts';
import { REPO_ROOT } from './targets/paths.ts';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const CLIENTS = Number(arg('clients', '1000'));
const GATEWAYS = Number(arg('gateways', '3'));
const WORKERS = Number(arg('workers', String(Math.max(1, Math.ceil(CLIENTS / 5000)))));
/** Messages/s: every client decodes every message, so the default keeps deliveries near 200,000/s. */
const RATE = Number(arg('rate', String(Math.min(200, Math.max(10, Math.round(200_000 / CLIENTS))))));
const RESTORE = process.argv.includes('--restore');
const SPREAD = process.argv.includes('--spread');
const JITTER_MS = Number(arg('jitter-ms', '0'));
const WINDOW = Number(arg('window', '64'));
const OUT = arg('out', '');
const TOPIC = 'bench.resume';
const VICTIM = 0;
const DEADLINE_MS = 120_000;

const nowMs = () => performance.timeOrigin + performance.now();
const quantiles = (xs: number[]) => {
  const s = xs.filter((x) => x > 0).sort((a, b) => a - b);
  return { p50: Math.round(percentile(s, 50)), p99: Math.round(percentile(s, 99)), max: Math.round(s[s.length - 1] ?? Number.NaN) };
};

function plans(ports: number[]): OpenPlan[] {
  const survivors = ports.map((_, g) => g).filter((g) => g !== VICTIM);
  return Array.from({ length: WORKERS }, (_, w) => {
    const from = Math.floor((w * CLIENTS) / WORKERS);
    const to = Math.floor(((w + 1) * CLIENTS) / WORKERS);
    const start: number[] = [];
    const resumeOn: number[] = [];
    for (let i = from; i < to; i++) {
      start.push(SPREAD ? i % ports.length : VICTIM);
      resumeOn.push(survivors[i % survivors.length]!);
    }
    return { host: '127.0.0.1', ports, victim: VICTIM, topic: TOPIC, start, resumeOn, restore: RESTORE, window: WINDOW, jitterMs: JITTER_MS };
  });
}

async function received(workers: FleetChild[]): Promise<{ min: number; total: number }> {
  const r = await Promise.all(workers.map((w) => w.request<ChildMessage>({ type: 'received' }, 'received', 30_000)));
  return { min: Math.min(...r.map((x) => x.min as number)), total: r.reduce((n, x) => n + (x.total as number), 0) };
}

async function main(): Promise<void> {
  if (GATEWAYS < 2) throw new Error('--gateways must be at least 2 (one is killed)');
  const cluster = await startCluster({
    gateways: GATEWAYS,
    prefix: `resume${process.pid}`,
    config: { limits: { connRatePerSec: 0, userRatePerSec: 0 }, log: { level: 'warn' } },
  });
  let workers: FleetChild[] = [];
  let ok = false;
  stopOnSignal(async () => {
    await Promise.allSettled(workers.map((w) => w.kill()));
    await cluster.stop(1000);
  });
  try {
    workers = await startFleet('loadtest/bench/resume-worker.ts', WORKERS, REPO_ROOT);
    const ports = cluster.gateways.map((g) => g.port);
    const t0 = performance.now();
    const opened = await Promise.all(plans(ports).map((p, i) => workers[i]!.request<ChildMessage>({ type: 'open', ...p }, 'opened', DEADLINE_MS)));
    const openFailed = opened.reduce((n, o) => n + (o.failed as number), 0);
    const toResume = opened.reduce((n, o) => n + (o.toResume as number), 0);
    console.log(`opened ${CLIENTS - openFailed}/${CLIENTS} clients in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${toResume} on the victim`);
    if (openFailed > 0) throw new Error(`clients failed to open: ${opened.flatMap((o) => o.errors as string[]).join('; ')}`);

    // Publisher: numbered messages through JetStream, as a backend publishes, until stopped.
    const nc = await connect({ servers: cluster.nats.url, name: 'symphonic-resume-publisher' });
    const publisher = new NumberedPublisher(nc, cluster.prefix, [TOPIC]);
    publisher.start(RATE, DEADLINE_MS);
    // About a second of traffic at every client before the kill.
    await waitUntil(() => publisher.acked[0]! >= RATE, 30_000, 20);
    for (const start = Date.now(); Date.now() - start < 30_000; await sleep(50))
      if ((await received(workers)).min >= Math.min(RATE, publisher.acked[0]!) / 2) break;

    const resumedBy = workers.map(() => 0);
    for (const w of workers) w.onMessage = (m) => m.type === 'progress' && (resumedBy[w.index] = m.resumed as number);
    const overflows0 = listenOverflows();
    // CPU (% of a core) of every process over the second before the kill, and from the kill until all are back.
    const snap = () => usageSnapshot({ gateways: cluster.gateways.map((g) => g.pid), nats: [cluster.nats.pid!], generators: workers.map((w) => w.pid) });
    const before = snap();
    await sleep(1000);
    const cpu0 = snap();
    const victim = cluster.gateways[VICTIM]!;
    const publishedAtKill = publisher.acked[0]!;
    const killAt = nowMs();
    await victim.kill();
    const allBack = await waitUntil(() => resumedBy.reduce((a, b) => a + b, 0) >= toResume, DEADLINE_MS, 5);
    const cpu1 = snap();
    // The mark: everything published up to the moment the last client resubscribed.
    const mark = publisher.acked[0]!;
    const markAt = nowMs();
    // Let the publisher run on a little, then stop it and wait for the last messages.
    await sleep(1000);
    await publisher.stop();
    await nc.close();
    const published = publisher.acked[0]!;
    for (const start = Date.now(); Date.now() - start < 30_000; await sleep(100)) if ((await received(workers)).min >= published) break;
    const overflows = listenOverflows() - overflows0;

    const reports = await Promise.all(workers.map((w) => w.request<ChildMessage>({ type: 'report', mark }, 'report', 30_000)));
    const all = (k: string) => reports.flatMap((r) => r[k] as number[]);
    const sum = (k: string) => reports.reduce((n, r) => n + (r[k] as number), 0);
    const closedAt = all('closedAt');
    const resumedAt = all('resumedAt');
    const welcomeAt = all('welcomeAt');
    const caughtUpAt = all('caughtUpAt');
    const counts = all('counts');
    const exact = counts.filter((n) => n === published).length;
    const pub = publisher.stats();
    const result = {
      date: new Date().toISOString(),
      clients: CLIENTS,
      gateways: GATEWAYS,
      workers: WORKERS,
      placement: SPREAD ? 'spread over all gateways; the victim held its share' : 'all on the victim; resumed spread over the survivors',
      mode: RESTORE ? 'hello.restore' : 'hello, then sub with since',
      jitterMs: JITTER_MS,
      publishRatePerSec: RATE,
      resumed: { expected: toResume, done: resumedAt.filter((t) => t > 0).length, allBack },
      publishedAtKill,
      mark,
      published,
      allResubscribedMs: Math.round(Math.max(...resumedAt) - killAt),
      allCaughtUpMs: caughtUpAt.every((t) => t > 0) ? Math.round(Math.max(...caughtUpAt) - killAt) : null,
      markAfterKillMs: Math.round(markAt - killAt),
      perClientMs: {
        closeSeen: quantiles(closedAt.map((t) => t - killAt)),
        welcome: quantiles(welcomeAt.map((t, i) => t - closedAt[i]!)),
        resubscribed: quantiles(resumedAt.map((t, i) => t - closedAt[i]!)),
        resubscribedSinceKill: quantiles(resumedAt.map((t) => t - killAt)),
        caughtUpSinceKill: quantiles(caughtUpAt.map((t) => t - killAt)),
      },
      sessionsResumed: sum('sessionsResumed'),
      recovered: sum('recovered'),
      retried: sum('retried'),
      attempts: sum('attempts'),
      failedAttempts: reports.reduce<Record<string, number>>((all, r) => {
        for (const [why, n] of Object.entries(r.failedAttempts as Record<string, number>)) all[why] = (all[why] ?? 0) + n;
        return all;
      }, {}),
      exactSequence: exact,
      lost: counts.reduce((n, c) => n + Math.max(0, published - c), 0),
      wrongNumbers: sum('wrong'),
      duplicatesDropped: sum('dups'),
      seqGapsSeen: sum('seqGaps'),
      otherCloses: sum('otherCloses'),
      publishFailed: pub.failed,
      listenOverflows: overflows,
      gatewayWarnings: warningCounts(cluster.gateways),
      usage: { beforeKill: usageBetween(before, cpu0), killToAllResubscribed: usageBetween(cpu0, cpu1) },
    };
    if (OUT) writeFileSync(OUT, JSON.stringify(result, null, 2));
    else console.log(JSON.stringify(result, null, 2));
    const q = result.perClientMs;
    console.log(
      `${result.resumed.done}/${toResume} resumed (${result.recovered} recovered) on ${GATEWAYS - 1} survivors: all resubscribed ${result.allResubscribedMs} ms ` +
        `after the kill, all caught up ${result.allCaughtUpMs ?? '-'} ms; per client, close to resubscribed p50 ${q.resubscribed.p50} / p99 ${q.resubscribed.p99} ms; ` +
        `${exact}/${CLIENTS} hold exactly 1..${published}, lost ${result.lost}, ${result.duplicatesDropped} duplicates dropped by seq`,
    );
    ok = allBack && exact === CLIENTS && result.recovered === toResume && result.wrongNumbers === 0 && pub.failed === 0;
    if (!ok) console.error('FAILED: not every client resumed, recovered and holds exactly the published sequence');
  } finally {
    if (!ok) printWarnings(cluster.gateways);
    await Promise.allSettled(workers.map((w) => w.kill()));
    await cluster.stop(3000);
  }
  if (!ok) process.exitCode = 1;
}

await main();
