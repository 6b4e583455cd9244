/**
 * This gateway's terms as the deployment's state keeper: it takes part in the `=keeper` lease,
 * and while it holds it runs a StateKeeper (keeper.ts) fed by one wildcard subscription on
 * `<prefix>.out.>`, which also feeds the watched topics (they drop their own subscriptions), and
 * the AgePurger (purge.ts), which needs the sequences only that subscription sees.
 */
import type { Subscription } from 'nats';
import { StateKeeper } from './keeper.ts';
import { Lease } from './lease.ts';
import { AgePurger } from './purge.ts';
import { withTimeout } from './requests.ts';
import { linked, type EngineState } from './state.ts';
import { subscribeAll, subscribeTopic } from './watches.ts';

/** A state keeper that has not started reading within this is abandoned and retried. */
const KEEPER_START_TIMEOUT_MS = 5_000;

export interface KeeperTerm {
  readonly keeper: StateKeeper;
  /** The keeper's `<prefix>.out.>` subscription: also the live path of every watched topic meanwhile. */
  readonly sub: Subscription;
  /** Purges namespaces by age (only the keeper sees every message's sequence). */
  purger: AgePurger | undefined;
}

export interface KeeperTerms {
  /** Joins the lease (when this gateway may keep); a lone gateway is the keeper when this resolves. */
  begin(): Promise<void>;
  /** The stream was recreated: a running keeper starts over on the new one. */
  restart(): Promise<void>;
  /** Writes the last snapshots and hands the lease back, so another gateway takes over at once. */
  end(): Promise<void>;
}

export function createKeeperTerms(s: EngineState): KeeperTerms {
  const { o, log } = s;
  const my: { lease: Lease | undefined; starting: Promise<void> | undefined } = { lease: undefined, starting: undefined };

  async function start(): Promise<void> {
    if (s.term || s.status === 'closed' || !my.lease?.holder) return;
    const { nc, jsm, reader, store } = linked(s);
    const k = new StateKeeper(reader, store, o, () => s.epoch, log, {
      maxTopics: o.keeperMaxTopics,
      stats: s.counts.keeper,
      trim: async (topic, keep) => (await jsm.streams.purge(o.streamName, { filter: o.inPrefix + topic, keep })).purged,
    });
    s.counts.keeperTerms++;
    k.start();
    const term: KeeperTerm = { keeper: k, sub: subscribeAll(s, k), purger: undefined };
    s.term = term;
    try {
      // Once the server has the wildcard, the topics' own subscriptions can go (the feeds drop
      // the copies both deliver meanwhile). Bounded: the lease's next renewal retries.
      await withTimeout(nc.flush(), KEEPER_START_TIMEOUT_MS, 'keeper subscription');
      if (s.term !== term) return;
      for (const w of s.watches.values()) {
        w.sub?.unsubscribe();
        w.sub = undefined;
      }
      if (o.purgeRules.length > 0) {
        term.purger = new AgePurger(jsm, o.streamName, o.inPrefix, o.purgeRules, log, (ns) => k.purgeFloor(ns), s.counts.purge);
        term.purger.start();
      }
      log.info('nats bus: this gateway is the state keeper', { stream: o.streamName });
    } catch (e) {
      if (s.term === term) await stop();
      log.warn('nats bus: state keeper could not start', { error: (e as Error).message });
    }
  }

  async function stop(): Promise<void> {
    const term = s.term;
    if (!term) return;
    s.term = undefined;
    await term.purger?.stop();
    // Topics get their own subscriptions back before the wildcard goes: no instant without one.
    for (const [topic, w] of s.watches) w.sub ??= subscribeTopic(s, topic, w.feed);
    // Bounded: while NATS is away a flush waits for the reconnect, and there is nothing to miss then.
    const { nc } = linked(s);
    if (s.status !== 'closed' && !nc.isClosed()) await withTimeout(nc.flush(), KEEPER_START_TIMEOUT_MS, 'flush').catch(() => {});
    term.sub.unsubscribe();
    await term.keeper.stop();
  }

  return {
    async begin() {
      if (!o.keeperEnabled) return;
      my.lease = new Lease(
        linked(s).store.kv,
        '=keeper',
        `${o.name}-${s.id}`,
        o.keeperLeaseMs,
        {
          acquired: () => {
            my.starting = start();
          },
          // Holding the lease without a running keeper (its start failed): try again.
          renewed: () => {
            if (!s.term && s.status === 'ready') my.starting = start();
          },
          lost: () => void stop(),
        },
        log,
      );
      // A lone gateway is the keeper before start() returns: nothing it is sent goes unkept.
      await my.lease.start();
      await my.starting;
    },
    async restart() {
      // The keeper's reads and snapshots belonged to the old stream.
      if (!s.term) return;
      await stop();
      await start();
    },
    async end() {
      await stop();
      await my.lease?.stop();
    },
  };
}
