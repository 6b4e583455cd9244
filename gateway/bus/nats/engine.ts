/**
 * The NATS/JetStream engine of the Bus: wires the parts (README.md has the design and the file
 * table) around one shared state (state.ts) and implements `Bus` on them:
 *   start     setup.ts connects and sets up the stream and the bucket; identity.ts listens to the
 *             stream; keeper-term.ts joins the keeper lease.
 *   watch     watches.ts: one subscription per watched topic, sequenced by a TopicFeed.
 *   publish   publish.ts: the kit's retried JetStream publish with the engine's rules.
 *   recover   reads.ts: from the feed's memory when the topic is watched, else stream + KV.
 *   epoch     identity.ts: the stream's creation time, re-checked on reconnect and advisories.
 */
import { connect as natsConnect, nuid } from 'nats';
import { BusRequestError, type Bus, type BusCluster, type Engine, type PresenceHandlers } from '../bus.ts';
import { joinNatsCluster } from './cluster.ts';
import { NatsBusError } from './errors.ts';
import { figures, stats, type NatsBusStats } from './figures.ts';
import { createIdentity } from './identity.ts';
import { createKeeperTerms } from './keeper-term.ts';
import type { NatsBusOptions } from './options.ts';
import { createNatsPresence } from './presence.ts';
import { createPublish } from './publish.ts';
import { history, recover } from './reads.ts';
import { createNatsInbox } from './inbox.ts';
import { serviceRequest } from './service-requests.ts';
import { createSessionRegistry, type RegistryOptions } from './sessions.ts';
import { connect, setUp } from './setup.ts';
import { assertOpen, assertTopic, linked, newState, setStatus } from './state.ts';
import { unwatch, unwatchAll, watch } from './watches.ts';

export interface NatsBus extends Bus {
  readonly engine: 'nats';
  /** The current stream epoch ('' before start). */
  epoch(): string;
  stats(): NatsBusStats;
}

export interface NatsEngine extends Engine {
  readonly bus: NatsBus;
}

/** The bus, the cluster's session registry (sessions.ts) and the inboxes (inbox.ts), each on its own connection. */
export async function createNatsEngine(options: NatsBusOptions, sessions: Omit<RegistryOptions, 'nats'> & { inboxSize?: number }): Promise<NatsEngine> {
  const bus = createNatsBus(options);
  const { inboxSize = 1000, ...registry } = sessions;
  const store = await createSessionRegistry({ ...registry, nats: options });
  const inbox = await createNatsInbox({ nats: options, ttlMs: registry.ttlMs, nodeId: registry.nodeId, log: registry.log, inboxSize }).catch(
    async (e: unknown) => {
      await store.close();
      throw e;
    },
  );
  return { bus, sessions: store, inbox };
}

export function createNatsBus(options: NatsBusOptions): NatsBus {
  const s = newState(options);
  const terms = createKeeperTerms(s);
  const identity = createIdentity(s, terms);
  const publish = createPublish(s, identity);
  let cluster: BusCluster | undefined;
  // One instance id for the roster and presence: a gateway's members are dropped when its instance leaves the roster.
  const instance = nuid.next();
  const presence = createNatsPresence({
    prefix: s.o.prefix,
    instance,
    log: s.log,
    connection: () => linked(s).nc,
    peers: () => (cluster ? cluster.members().length - 1 : 0),
  });
  let presenceHandlers: PresenceHandlers | undefined;

  return {
    engine: 'nats',

    async start(handler) {
      if (s.status !== 'starting' || s.conn) throw new NatsBusError('bad_state', `start: bus is ${s.status}`);
      s.deliver = handler;
      const deadline = Date.now() + s.o.connectTimeoutMs;
      const conn = await connect(s, deadline, () => void identity.recoverConnection(), options.connect ?? natsConnect);
      try {
        s.link = await setUp(s, conn.nc, deadline, identity.adopt);
        // Someone deleting or recreating the stream changes the epoch; hear about it at once.
        identity.listen();
        await terms.begin();
      } catch (e) {
        await conn.close().catch(() => {});
        throw e;
      }
      setStatus(s, conn.nc.isClosed() ? 'degraded' : 'ready');
    },

    watch(topic) {
      try {
        assertOpen(s, 'watch');
        assertTopic(topic);
      } catch (e) {
        return Promise.reject(e);
      }
      return watch(s, topic);
    },

    unwatch: (topic) => unwatch(s, topic),

    async publish(topic, kind, data, publishOptions) {
      assertOpen(s, 'publish');
      assertTopic(topic);
      return publish(topic, kind, data, publishOptions);
    },

    async recover(topic, since) {
      assertOpen(s, 'recover');
      assertTopic(topic);
      return recover(s, topic, since);
    },

    async history(topic, since, limit) {
      assertOpen(s, 'history');
      assertTopic(topic);
      return history(s, topic, since, limit);
    },

    status: () => s.status,

    joinCluster(clusterOptions) {
      assertOpen(s, 'joinCluster');
      if (cluster) throw new NatsBusError('bad_state', 'joinCluster: already joined');
      cluster = joinNatsCluster(
        linked(s).nc,
        s.o.prefix,
        clusterOptions,
        () => ({ engine: 'nats', status: s.status, keeper: s.term?.keeper.active ?? false }),
        s.log,
        {
          instance,
          appeared: (peer) => presenceHandlers?.appeared(peer),
          gone(peer) {
            presence.forget(peer);
            presenceHandlers?.gone(peer);
          },
        },
      );
      return cluster;
    },

    presence: {
      ...presence,
      start(handlers) {
        presenceHandlers = handlers;
        presence.start(handlers);
      },
    },

    async request(subject, payload, headers, timeoutMs, signal) {
      if (s.status === 'closed' || !s.link) throw new BusRequestError('unavailable', `the bus is ${s.status}`);
      return serviceRequest(s.link.nc, `${s.o.prefix}.${subject}`, payload, headers, timeoutMs, signal);
    },

    async close() {
      if (s.status === 'closed') return;
      // The other gateways are told at once that this one leaves (they would drop it after 3 beats).
      await cluster?.leave();
      presence.close();
      presenceHandlers = undefined;
      setStatus(s, 'closed');
      unwatchAll(s);
      identity.close();
      if (!s.conn) return;
      // The keeper writes its last snapshots (bounded: a dead connection must not hold the
      // shutdown), then the lease is handed back so another gateway takes over at once.
      await terms.end();
      await s.conn.close().catch(() => {});
    },

    epoch: () => s.epoch,
    figures: () => {
      const p = presence.stats();
      return [
        ...figures(stats(s)),
        { name: 'presence_messages_sent_total', type: 'counter', help: 'Presence batches and full-set answers sent to other gateways.', value: p.messages },
        { name: 'presence_bytes_sent_total', type: 'counter', help: 'Bytes of presence sent to other gateways (core NATS).', value: p.bytes },
      ];
    },
    stats: () => stats(s),
  };
}
