/**
 * What the engine's parts share, in one object: options, logger, status, the stream's epoch, the
 * connection with its readers and stores, the watched topics, the keeper's term and the counters.
 * Every part reads the current value from here and keeps no copy of it, so a reconnect, a new
 * epoch or a keeper term is seen by all of them at once.
 */
import type { JetStreamManager, NatsConnection } from 'nats';
import type { JsWriter } from '../../../nats-kit/js-writer.ts';
import { nuid } from 'nats';
import { isValidTopic } from '../../../protocol/index.ts';
import type { Logger } from '../../log.ts';
import type { BusMessage, BusStatus } from '../bus.ts';
import type { BusConnection } from './connection.ts';
import { NatsBusError } from './errors.ts';
import { newKeeperStats, type KeeperStats } from './keeper.ts';
import type { KeeperTerm } from './keeper-term.ts';
import { resolveOptions, type NatsBusOptions, type ResolvedNatsOptions } from './options.ts';
import type { StreamReader } from './reader.ts';
import type { ReplayReader } from './replays.ts';
import type { SnapshotStore } from './snapshots.ts';
import type { Watch } from './watches.ts';

/** The connection's clients, readers and stores, once start() has set them up. */
export interface Link {
  readonly nc: NatsConnection;
  /** JetStream publishes (nats-kit/js-writer.ts). */
  readonly writer: JsWriter;
  readonly jsm: JetStreamManager;
  readonly reader: StreamReader;
  readonly replays: ReplayReader;
  readonly store: SnapshotStore;
}

/** What a topic's feed counts. */
export interface FeedCounts {
  delivered: number;
  repairs: number;
  repaired: number;
  duplicates: number;
  losses: number;
}

/** Cumulative over the engine's life: topics unwatched and keeper terms ended still count. */
export interface Counts {
  published: number;
  publishRetries: number;
  resyncs: number;
  epochChanges: number;
  /** Messages on an out subject without RePublish headers (only the first few are logged). */
  foreign: number;
  keeperTerms: number;
  /** The feeds of topics no longer watched. */
  readonly retired: FeedCounts;
  /** One object for every keeper and purger this gateway ran. */
  readonly keeper: KeeperStats;
  readonly purge: { purges: number; purged: number; failures: number };
}

export interface EngineState {
  readonly o: ResolvedNatsOptions;
  readonly log: Logger;
  /** This engine's unique name: the prefix of its message ids and its name in the keeper lease. */
  readonly id: string;
  readonly onStatus: ((status: BusStatus) => void) | undefined;
  status: BusStatus;
  /** Where live messages go (the handler given to start()). */
  deliver: (m: BusMessage) => void;
  /** The stream's identity ('' before start). */
  epoch: string;
  /** Set as soon as start() connects, so close() closes it whatever start() got to. */
  conn: BusConnection | undefined;
  /** Set once start() has set up the stream and the bucket. */
  link: Link | undefined;
  readonly watches: Map<string, Watch>;
  /** While this gateway is the state keeper. */
  term: KeeperTerm | undefined;
  readonly counts: Counts;
}

const defaultLogger: Logger = {
  debug() {},
  info() {},
  warn(msg, fields) {
    console.warn(JSON.stringify({ level: 'warn', msg, ...fields }));
  },
  error(msg, fields) {
    console.error(JSON.stringify({ level: 'error', msg, ...fields }));
  },
};

export function newState(options: NatsBusOptions): EngineState {
  return {
    o: resolveOptions(options),
    log: options.logger ?? defaultLogger,
    id: nuid.next(),
    onStatus: options.onStatus,
    status: 'starting',
    deliver: () => {},
    epoch: '',
    conn: undefined,
    link: undefined,
    watches: new Map(),
    term: undefined,
    counts: {
      published: 0,
      publishRetries: 0,
      resyncs: 0,
      epochChanges: 0,
      foreign: 0,
      keeperTerms: 0,
      retired: { delivered: 0, repairs: 0, repaired: 0, duplicates: 0, losses: 0 },
      keeper: newKeeperStats(),
      purge: { purges: 0, purged: 0, failures: 0 },
    },
  };
}

export function setStatus(s: EngineState, status: BusStatus): void {
  if (s.status === status || s.status === 'closed') return;
  s.status = status;
  try {
    s.onStatus?.(status);
  } catch (e) {
    s.log.error('nats bus: onStatus threw', { error: (e as Error).message });
  }
}

export function assertOpen(s: EngineState, op: string): void {
  if (s.status === 'closed') throw new NatsBusError('closed', `${op}: bus closed`);
  if (s.status === 'starting') throw new NatsBusError('not_started', `${op}: bus not started`);
}

export function assertTopic(topic: string): void {
  if (!isValidTopic(topic)) throw new NatsBusError('bad_topic', `invalid topic ${JSON.stringify(topic)?.slice(0, 80)}`);
}

/** The connection's clients and stores; only parts that run after start() set them up ask. */
export function linked(s: EngineState): Link {
  if (!s.link) throw new NatsBusError('not_started', 'bus not started');
  return s.link;
}
