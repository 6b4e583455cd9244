/**
 * A rolling restart behind nginx, as an operator deploys: 3 NATS nodes (replicas 3), 3 gateway
 * processes on fixed ports behind nginx (no sticky sessions), CLIENTS protocol-level clients that
 * know only nginx's address (half resume with `hello.restore`, half with `sub` + `since`), and a
 * backend publishing numbered messages through nginx's `POST /api/publish` with an
 * Idempotency-Key. Every gateway in turn is drained, by SIGTERM or (the second) by the admin API's
 * POST /api/drain (clients closed with 4000 over the drain window, each resumes on another gateway
 * through nginx), exits by itself, and is started again on its port. Then: every client has every message exactly once, in order; every resume was on
 * the same session and recovered. Figures: reconnect times (close to all topics resubscribed:
 * the longest a client went without messages) and the drains' lengths.
 *
 * Needs nats-server and nginx (apt-get install nats-server nginx).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { renderNginxConfig } from '../../scripts/nginx-config.ts';
import { trackChild } from '../support/children.ts';
import { printWarnings, startGatewayProcess, type GatewayProcess } from '../support/gateway-process.ts';
import { freePorts, startNatsCluster, type NatsCluster } from '../support/nats-server.ts';
import { Changes } from '../support/changes.ts';
import { ClusterClient } from './support/cluster-client.ts';
import { HttpPublisher } from './support/http-publisher.ts';
import { percentile } from './support/percentile.ts';
import { deliveredEverything } from './support/delivery.ts';
import { PublishStream } from './support/publish-stream.ts';
import { NO_PROBLEMS, sequenceProblems } from './support/sequence-checks.ts';

const KEY = 'rolling-api-key';
const ADMIN_KEY = 'rolling-admin-key';
const PREFIX = 'roll';
const TOPICS = ['roll.a', 'roll.b', 'roll.c'];
/** Clients in all; the run has 500 (ROLLING_CLIENTS=500). */
const CLIENTS = Number(process.env.ROLLING_CLIENTS ?? 150);
const RATE = 40;
const DRAIN_MS = 3000;

let cluster: NatsCluster;
let nginx: ChildProcess | undefined;
let dir = '';
const changes = new Changes();
const gateways: GatewayProcess[] = [];
const started: GatewayProcess[] = [];
const clients: ClusterClient[] = [];
const figures: string[] = [];
let stream: PublishStream | undefined;

function startGw(name: string, port: number, servers: readonly string[]): Promise<GatewayProcess> {
  return startGatewayProcess({
    name,
    config: {
      bus: { engine: 'nats', nats: { servers: [...servers], prefix: PREFIX, replicas: 3 } },
      api: { keys: [KEY, { key: ADMIN_KEY, scopes: ['admin'] }] },
      limits: { connRatePerSec: 0, userRatePerSec: 0 },
      ws: { heartbeatMs: 60_000 },
      drain: { windowMs: DRAIN_MS },
    },
    env: { PORT: String(port) },
    readyTimeoutMs: 60_000,
  }).then((p) => {
    started.push(p);
    return p;
  });
}

beforeAll(async () => {
  const nginxCheck = spawnSync('nginx', ['-v'], { encoding: 'utf8' });
  if (nginxCheck.error) throw new Error(`nginx is required for this test but could not be run (${nginxCheck.error.message}): apt-get install nginx`);
  cluster = await startNatsCluster(3);
}, 120_000);

afterAll(async () => {
  await stream?.stop().catch(() => {});
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  await Promise.all(started.map((p) => p.stop(5_000)));
  if (nginx && nginx.exitCode === null) {
    nginx.kill('SIGTERM');
    await new Promise((r) => nginx!.once('exit', r));
  }
  await cluster?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
  console.info(`rolling-restart figures:\n  ${figures.join('\n  ')}`);
}, 60_000);

describe('rolling restart behind nginx', () => {
  it('every gateway drained and restarted in turn: nothing lost or doubled, every resume recovered', async () => {
    onTestFailed(() => printWarnings(started));
    const ports = await freePorts(4);
    const gwPorts = ports.slice(0, 3);
    gateways.push(...(await Promise.all(gwPorts.map((port, i) => startGw(`gw-${i + 1}`, port, cluster.urls)))));
    dir = mkdtempSync(join(tmpdir(), 'symphonic-rolling-'));
    const conf = join(dir, 'nginx.conf');
    writeFileSync(conf, renderNginxConfig(dir, ports[3]!, gwPorts));
    nginx = spawn('nginx', ['-c', conf, '-p', dir, '-g', 'daemon off;'], { stdio: 'ignore' });
    trackChild(nginx);
    const front = `ws://127.0.0.1:${ports[3]}/ws`;
    const frontHttp = `http://127.0.0.1:${ports[3]}`;
    for (let i = 0; i < CLIENTS; i++) clients.push(new ClusterClient(`r${i}`, { urls: [front], changes, restore: i % 2 === 0 }));
    for (let i = 0; i < clients.length; i += 25) {
      await Promise.all(
        clients.slice(i, i + 25).map(async (cl) => {
          // nginx may still be starting: the first connects are retried (bounded).
          for (let attempt = 0; ; attempt++) {
            try {
              await cl.connect(0);
              break;
            } catch (e) {
              if (attempt >= 20) throw e;
              await new Promise((r) => setTimeout(r, 100));
            }
          }
          await cl.subscribe(TOPICS);
        }),
      );
    }
    const publisher = new HttpPublisher(KEY, [frontHttp]);
    stream = new PublishStream(publisher, {
      topics: TOPICS,
      via: () => 0,
      maxPerTopic: 100_000,
      changes,
      idempotencyPrefix: `roll-${Date.now()}`,
      ratePerTopic: RATE,
    });
    await stream.reach(RATE, 30_000);

    for (let i = 0; i < gateways.length; i++) {
      const old = gateways[i]!;
      const on = ((await (await fetch(`${old.httpUrl}/healthz`)).json()) as { connections: number }).connections;
      const t0 = Date.now();
      // The second gateway is drained from the admin API, the others by SIGTERM: the same drain.
      const how = i === 1 ? 'POST /api/drain' : 'SIGTERM';
      if (i === 1) {
        const r = await fetch(`${old.httpUrl}/api/drain`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}` } });
        expect(r.status).toBe(202);
        expect(await old.exited).toMatchObject({ code: 0 }); // drained, then exits by itself
      } else {
        await old.stop(DRAIN_MS + 10_000); // SIGTERM: drains, then exits
      }
      const drainedMs = Date.now() - t0;
      gateways[i] = await startGw(`${old.name}'`, gwPorts[i]!, cluster.urls);
      await changes.until(
        () => clients.every((c) => c.connected && TOPICS.every((t) => c.view(t).phase === 'live')),
        60_000,
        () => `all clients live after ${old.name} restarted (${clients.filter((c) => !c.connected).length} disconnected)`,
      );
      figures.push(`${old.name}: ${how} to exit ${drainedMs} ms (drain window ${DRAIN_MS} ms), restarted; it held ${on} clients`);
    }

    const count = stream.minCount();
    await stream.reach(count + RATE, 60_000);
    await stream.stop();
    await deliveredEverything(changes, clients, TOPICS, stream);
    await Promise.all(clients.map((c) => c.settled()));

    for (const cl of clients) {
      for (const t of TOPICS) {
        const v = cl.view(t);
        expect({ client: cl.name, topic: t, ...sequenceProblems(v, stream.count(t)) }).toEqual({ client: cl.name, topic: t, ...NO_PROBLEMS });
        expect({
          client: cl.name,
          topic: t,
          notRecovered: v.subscribes.filter((s) => s.wasRecovering && !s.recovered).length,
          unavailable: v.unavailable.length,
        }).toEqual({ client: cl.name, topic: t, notRecovered: 0, unavailable: 0 });
      }
      expect({ client: cl.name, resumed: cl.reconnects.map((r) => r.resumed) }).toEqual({ client: cl.name, resumed: cl.reconnects.map(() => true) });
      expect({ client: cl.name, codes: [...new Set(cl.reconnects.map((r) => r.closeCode))] }).toEqual({
        client: cl.name,
        codes: cl.reconnects.length ? [4000] : [],
      });
      expect(cl.stray).toEqual([]);
    }
    const reconnects = clients.flatMap((c) => c.reconnects);
    expect(reconnects.length).toBeGreaterThanOrEqual(CLIENTS);
    const took = reconnects.map((r) => r.resubscribedAt! - r.closedAt);
    figures.push(
      `${CLIENTS} clients x ${TOPICS.length} topics at ${RATE} msg/s each, ${stream.count(TOPICS[0]!)} messages per topic; ${reconnects.length} resumes, all recovered; reconnect (close to all topics resubscribed) p50 ${percentile(took, 50)} ms, p90 ${percentile(took, 90)} ms, p99 ${percentile(took, 99)} ms, worst gap a client saw ${Math.max(...took)} ms; HTTP publish attempts failed: ${publisher.failures.length}`,
    );
  }, 300_000);
});
