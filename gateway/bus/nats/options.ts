/**
 * Options of the NATS engine and the names derived from them. One deployment = one prefix:
 * several deployments can share a NATS account as long as their prefixes differ.
 *
 *   stream   `<prefix>_topics`   subjects `<prefix>.in.>`, RePublish to `<prefix>.out.>`
 *   KV       `<prefix>_state`    key = topic, value = state snapshot
 *   topic `chat.room1`  ->  `<prefix>.in.chat.room1` (publish) / `<prefix>.out.chat.room1` (live)
 */
import type { ConnectionOptions, NatsConnection } from 'nats';
import type { Logger } from '../../log.ts';
import type { BusStatus } from '../bus.ts';
import type { NatsCredentials } from '../../../nats-kit/connect.ts';
import { purgeRules, type NamespaceAge, type PurgeRule } from './purge.ts';
import { BUS_PREFIX_RE, DEFAULT_BUS_PREFIX, busInSubject, busOutSubject, busStreamName } from '../../../protocol/envelope.ts';

export type { NatsCredentials } from '../../../nats-kit/connect.ts';

export interface NatsBusOptions {
  /** One or more server URLs (`nats://host:4222`); the client fails over between them. */
  readonly servers: string | readonly string[];
  readonly credentials?: NatsCredentials;
  /** Deployment prefix: [A-Za-z0-9_-], at most 32 characters. Default `symphonic`. */
  readonly prefix?: string;
  /** Stream and KV replicas: 1 on a single node, 3 in a cluster. Default 1. */
  readonly replicas?: number;
  /**
   * What the stream keeps per topic: the last `size` messages, none older than `ageMs`. Defaults
   * 1000 / 1 h. With `historyFor`, this must be the largest window any topic gets.
   */
  readonly history?: { readonly size?: number; readonly ageMs?: number };
  /**
   * A narrower window for some topics (namespaces): resume and history treat messages outside it
   * as dropped. Clamped to `history` (the stream cannot give back more than it stores).
   */
  readonly historyFor?: (topic: string) => { readonly size: number; readonly ageMs: number } | undefined;
  /**
   * Namespaces and their max ages: the keeper purges a namespace's messages older than its age
   * from the stream (purge.ts). Without it, narrower ages are applied only when reading.
   */
  readonly namespaces?: readonly NamespaceAge[];
  /** Connection name shown by the server (monitoring, `nats server report connections`). */
  readonly name?: string;
  readonly snapshot?: {
    /** The keeper writes a topic's snapshot after this many of its messages. Default history.size / 2 (must stay below it). */
    readonly everyMessages?: number;
    /** ...and once the topic has been idle this long. Default 1 s. */
    readonly idleMs?: number;
    /** KV bucket max age (0 = keep forever, the default). Snapshots of quiet topics vanish after it. */
    readonly ttlMs?: number;
  };
  readonly keeper?: {
    /** Whether this gateway may become the deployment's state keeper (one at a time, by lease). Default true. */
    readonly enabled?: boolean;
    /** A keeper that has not renewed its lease for this long is replaced. Default 5 s. */
    readonly leaseMs?: number;
    /** Topics whose state the keeper holds in memory (least recently active are written and dropped). Default 10,000. */
    readonly maxTopics?: number;
  };
  /** Messages of a watched topic kept in memory for fast resume. Default min(history.size, 100). */
  readonly cacheSize?: number;
  /** Live messages buffered per topic while a gap is repaired; past it the buffer is dropped and re-read from the stream. Default 10,000. */
  readonly maxPending?: number;
  /** A publish (with its retries through leader elections and reconnects) fails after this. Default 15 s. */
  readonly publishTimeoutMs?: number;
  /**
   * A read (resume, history, a topic's first load, a gap repair, a snapshot) retries through
   * stream leader elections and reconnects until this, then fails (the client gets 5001). Default 15 s.
   */
  readonly readTimeoutMs?: number;
  /** start() fails if NATS cannot be reached and the stream set up within this. Default 15 s. */
  readonly connectTimeoutMs?: number;
  /** Called on every status change (ready, degraded, closed). */
  readonly onStatus?: (status: BusStatus) => void;
  readonly logger?: Logger;
  /** Connection factory (default: `connect` from the nats package); lets a host share or wrap the connection. */
  readonly connect?: (options: ConnectionOptions) => Promise<NatsConnection>;
}

export interface HistoryWindow {
  readonly size: number;
  /** Infinity: no age limit. */
  readonly ageMs: number;
  /** Narrower than what the stream stores: reads must apply it. */
  readonly narrower: boolean;
}

export interface ResolvedNatsOptions {
  readonly servers: string[];
  readonly credentials: NatsCredentials | undefined;
  readonly prefix: string;
  readonly replicas: number;
  readonly historySize: number;
  readonly historyAgeMs: number;
  /** The retention window of a topic (its namespace's, within the stream's). */
  readonly windowOf: (topic: string) => HistoryWindow;
  /** Namespaces the keeper purges by age. */
  readonly purgeRules: readonly PurgeRule[];
  readonly name: string;
  readonly snapshotEvery: number;
  readonly snapshotIdleMs: number;
  readonly snapshotTtlMs: number;
  readonly keeperEnabled: boolean;
  readonly keeperLeaseMs: number;
  readonly keeperMaxTopics: number;
  readonly cacheSize: number;
  readonly maxPending: number;
  readonly publishTimeoutMs: number;
  readonly readTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly streamName: string;
  readonly bucket: string;
  readonly inPrefix: string;
  readonly outPrefix: string;
}

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 0) throw new Error(`nats bus: ${name} must be a non-negative integer (got ${value})`);
  return v;
}

export function resolveOptions(o: NatsBusOptions): ResolvedNatsOptions {
  const servers = typeof o.servers === 'string' ? [o.servers] : [...o.servers];
  if (servers.length === 0) throw new Error('nats bus: at least one server URL is required');
  const prefix = o.prefix ?? DEFAULT_BUS_PREFIX;
  if (!BUS_PREFIX_RE.test(prefix)) throw new Error(`nats bus: prefix ${JSON.stringify(prefix)} must be 1-32 characters of [A-Za-z0-9_-]`);
  const replicas = positiveInt('replicas', o.replicas, 1);
  if (replicas < 1 || replicas > 5) throw new Error('nats bus: replicas must be 1..5');
  const historySize = positiveInt('history.size', o.history?.size, 1000);
  if (historySize < 1) throw new Error('nats bus: history.size must be at least 1');
  const historyAgeMs = positiveInt('history.ageMs', o.history?.ageMs, 3_600_000);
  const ageLimit = historyAgeMs > 0 ? historyAgeMs : Infinity;
  const streamWindow: HistoryWindow = { size: historySize, ageMs: ageLimit, narrower: false };
  const windowOf = (topic: string): HistoryWindow => {
    const w = o.historyFor?.(topic);
    if (!w) return streamWindow;
    const size = Math.min(w.size, historySize);
    const ageMs = Math.min(w.ageMs > 0 ? w.ageMs : Infinity, ageLimit);
    return size < historySize || ageMs < ageLimit ? { size, ageMs, narrower: true } : streamWindow;
  };
  const snapshotEvery = positiveInt('snapshot.everyMessages', o.snapshot?.everyMessages, Math.max(1, Math.floor(historySize / 2)));
  if (snapshotEvery < 1 || snapshotEvery >= Math.max(2, historySize)) {
    // A snapshot older than the retained tail cannot be brought up to date from the stream.
    throw new Error('nats bus: snapshot.everyMessages must be at least 1 and below history.size');
  }
  return {
    servers,
    credentials: o.credentials,
    prefix,
    replicas,
    historySize,
    historyAgeMs,
    windowOf,
    purgeRules: purgeRules(o.namespaces ?? [], ageLimit),
    name: o.name ?? `symphonic-${process.pid}`,
    snapshotEvery,
    snapshotIdleMs: positiveInt('snapshot.idleMs', o.snapshot?.idleMs, 1000),
    snapshotTtlMs: positiveInt('snapshot.ttlMs', o.snapshot?.ttlMs, 0),
    keeperEnabled: o.keeper?.enabled ?? true,
    keeperLeaseMs: Math.max(300, positiveInt('keeper.leaseMs', o.keeper?.leaseMs, 5_000)),
    keeperMaxTopics: Math.max(1, positiveInt('keeper.maxTopics', o.keeper?.maxTopics, 10_000)),
    cacheSize: positiveInt('cacheSize', o.cacheSize, Math.min(historySize, 100)),
    maxPending: Math.max(1, positiveInt('maxPending', o.maxPending, 10_000)),
    publishTimeoutMs: Math.max(100, positiveInt('publishTimeoutMs', o.publishTimeoutMs, 15_000)),
    readTimeoutMs: Math.max(100, positiveInt('readTimeoutMs', o.readTimeoutMs, 15_000)),
    connectTimeoutMs: Math.max(100, positiveInt('connectTimeoutMs', o.connectTimeoutMs, 15_000)),
    streamName: busStreamName(prefix),
    bucket: `${prefix}_state`,
    inPrefix: busInSubject(prefix, ''),
    outPrefix: busOutSubject(prefix, ''),
  };
}
