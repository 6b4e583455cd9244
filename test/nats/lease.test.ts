/**
 * The keeper lease (gateway/bus/nats/lease.ts) and the snapshot bucket's start-up
 * (snapshots.ts), on real nats-server processes.
 *
 * Cluster: gateways starting together against a bucket that was just created. nats-server 2.9
 * drops, without any answer, requests to a stream whose raft group has not elected its first
 * leader yet; only the gateway that created the bucket is answered after that election, the
 * others are answered at once and their next request (the lease's first read) used to wait for
 * the client's whole JetStream timeout (5 s) inside start().
 *
 * Single node: the lease against a KV whose requests the test drops, or whose answers it loses
 * after the write was applied - the two ways a request can time out.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, type ConnectionOptions, type JetStreamOptions, type KV, type KvEntry, type NatsConnection } from 'nats';
import { Lease, type LeaseEvents } from '../../gateway/bus/nats/lease.ts';
import { bucketAnswers } from '../../gateway/bus/nats/snapshots.ts';
import { Changes } from '../support/changes.ts';
import { startNatsCluster, startNatsServer, type NatsCluster, type NatsServer } from '../support/nats-server.ts';
import { Buses, eventually, type Opened } from './support.ts';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
let n = 0;
const unique = (what: string) => `${what}${process.pid}_${++n}`;

/** Resolves with `p`, or fails after `ms` saying what did not happen (instead of hanging the test). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------
// Gateways starting together on a new bucket, in a 3-node cluster (replicas 3)

describe('gateways starting together on a fresh 3-node cluster', () => {
  let cluster: NatsCluster;
  const buses = new Buses();

  beforeAll(async () => {
    cluster = await startNatsCluster(3, { readyTimeoutMs: 20_000 });
  }, 90_000);
  afterEach(() => buses.closeAll());
  afterAll(() => cluster?.cleanup());

  /** Starts `count` gateways of one new deployment at once, each connected to a different node first. */
  async function startTogether(count: number, connectFn?: (o: ConnectionOptions) => Promise<NatsConnection>): Promise<{ opened: Opened[]; ms: number[] }> {
    const prefix = unique('lease');
    const urls = [...cluster.urls];
    const ms: number[] = [];
    const opened = await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const t0 = Date.now();
        const o = await buses.start({
          servers: [...urls.slice(i % urls.length), ...urls.slice(0, i % urls.length)],
          prefix,
          replicas: 3,
          name: `${prefix}-g${i}`,
          connectTimeoutMs: 30_000,
          ...(connectFn ? { connect: connectFn } : {}),
        });
        ms[i] = Date.now() - t0;
        return o;
      }),
    );
    return { opened, ms };
  }

  const keepers = (opened: Opened[]) => opened.filter((o) => o.bus.stats().keeper).length;

  it('all start, and exactly one becomes the keeper', async () => {
    const { opened, ms } = await startTogether(3);
    console.info(`3 gateways started together on a new deployment in ${ms.join(', ')} ms`);
    expect(opened.map((o) => o.bus.status())).toEqual(['ready', 'ready', 'ready']);
    await eventually('exactly one keeper', () => keepers(opened) === 1, 15_000);
    // Everyone else sees the keeper's renewals: nobody takes over while it renews (default lease 5 s).
    expect(keepers(opened)).toBe(1);
  }, 60_000);

  it('does not wait on a request the new bucket leaves unanswered, however long the client would', async () => {
    // The JetStream client the bus uses for the bucket (and publishes) times out after 60 s
    // instead of 5 s: a start waiting on a dropped bucket request would take a minute, one that
    // asks again with short timeouts about as long as the election. (The stream setup uses the
    // JetStream manager, left at 5 s: that is the engine's part.)
    const patient = async (o: ConnectionOptions): Promise<NatsConnection> => {
      const nc = await connect(o);
      const jetstream = nc.jetstream.bind(nc);
      nc.jetstream = (opts?: JetStreamOptions) => jetstream({ timeout: 60_000, ...opts });
      return nc;
    };
    const started = startTogether(3, patient);
    const { opened, ms } = await within(started, 30_000, 'three gateways starting together');
    console.info(`3 gateways (60 s bucket client timeout) started together in ${ms.join(', ')} ms`);
    await eventually('exactly one keeper', () => keepers(opened) === 1, 15_000);
  }, 60_000);
});

// ---------------------------------------------------------------------------------------------
// The lease itself, on one node, with requests dropped or answers lost on purpose

type Op = 'get' | 'create' | 'update' | 'delete';
type Fault = 'drop' | 'lose-answer' | 'late';

/**
 * A KV that forwards to a real bucket, except: `next(op, fault)` makes the next call of `op`
 * never reach the server ('drop'), reach it but never answer ('lose-answer': the write happens,
 * the caller never learns), or reach it only just before the following call of `op` does, never
 * answering either ('late'). `cut` drops every call (a partition).
 */
class FaultyKv {
  cut = false;
  private readonly faults: Record<Op, Fault[]> = { get: [], create: [], update: [], delete: [] };
  private readonly parked: Partial<Record<Op, () => Promise<unknown>>> = {};
  readonly calls: Record<Op, number> = { get: 0, create: 0, update: 0, delete: 0 };
  readonly kv: KV;

  constructor(readonly real: KV) {
    const wrap =
      <A extends unknown[], R>(op: Op, call: (...args: A) => Promise<R>) =>
      (...args: A): Promise<R> => {
        this.calls[op]++;
        const fault = this.cut ? 'drop' : this.faults[op].shift();
        if (fault === 'drop') return new Promise<R>(() => {});
        const late = this.parked[op];
        delete this.parked[op];
        if (fault === 'late') {
          this.parked[op] = () => call(...args);
          return new Promise<R>(() => {});
        }
        const answer = late
          ? late()
              .catch(() => {})
              .then(() => call(...args))
          : call(...args);
        if (fault === 'lose-answer') {
          answer.catch(() => {});
          return new Promise<R>(() => {});
        }
        return answer;
      };
    this.kv = {
      get: wrap('get', (k: string) => real.get(k)),
      create: wrap('create', (k: string, v: Uint8Array) => real.create(k, v)),
      update: wrap('update', (k: string, v: Uint8Array, rev: number) => real.update(k, v, rev)),
      delete: wrap('delete', (k: string, o?: { previousSeq?: number }) => real.delete(k, o)),
    } as unknown as KV;
  }

  next(op: Op, ...faults: Fault[]): void {
    this.faults[op].push(...faults);
  }
}

/** Lease events, counted, with a way to wait for one. */
class Seen implements LeaseEvents {
  readonly at = { acquired: [] as number[], lost: [] as number[], renewed: [] as number[] };
  private readonly changes = new Changes();

  acquired(): void {
    this.push('acquired');
  }
  lost(): void {
    this.push('lost');
  }
  renewed(): void {
    this.push('renewed');
  }

  private push(k: keyof Seen['at']): void {
    this.at[k].push(Date.now());
    this.changes.bump();
  }

  /** Resolves once `check()` holds (now or after a later event), else fails after `timeoutMs`. */
  until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    return this.changes.until(check, timeoutMs, () => `${what} (events: ${JSON.stringify(this.at)})`);
  }
}

const ownerOf = (e: KvEntry | null) => (e ? (JSON.parse(new TextDecoder().decode(e.value)) as { owner: string }).owner : undefined);

describe('keeper lease on one node', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  const leases: Lease[] = [];

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
  });
  afterEach(async () => {
    await Promise.all(leases.splice(0).map((l) => l.stop()));
  });
  afterAll(async () => {
    await nc?.close();
    await server?.cleanup();
  });

  async function bucket(): Promise<KV> {
    return nc.jetstream().views.kv(unique('lease_'), { history: 1 });
  }

  function lease(kv: KV, owner: string, ttlMs: number, seen = new Seen()): { lease: Lease; seen: Seen } {
    const l = new Lease(kv, '=keeper', owner, ttlMs, seen, quiet);
    leases.push(l);
    return { lease: l, seen };
  }

  it('a lone lease holds before start() returns; a clean stop hands over at once', async () => {
    const kv = await bucket();
    const a = lease(kv, 'a', 3_000);
    await a.lease.start();
    expect(a.lease.holder).toBe(true);
    const b = lease(kv, 'b', 3_000);
    await b.lease.start();
    expect(b.lease.holder).toBe(false);
    await a.lease.stop();
    // No ttl to wait out: the key is gone, b creates it on its next check.
    await b.seen.until(() => b.seen.at.acquired.length === 1, 'b to acquire the released lease');
    expect(ownerOf(await kv.get('=keeper'))).toBe('b');
  });

  it('start() asks again when reads go unanswered, and holds as soon as one is answered', async () => {
    const f = new FaultyKv(await bucket());
    f.next('get', 'drop', 'drop');
    const a = lease(f.kv, 'a', 2_000);
    await within(a.lease.start(), 10_000, 'start()');
    expect(a.lease.holder).toBe(true);
    expect(f.calls.get).toBe(3);
    expect(a.seen.at.acquired).toHaveLength(1);
  });

  it('start() returns, not holding, when the bucket never answers; the lease is taken once it does', async () => {
    const f = new FaultyKv(await bucket());
    f.cut = true;
    const a = lease(f.kv, 'a', 1_000);
    await within(a.lease.start(), 10_000, 'start()');
    expect(a.lease.holder).toBe(false);
    expect(f.calls.get).toBeGreaterThan(1); // asked again, not one long wait
    f.cut = false;
    await a.seen.until(() => a.lease.holder, 'the lease to be taken in the background');
  });

  it('a create applied but never answered makes the lease ours, not a stale lease to wait out', async () => {
    const real = await bucket();
    const f = new FaultyKv(real);
    f.next('create', 'lose-answer');
    const a = lease(f.kv, 'a', 60_000);
    await within(a.lease.start(), 10_000, 'start()');
    expect(a.lease.holder).toBe(true);
    const e = await real.get('=keeper');
    expect(ownerOf(e)).toBe('a');
    expect(e?.revision).toBe(2); // the create that was not answered, then ours adopted
    expect(a.seen.at.acquired).toHaveLength(1);
  });

  it('a create of ours applied too late, after our next create was refused, makes the lease ours', async () => {
    const real = await bucket();
    const f = new FaultyKv(real);
    f.next('create', 'late');
    const a = lease(f.kv, 'a', 60_000);
    await within(a.lease.start(), 10_000, 'start()');
    expect(f.calls.create).toBe(2); // the second one found the key created (by the first)
    expect(a.lease.holder).toBe(true);
    expect(ownerOf(await real.get('=keeper'))).toBe('a');
    expect(a.seen.at.acquired).toHaveLength(1);
  });

  it('a renewal applied but never answered does not give the lease up', async () => {
    const real = await bucket();
    const f = new FaultyKv(real);
    const a = lease(f.kv, 'a', 2_000);
    await a.lease.start();
    expect(a.lease.holder).toBe(true);
    f.next('update', 'lose-answer');
    const before = a.seen.at.renewed.length;
    const updates = f.calls.update;
    // The next renewal conflicts with our own unanswered one, finds it ours and carries on.
    await a.seen.until(() => a.seen.at.renewed.length >= before + 2 && f.calls.update >= updates + 3, 'renewals after the lost answer');
    expect(a.seen.at.lost).toHaveLength(0);
    expect(a.lease.holder).toBe(true);
    expect(ownerOf(await real.get('=keeper'))).toBe('a');
  });

  it('a holder cut off is replaced after the ttl, gives up by itself, and does not come back when healed', async () => {
    const real = await bucket();
    const f = new FaultyKv(real);
    const ttl = 1_000;
    const a = lease(f.kv, 'a', ttl);
    await a.lease.start();
    const b = lease(real, 'b', ttl);
    await b.lease.start();
    expect([a.lease.holder, b.lease.holder]).toEqual([true, false]);
    // b must see a's revision move before the cut, so its ttl clock runs from a real renewal.
    await a.seen.until(() => a.seen.at.renewed.length >= 2, 'a to renew');
    const lastRenewal = () => a.seen.at.renewed.at(-1)!;
    f.cut = true;
    await b.seen.until(() => b.seen.at.acquired.length === 1, 'b to take over');
    await a.seen.until(() => a.seen.at.lost.length === 1, 'a to give the lease up');
    // Not before a's revision stood still for about the ttl (loose: a's last renewal is seen late by b).
    expect(b.seen.at.acquired[0]! - lastRenewal()).toBeGreaterThanOrEqual(ttl / 2);
    f.cut = false;
    // Healed: a sees b renewing and stays a challenger.
    const renewals = b.seen.at.renewed.length;
    const gets = f.calls.get;
    await b.seen.until(() => b.seen.at.renewed.length >= renewals + 3 && f.calls.get >= gets + 2, 'b renewing while a checks');
    expect(a.lease.holder).toBe(false);
    expect(a.seen.at.acquired).toHaveLength(1);
    expect(ownerOf(await real.get('=keeper'))).toBe('b');
  });

  it('bucketAnswers() waits for the first answer, and gives up on a bucket that never answers', async () => {
    const f = new FaultyKv(await bucket());
    f.next('get', 'drop', 'drop');
    expect(await within(bucketAnswers(f.kv, 10_000), 15_000, 'bucketAnswers')).toBe(true);
    expect(f.calls.get).toBe(3);
    f.cut = true;
    expect(await within(bucketAnswers(f.kv, 500), 5_000, 'bucketAnswers')).toBe(false);
  });
});
