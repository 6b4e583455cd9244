/**
 * Shared state changed safely by many writers at once (conditional publish): 20 SDK clients on 3
 * gateway processes sharing one nats-server each increment one counter 50 times through
 * `client.update()` (read state and position, publish `set` expected at that position, retry on
 * 2008). The final state is exactly 1000 and the topic holds exactly the 1000 accepted updates,
 * 1..1000 in order.
 *
 * One NATS node, not three: nats-server 2.9 (Debian's) checks a replicated stream's expected
 * sequence only before replication, so concurrent writers can both succeed there; the engine
 * refuses conditional publishes on such a deployment, which the second test checks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { SymphonicClient } from '../../sdk/index.ts';
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.ts';
import { assertNatsServerInstalled, startNatsCluster, startNatsServer, type NatsCluster, type NatsServer } from '../support/nats-server.ts';

let nats: NatsServer;
let cluster: NatsCluster | undefined;
const gateways: GatewayProcess[] = [];
const clients: SymphonicClient[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
  gateways.push(
    ...(await Promise.all(
      ['c-1', 'c-2', 'c-3'].map((name) =>
        startGatewayProcess({
          name,
          config: {
            bus: { engine: 'nats', nats: { servers: [nats.url], prefix: 'cnt' }, history: { size: 2000 } },
            limits: { connRatePerSec: 0, userRatePerSec: 0 },
          },
          readyTimeoutMs: 60_000,
        }),
      ),
    )),
  );
}, 120_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(gateways.map((g) => g.stop(5_000)));
  await nats?.cleanup();
  await cluster?.cleanup();
}, 60_000);

describe('optimistic concurrency across gateways', () => {
  it('20 clients x 50 increments through update() on 3 gateways: exactly 1000, every update stored once', async () => {
    const topic = 'cnt.counter';
    for (let i = 0; i < 20; i++) {
      const c = new SymphonicClient(gateways[i % 3]!.url, { WebSocket: WebSocket as never });
      c.connect();
      clients.push(c);
    }
    let conflictsSeen = 0;
    const t0 = Date.now();
    await Promise.all(
      clients.map(async (c) => {
        for (let n = 0; n < 50; n++) {
          await c.update<{ count: number }>(
            topic,
            (s) => {
              if (s !== undefined) conflictsSeen++; // counts reads, not conflicts: every read after the first
              return { count: (s?.count ?? 0) + 1 };
            },
            { attempts: 200 },
          );
        }
      }),
    );
    const took = Date.now() - t0;
    const h = await clients[0]!.history(topic, { limit: 1000 });
    expect(h.messages.map((m) => (m.data as { count: number }).count)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    const check = new SymphonicClient(gateways[2]!.url, { WebSocket: WebSocket as never });
    check.connect();
    clients.push(check);
    const sub = check.subscribe<{ count: number }>(topic);
    await sub.ready(10_000);
    expect(sub.state).toEqual({ count: 1000 });
    console.info(`counter: 1000 increments by 20 clients on 3 gateways in ${took} ms (${conflictsSeen} state reads)`);
  }, 180_000);

  it('on a replicated stream of nats-server < 2.10 a conditional publish is refused with 2004, never silently raced', async () => {
    cluster = await startNatsCluster(3);
    const g = await startGatewayProcess({
      name: 'c-r3',
      config: { bus: { engine: 'nats', nats: { servers: [...cluster.urls], prefix: 'cnt3', replicas: 3 } } },
      readyTimeoutMs: 60_000,
    });
    gateways.push(g);
    const c = new SymphonicClient(g.url, { WebSocket: WebSocket as never });
    c.connect();
    clients.push(c);
    const [major, minor] = (/v?(\d+)\.(\d+)/.exec(assertNatsServerInstalled()) ?? []).slice(1).map(Number);
    const atomic = major! > 2 || (major === 2 && minor! >= 10);
    const outcome = await c.publish('cnt3.t', { v: 1 }, { kind: 'set', expect: 0 }).then(
      () => 'stored',
      (e: unknown) => e,
    );
    if (atomic) expect(outcome).toBe('stored');
    else {
      expect(outcome).toMatchObject({ code: 2004 });
      expect(String((outcome as Error).message)).toMatch(/2\.10/);
    }
    // Unconditional publishes work as always.
    await expect(c.publish('cnt3.t', { v: 1 }, { kind: 'set' })).resolves.toMatchObject({ seq: expect.any(Number) });
  }, 120_000);
});
