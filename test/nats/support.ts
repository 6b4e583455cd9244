/** Helpers for the NATS engine tests: opening buses that are closed after each test, waiting. */
import { connect, type ConnectionOptions, type Msg, type NatsConnection, type SubscriptionOptions } from 'nats';
import type { BusStatus } from '../../gateway/bus/bus.ts';
import { createNatsBus, type NatsBus, type NatsBusOptions } from '../../gateway/bus/nats/index.ts';
import { Collector } from '../contract/collector.ts';

export interface Opened {
  readonly bus: NatsBus;
  readonly got: Collector;
  readonly statuses: BusStatus[];
  /** Resolves when the bus reports `status` (now or later). */
  status(status: BusStatus, timeoutMs?: number): Promise<void>;
}

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

export class Buses {
  private readonly open: NatsBus[] = [];

  async start(options: NatsBusOptions): Promise<Opened> {
    const got = new Collector();
    const statuses: BusStatus[] = [];
    const listeners = new Set<() => void>();
    const bus = createNatsBus({
      logger: quiet,
      ...options,
      onStatus: (s) => {
        statuses.push(s);
        for (const l of [...listeners]) l();
      },
    });
    this.open.push(bus);
    await bus.start(got.onMessage);
    const status = (want: BusStatus, timeoutMs = 20_000) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (bus.status() !== want) return;
          listeners.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`bus did not become ${want} within ${timeoutMs} ms (statuses: ${statuses.join(', ')})`));
        }, timeoutMs);
        listeners.add(check);
        check();
      });
    return { bus, got, statuses, status };
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.open.splice(0).map((b) => b.close()));
  }
}

/** Polls a condition (for state that has no event to wait on), failing after `timeoutMs`. */
export async function eventually<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 10_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A connection factory whose subscriptions on RePublish subjects drop the next `dropNext()`
 * messages: the live path misses them exactly as it would on a lossy route, deterministically.
 */
export function lossyConnect(): { connect: (o: ConnectionOptions) => Promise<NatsConnection>; dropNext(n: number): void; dropped: number[] } {
  let toDrop = 0;
  const dropped: number[] = [];
  return {
    dropped,
    dropNext(n: number) {
      toDrop = n;
    },
    async connect(o) {
      const nc = await connect(o);
      const subscribe = nc.subscribe.bind(nc);
      nc.subscribe = (subject: string, opts?: SubscriptionOptions) => {
        const cb = opts?.callback;
        if (!cb || !subject.includes('.out.')) return subscribe(subject, opts);
        return subscribe(subject, {
          ...opts,
          callback: (err: Error | null, msg: Msg) => {
            if (!err && toDrop > 0) {
              toDrop--;
              dropped.push(Number(msg.headers?.get('Nats-Sequence')));
              return;
            }
            cb(err as never, msg);
          },
        });
      };
      return nc;
    },
  };
}
