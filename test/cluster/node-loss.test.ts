/**
 * Lossless when a NATS node dies and stays dead: the fault a 3-node JetStream cluster exists to
 * survive, tried the way an operator meets it. 3 NATS nodes (stream and buckets at replicas 3),
 * 3 gateway processes, CLIENTS protocol-level clients (a third on each gateway, each subscribed
 * to the same 3 topics; half resume with `hello.restore`, half with `sub` + `since`), and a
 * backend publishing numbered messages through `POST /api/publish` with an Idempotency-Key.
 *
 * Faults, in order, each waited out by its events (every client resubscribed):
 *   1. SIGKILL gw-c (it stays down): its clients resume on gw-a and gw-b;
 *   2. SIGKILL the stream's leader node (it stays down);
 *   3. SIGTERM gw-b and start gw-b2 (started after the node died): gw-b's clients resume there
 *      or on gw-a;
 *   4. SIGTERM gw-a and start gw-a2: its clients resume on gw-b2 or gw-a2.
 *
 * What a user relies on: every client ends with every message exactly once and in order, every
 * resume is `recovered: true` on a resumed session, no request is answered 5001 (the gateway
 * rides out the election itself), and no gateway doubts a topic's state.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { connect, type NatsConnection } from 'nats';
import { printWarnings, startGatewayProcess, type GatewayProcess } from '../support/gateway-process.ts';
import type { NatsCluster } from '../support/nats-server.ts';
import { Changes } from '../support/changes.ts';
import { ClusterClient } from './support/cluster-client.ts';
import { HttpPublisher } from './support/http-publisher.ts';
import { startMonitoredCluster } from './support/nats-monitor.ts';
import { percentile } from './support/percentile.ts';
import { deliveredEverything } from './support/delivery.ts';
import { PublishStream } from './support/publish-stream.ts';
import { NO_PROBLEMS, sequenceProblems } from './support/sequence-checks.ts';

const KEY = 'node-loss-api-key';
const PREFIX = 'nl';
const TOPICS = ['nl.a', 'nl.b', 'nl.c'];
/** Clients in all (a third per gateway); the issue's run had 300. */
const CLIENTS = Number(process.env.NODE_LOSS_CLIENTS ?? 150);
/** Publishes per second per topic (about what the HTTP publisher sustains beside everything else here). */
const RATE = 40;

let cluster: NatsCluster;
let admin: NatsConnection;
const changes = new Changes();
const started: GatewayProcess[] = [];
const clients: ClusterClient[] = [];
const figures: string[] = [];
const welcomed: string[] = [];
let stream: PublishStream | undefined;

function startGw(name: string): Promise<GatewayProcess> {
  return startGatewayProcess({
    name,
    config: {
      bus: { engine: 'nats', nats: { servers: [...cluster.urls], prefix: PREFIX, replicas: 3 } },
      api: { keys: [KEY] },
      limits: { connRatePerSec: 0, userRatePerSec: 0 },
      ws: { heartbeatMs: 60_000 },
    },
    readyTimeoutMs: 60_000,
  }).then((p) => {
    started.push(p);
    return p;
  });
}

/** Every client has every topic subscribed on a live socket. */
function allLive(cs: readonly ClusterClient[]): boolean {
  return cs.every((c) => c.connected && TOPICS.every((t) => c.view(t).phase === 'live'));
}

/** The clients connected to `gw` now. */
function clientsOn(gw: GatewayProcess): ClusterClient[] {
  return clients.filter((c) => c.connected && c.url === gw.url);
}

/** Waits until `movers` (the clients that were on `from`) have all resumed elsewhere and every client is live. */
async function resumedFrom(from: GatewayProcess, movers: readonly ClusterClient[], what: string): Promise<number[]> {
  const moved = (c: ClusterClient) => c.reconnects.at(-1)?.from === from.url && c.reconnects.at(-1)!.resubscribedAt !== undefined;
  await changes.until(
    () => movers.every(moved) && allLive(clients),
    60_000,
    () => `${what}: ${movers.filter((c) => !moved(c)).length} of ${movers.length} clients not resubscribed`,
  );
  await Promise.all(movers.map((c) => c.settled()));
  const records = movers.map((c) => c.reconnects.at(-1)!);
  welcomed.push(
    `${what}: welcome after p50 ${percentile(
      records.map((r) => r.connectedAt! - r.closedAt),
      50,
    )} ms, max ${Math.max(...records.map((r) => r.connectedAt! - r.closedAt))} ms`,
  );
  return records.map((r) => r.resubscribedAt! - r.closedAt);
}

function spread(ms: number[]): string {
  return `p50 ${percentile(ms, 50)} ms, p99 ${percentile(ms, 99)} ms, max ${Math.max(...ms)} ms (${ms.length} clients)`;
}

beforeAll(async () => {
  cluster = await startMonitoredCluster(3);
  admin = await connect({ servers: [...cluster.urls] });
}, 120_000);

afterAll(async () => {
  await stream?.stop().catch(() => {});
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  await Promise.all(started.map((p) => p.stop(5_000)));
  await admin?.close().catch(() => {});
  await cluster?.cleanup();
  console.info(`node-loss figures:\n  ${[...figures, ...welcomed].join('\n  ')}`);
}, 60_000);

describe('a NATS node dies and stays dead', () => {
  it('every client gets every message exactly once, in order, through gateway kills and restarts, all resumes recovered', async () => {
    onTestFailed(() => printWarnings(started, 40));
    const [a, b, c] = await Promise.all([startGw('gw-a'), startGw('gw-b'), startGw('gw-c')]);
    const urls = [a.url, b.url, c.url];
    // Client i starts on gateway i % 3 and reconnects to the next gateway in its list.
    for (let i = 0; i < CLIENTS; i++) {
      const own = i % 3;
      clients.push(new ClusterClient(`c${i}`, { urls: [...urls.slice(own), ...urls.slice(0, own)], changes, restore: i % 2 === 0 }));
    }
    for (let i = 0; i < clients.length; i += 25) {
      await Promise.all(
        clients.slice(i, i + 25).map(async (cl) => {
          await cl.connect(0);
          await cl.subscribe(TOPICS);
        }),
      );
    }
    const publisher = new HttpPublisher(KEY, [a.httpUrl, b.httpUrl]);
    stream = new PublishStream(publisher, {
      topics: TOPICS,
      via: (i) => i % 2,
      maxPerTopic: 100_000,
      changes,
      idempotencyPrefix: `run-${Date.now()}`,
      ratePerTopic: RATE,
    });
    await stream.reach(RATE, 30_000);

    // 1. A gateway crashes and stays down.
    const onC = clientsOn(c);
    await c.kill();
    figures.push(`gw-c SIGKILLed: its clients resubscribed ${spread(await resumedFrom(c, onC, 'after gw-c died'))}`);

    // 2. The stream's leader node dies and stays down (an election, and NATS reconnects).
    const leader = (await (await admin.jetstreamManager()).streams.info(`${PREFIX}_topics`)).cluster?.leader;
    const victim = cluster.nodes.find((n) => n.name === leader);
    expect(victim, `stream leader ${leader}`).toBeDefined();
    const countAtKill = stream.minCount();
    await victim!.kill();
    await admin.close();
    admin = await connect({ servers: cluster.nodes.filter((n) => n.running).map((n) => n.url) });
    await stream.reach(countAtKill + RATE, 60_000);

    // 3-4. Rolling restart of the surviving gateways, each replacement started after the node died.
    let publishVia = [a.httpUrl];
    for (const [old, name] of [
      [b, 'gw-b2'],
      [a, 'gw-a2'],
    ] as const) {
      const fresh = await startGw(name);
      for (const cl of clients) cl.urls.push(fresh.url);
      publishVia = [...publishVia.filter((u) => u !== old.httpUrl), fresh.httpUrl];
      // The publisher moves to gateways that stay up (an HTTP publish cut by the stop would only be retried).
      publisher.httpUrls.splice(0, Infinity, ...publishVia);
      const movers = clientsOn(old);
      await old.stop(20_000);
      figures.push(
        `${old.name} SIGTERMed, ${name} started after the NATS node died: its clients resubscribed ${spread(await resumedFrom(old, movers, `after ${old.name} stopped`))}`,
      );
    }

    const lastCount = stream.minCount();
    await stream.reach(lastCount + RATE, 60_000);
    await stream.stop();
    await deliveredEverything(changes, clients, TOPICS, stream);

    for (const cl of clients) {
      for (const t of TOPICS) {
        const v = cl.view(t);
        expect({ client: cl.name, topic: t, ...sequenceProblems(v, stream.count(t)) }).toEqual({ client: cl.name, topic: t, ...NO_PROBLEMS });
        // Every resume was within retention: every one of them recovered.
        expect({
          client: cl.name,
          topic: t,
          lossReports: v.lossReports,
          notRecovered: v.subscribes.filter((s) => s.wasRecovering && !s.recovered).length,
        }).toEqual({ client: cl.name, topic: t, lossReports: 0, notRecovered: 0 });
        // Served within the gateway's own retry bound: no "retry later" reached a client.
        expect({ client: cl.name, topic: t, unavailable: v.unavailable }).toEqual({ client: cl.name, topic: t, unavailable: [] });
      }
      expect({ client: cl.name, resumed: cl.reconnects.map((r) => r.resumed) }).toEqual({ client: cl.name, resumed: cl.reconnects.map(() => true) });
      expect(cl.stray).toEqual([]);
    }
    const restorers = clients.filter((_, i) => i % 2 === 0);
    expect(restorers.reduce((n, cl) => n + cl.restored, 0)).toBeGreaterThan(0);

    const doubts = started.flatMap((p) =>
      p
        .logs()
        .filter((l) => /may be incomplete|may be lost|resume from registry failed/.test(String(l.msg)))
        .map((l) => `${p.name}: ${l.msg} ${JSON.stringify(l)}`),
    );
    expect(doubts).toEqual([]);

    const failures = started.flatMap((p) =>
      p
        .logs()
        .filter((l) => /failed/.test(String(l.msg)))
        .map((l) => `${p.name} ${l.msg}`),
    );
    figures.push(
      `${CLIENTS} clients x ${TOPICS.length} topics, ${stream.count(TOPICS[0]!)} messages per topic at ${RATE}/s; ${clients.reduce((n, cl) => n + cl.reconnects.length, 0)} resumes (${restorers.reduce((n, cl) => n + cl.restored, 0)} subscriptions restored by hello.restore, ${restorers.reduce((n, cl) => n + cl.restoreErrors, 0)} restores refused); HTTP publish attempts failed: ${publisher.failures.length}; gateway log lines with "failed": ${failures.length} ${[...new Set(failures)].slice(0, 5).join('; ')}`,
    );
  }, 300_000);
});
