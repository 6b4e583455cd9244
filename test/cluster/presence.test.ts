/**
 * Presence across gateways (docs/protocol.md section 15): a 3-node NATS cluster, 3 gateway
 * processes (each connected to its own node), raw protocol clients. What a user relies on:
 *   - a client on gateway A sees the joins and leaves of clients on B and C;
 *   - a session that resumes on another gateway within the grace period never leaves;
 *   - when a gateway is SIGKILLed, its members (those that do not come back elsewhere) leave on
 *     every other gateway within 3 x cluster.heartbeatMs + presence.intervalMs.
 *   - a gateway restarted under the same node id drops its old instance's members at once (its
 *     heartbeat is slow here: staleness alone would take 90 s).
 * Every wait is on a frame or a log line, with a timeout; nothing sleeps to synchronise.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { PresenceFrame, ServerFrame } from '../../protocol/index.ts';
import { printWarnings, startGatewayProcess, type GatewayProcess } from '../support/gateway-process.ts';
import { startNatsCluster, type NatsCluster } from '../support/nats-server.ts';
import { connectRaw, isReply, type RawClient } from '../support/raw-client.ts';

const HEARTBEAT = 500;
const INTERVAL = 100;
const GRACE = 2_000;
/** The stated bound (docs/protocol.md section 15). */
const BOUND = 3 * HEARTBEAT + INTERVAL;
/**
 * What the bound leaves out, on this loaded 2-core machine: timer lateness in the gateways and the
 * NATS hops to the observing client (a few ms idle; up to a few hundred when two other test runs
 * share the cores). The measured figure is printed.
 */
const SLACK = 400;
const KEY = 'presence-cluster-key';

let cluster: NatsCluster;
const started: GatewayProcess[] = [];
const clients: RawClient[] = [];
const figures: string[] = [];

function startGw(name: string, node: number, heartbeatMs = HEARTBEAT): Promise<GatewayProcess> {
  // One gateway per NATS node: presence crosses the cluster's routes.
  const servers = [cluster.urls[node]!];
  return startGatewayProcess({
    name,
    config: {
      bus: { engine: 'nats', nats: { servers, prefix: 'pr', replicas: 3 } },
      cluster: { heartbeatMs },
      presence: { intervalMs: INTERVAL, graceMs: GRACE },
      namespaces: { room: { presence: 'members' } },
      limits: { connRatePerSec: 0, userRatePerSec: 0 },
      api: { keys: [{ key: KEY, scopes: ['publish', 'admin'] }] },
    },
    readyTimeoutMs: 60_000,
  }).then((p) => {
    started.push(p);
    return p;
  });
}

type P = PresenceFrame;
const isPresence = (topic: string) => (f: ServerFrame) => f.t === 'presence' && f.topic === topic && f.id === undefined;
let nextId = 1;

async function hello(url: string, session?: { id: string; key: string }) {
  const c = await connectRaw(url, 'json');
  clients.push(c);
  c.send({ t: 'hello', v: 1, ...(session ? { session, restore: {} } : {}) });
  const w = await c.next<Extract<ServerFrame, { t: 'welcome' }>>((f) => f.t === 'welcome', 15_000);
  return { c, session: { id: w.session, key: w.key }, resumed: w.resumed };
}

async function member(url: string, topic: string) {
  const h = await hello(url);
  const id = nextId++;
  h.c.send({ t: 'sub', id, topic });
  await h.c.next(isReply(id), 15_000);
  await h.c.next(isPresence(topic), 15_000);
  return h;
}

/** The client's view of `topic` after applying every presence frame (set semantics). */
function view(c: RawClient, topic: string): Set<string> {
  const s = new Set<string>();
  for (const f of c.frames) {
    if (!isPresence(topic)(f)) continue;
    const p = f as P;
    if (p.members) {
      s.clear();
      for (const m of p.members) s.add(m.session);
    }
    for (const m of p.join ?? []) s.add(m.session);
    for (const m of p.leave ?? []) s.delete(m.session);
  }
  return s;
}

const until = (c: RawClient, topic: string, ok: (v: Set<string>) => boolean, timeoutMs = 15_000) =>
  c.next((f) => isPresence(topic)(f) && ok(view(c, topic)), timeoutMs).then(() => view(c, topic));

/** Sessions that appear in a join or a leave among frames after `mark`. */
function touched(c: RawClient, topic: string, mark: number): string[] {
  return (c.frames.slice(mark).filter(isPresence(topic)) as P[]).flatMap((p) => [...(p.join ?? []), ...(p.leave ?? [])]).map((m) => m.session);
}

/** Polls the admin API until `g` knows `n` gateways (each answer is an event; 30 s at most). */
async function rosterOf(g: GatewayProcess, n: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await fetch(`${g.httpUrl}/api/admin/cluster`, { headers: { authorization: `Bearer ${KEY}` } });
    const body = (await r.json()) as { gateways?: unknown[] };
    if ((body.gateways?.length ?? 0) >= n) return;
    if (Date.now() > deadline) throw new Error(`${g.name} knows ${body.gateways?.length ?? 0} gateways, not ${n}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

let a: GatewayProcess;
let b: GatewayProcess;
let c: GatewayProcess;

beforeAll(async () => {
  cluster = await startNatsCluster(3);
  [a, b, c] = await Promise.all([startGw('gw-a', 0), startGw('gw-b', 1), startGw('gw-c', 2)]);
  // The roster is whole once every gateway has heard the other two (presence syncs ride on it).
  await Promise.all([a, b, c].map((g) => rosterOf(g, 3)));
}, 180_000);

afterAll(async () => {
  for (const cl of clients) cl.ws.terminate();
  await Promise.all(started.map((p) => p.stop(5_000)));
  await cluster?.cleanup();
  console.info(`presence cluster figures:\n  ${figures.join('\n  ')}`);
}, 60_000);

describe('presence across 3 gateways on a 3-node NATS cluster', () => {
  it('a client on A sees the joins and leaves of clients on B and C', async () => {
    onTestFailed(() => printWarnings(started, 40));
    const watcher = await member(a.url, 'room.x');
    const onB = await member(b.url, 'room.x');
    const onC = await member(c.url, 'room.x');
    await until(watcher.c, 'room.x', (v) => v.has(onB.session.id) && v.has(onC.session.id) && v.size === 3);
    // B's and C's clients see the same three.
    await until(onB.c, 'room.x', (v) => v.size === 3);
    await until(onC.c, 'room.x', (v) => v.size === 3);

    onB.c.send({ t: 'unsub', id: nextId++, topic: 'room.x' });
    await until(watcher.c, 'room.x', (v) => !v.has(onB.session.id) && v.size === 2);
    await until(onC.c, 'room.x', (v) => !v.has(onB.session.id) && v.size === 2);

    // A presence request on B (not subscribed there any more) reads the members of A and C.
    onB.c.send({ t: 'presence', id: 900, topic: 'room.x' });
    const r = await onB.c.next<P>(isReply(900), 15_000);
    expect(r.members?.map((m) => m.session).sort()).toEqual([watcher.session.id, onC.session.id].sort());
    // So does GET /api/presence on B.
    const res = await fetch(`${b.httpUrl}/api/presence?topic=room.x`, { headers: { authorization: `Bearer ${KEY}` } });
    const body = (await res.json()) as { count: number; members: { session: string }[] };
    expect(body.count).toBe(2);
    expect(body.members.map((m) => m.session).sort()).toEqual([watcher.session.id, onC.session.id].sort());
  }, 90_000);

  it('a session that resumes on another gateway within the grace period does not leave and join again', async () => {
    onTestFailed(() => printWarnings(started, 40));
    const watcher = await member(a.url, 'room.y');
    const mover = await member(b.url, 'room.y');
    // Drops with the mover and never comes back: its leave (after graceMs) proves the mover's grace on B is over.
    const control = await member(b.url, 'room.y');
    await until(watcher.c, 'room.y', (v) => v.size === 3);
    const mark = watcher.c.frames.length;

    mover.c.ws.terminate();
    control.c.ws.terminate();
    const back = await hello(c.url, mover.session);
    expect(back.resumed).toBe(true);
    await back.c.next(isPresence('room.y'), 15_000);
    await until(watcher.c, 'room.y', (v) => !v.has(control.session.id), GRACE + 15_000);
    expect(touched(watcher.c, 'room.y', mark)).not.toContain(mover.session.id);
    expect(view(watcher.c, 'room.y').has(mover.session.id)).toBe(true);
    expect(view(back.c, 'room.y').has(mover.session.id)).toBe(true);
  }, 90_000);

  it("a SIGKILLed gateway's members leave everywhere within 3 x heartbeatMs + intervalMs", async () => {
    onTestFailed(() => printWarnings(started, 40));
    const onA = await member(a.url, 'room.z');
    const onB = await member(b.url, 'room.z');
    const doomed = await Promise.all([member(c.url, 'room.z'), member(c.url, 'room.z')]);
    // Resumes on A right after the kill: it never leaves.
    const survivor = await member(c.url, 'room.z');
    const ids = doomed.map((d) => d.session.id);
    for (const w of [onA, onB]) await until(w.c, 'room.z', (v) => v.size === 5);
    const mark = onA.c.frames.length;

    const killedAt = Date.now();
    await c.kill();
    const moved = await hello(a.url, survivor.session);
    expect(moved.resumed).toBe(true);
    const seen = await Promise.all(
      [onA, onB].map(async (w) => {
        await until(w.c, 'room.z', (v) => ids.every((id) => !v.has(id)), 15_000);
        return Date.now() - killedAt;
      }),
    );
    figures.push(`gateway SIGKILL -> its members gone on A after ${seen[0]} ms, on B after ${seen[1]} ms (bound ${BOUND} ms + ${SLACK} ms slack)`);
    for (const ms of seen) expect(ms).toBeLessThanOrEqual(BOUND + SLACK);
    expect(touched(onA.c, 'room.z', mark)).not.toContain(survivor.session.id);
    expect(view(onA.c, 'room.z')).toEqual(new Set([onA.session.id, onB.session.id, survivor.session.id]));
    expect(view(onB.c, 'room.z')).toEqual(new Set([onA.session.id, onB.session.id, survivor.session.id]));
  }, 90_000);

  it("a gateway restarted under the same node id: the old instance's members leave as soon as the new one is heard", async () => {
    onTestFailed(() => printWarnings(started, 40));
    // A slow heartbeat (30 s: dropped after 90 s): only the restart itself can end its members in time.
    const d = await startGw('gw-d', 1, 30_000);
    await rosterOf(a, 3);
    const watcher = await member(a.url, 'room.r');
    const doomed = await member(d.url, 'room.r');
    await until(watcher.c, 'room.r', (v) => v.has(doomed.session.id));
    await d.kill();
    const restartedAt = Date.now();
    await startGw('gw-d', 1, 30_000);
    await until(watcher.c, 'room.r', (v) => !v.has(doomed.session.id), 30_000);
    figures.push(`gateway restarted under its node id -> its old members gone ${Date.now() - restartedAt} ms after the restart began`);
  }, 120_000);
});
