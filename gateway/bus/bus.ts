/**
 * The Bus: the seam between the gateway and the message backbone. Everything above it (sockets,
 * sessions, fan-out) must not know which engine runs. Each engine is a folder below this one
 * (memory/: embedded default, one node; nats/: JetStream, a cluster) whose factory returns an
 * `Engine`: its bus and its session store (sessions.ts, the other seam). All engines pass
 * test/contract/bus.contract.ts.
 *
 * Model: a topic is an ordered log. Each message has a sequence (`seq`, increasing within the
 * topic, not necessarily by one) and `prev`, the sequence of the topic's previous message (0 for
 * the first), so any reader can detect a gap. `epoch` names the log's identity: positions from
 * another epoch are meaningless (log recreated, embedded bus restarted). A topic may carry a
 * state document: `set` replaces it, `patch` merges into it (RFC 7386), `event` leaves it.
 */
import type { MessageKind, Position } from '../../protocol/index.ts';
import type { Inbox } from './inbox.ts';
import type { SessionStore } from './sessions.ts';

export interface BusMessage {
  readonly topic: string;
  readonly seq: number;
  readonly prev: number;
  readonly kind: MessageKind;
  readonly data: unknown;
  /** Publish time, ms since the Unix epoch. */
  readonly ts: number;
}

export interface PublishOptions {
  /** At most 128 characters; unique per scope for the publish it names. */
  readonly idempotencyKey?: string;
  /** Who sent the key (e.g. the API key's identity): the same key in two scopes names two publishes. */
  readonly idempotencyScope?: string;
  /**
   * Conditional publish: store only if the topic's last sequence is exactly this (0: no message
   * yet), atomically with the append; else reject with SequenceConflictError (nothing stored).
   */
  readonly expectedSeq?: number;
}

/**
 * A conditional publish found the topic elsewhere than expected (PublishOptions.expectedSeq):
 * nothing was stored; `current` is the topic's last sequence now.
 */
export class SequenceConflictError extends Error {
  override readonly name = 'SequenceConflictError';
  readonly code = 'sequence_conflict';
  constructor(
    readonly topic: string,
    readonly expected: number,
    readonly current: number,
  ) {
    super(`topic ${topic} is at sequence ${current}, not ${expected}: nothing was stored`);
  }
}

export function isSequenceConflict(e: unknown): e is { code: 'sequence_conflict'; current: number } {
  return (e as { code?: unknown } | null)?.code === 'sequence_conflict';
}

/** The engine cannot do what the publish asks on this deployment (e.g. a conditional publish): a client error, not an outage. */
export function isUnsupported(e: unknown): boolean {
  return (e as { code?: unknown } | null)?.code === 'unsupported';
}

export interface PublishResult {
  readonly seq: number;
  readonly epoch: string;
}

/** What a subscriber needs to start (or resume) reading a topic consistently. */
export interface RecoverResult {
  readonly epoch: string;
  /** The position the result is consistent at. */
  readonly seq: number;
  /** True when `replay` holds every message after the requested position. */
  readonly recovered: boolean;
  /** Messages after the requested position, oldest first (when recovered). */
  readonly replay: readonly BusMessage[];
  /** The topic's state after `seq` (undefined when the topic holds no state). Sent when not recovered. */
  readonly state: unknown;
}

export interface HistoryResult {
  readonly epoch: string;
  /** The newest sequence of the topic. */
  readonly seq: number;
  readonly messages: readonly BusMessage[];
  /** False when retention already dropped messages right after `since`. */
  readonly complete: boolean;
}

export type BusStatus = 'starting' | 'ready' | 'degraded' | 'closed';

/** An engine's own figure for /metrics (rendered as `symphonic_bus_<name>`). */
export interface BusFigure {
  readonly name: string;
  readonly type: 'counter' | 'gauge';
  readonly help: string;
  readonly value: number;
}

/**
 * The deployment's gateways, for operators (the admin API). Each gateway announces itself every
 * `intervalMs` with a small report and keeps the others' latest; one not heard of for
 * `CLUSTER_MISSED_BEATS` of its intervals is dropped. Gateways can also ask each other to run a
 * small admin operation (disconnect a session, count a topic's subscribers). Engines without
 * peers (the embedded bus) answer with this gateway alone (cluster.ts `localCluster`).
 */
export const CLUSTER_MISSED_BEATS = 3;

/** What a gateway tells the others about itself: plain JSON, its fields are the caller's business. */
export type NodeReport = Readonly<Record<string, unknown>>;

/** The engine's own part of a gateway's entry. */
export interface ClusterBusInfo {
  readonly engine: string;
  readonly status: BusStatus;
  /** Whether it holds the deployment-wide state keeper role; null for engines without one. */
  readonly keeper: boolean | null;
}

/** One gateway of the deployment, as this gateway knows it. */
export interface ClusterMember {
  readonly node: string;
  /** This gateway (its report read just now), or another (its latest heartbeat). */
  readonly self: boolean;
  /** When this gateway last heard from it (ms since the epoch, this gateway's clock); now for itself. */
  readonly lastSeen: number;
  /** Its heartbeat interval: it is dropped when not heard from for CLUSTER_MISSED_BEATS of them. */
  readonly intervalMs: number;
  readonly bus: ClusterBusInfo;
  readonly report: NodeReport;
}

/** One gateway's answer to `ask` (`error`: the operation threw there). */
export interface ClusterAnswer {
  readonly node: string;
  readonly ok: boolean;
  readonly answer?: unknown;
  readonly error?: string;
}

export interface ClusterOptions {
  /** This gateway's node id (unique in the deployment). */
  readonly node: string;
  readonly intervalMs: number;
  /** This gateway's report, read for every heartbeat and for its own entry. */
  report(): NodeReport;
  /** Runs an operation another gateway (or this one) asked for; the answer must be JSON. */
  serve(op: string, body: unknown): Promise<unknown>;
}

export interface BusCluster {
  /** Every gateway heard from within its staleness bound, this one first. */
  members(): readonly ClusterMember[];
  /**
   * Asks gateway `target` (a node id), or every gateway (`null`, this one included), to run `op`.
   * Resolves with the answers received within `timeoutMs`; a gateway that did not answer is absent.
   */
  ask(target: string | null, op: string, body: unknown, timeoutMs: number): Promise<ClusterAnswer[]>;
  /** Stops announcing (peers are told at once, where the engine can) and answering. Idempotent. */
  leave(): Promise<void>;
}

export interface Bus {
  /** The engine's name (logs, /healthz, the `engine` label of /metrics). */
  readonly engine: string;
  /** Starts the engine; `onMessage` then receives every live message of every watched topic, in order per topic. */
  start(onMessage: (m: BusMessage) => void): Promise<void>;
  /** Declares local interest in a topic (first local subscriber). Idempotent per topic. */
  watch(topic: string): Promise<void>;
  /** Drops local interest (last local subscriber gone). */
  unwatch(topic: string): void;
  /**
   * Appends a message; resolves once it is stored and ordered. With `idempotencyKey`, a retry of
   * the same publish (same topic, kind and data) within the engine's duplicate window is stored
   * once and answers the first publish's result; the key reused in its scope for a different
   * publish rejects with an error whose `code` is 'conflict' (idempotency.ts).
   */
  publish(topic: string, kind: MessageKind, data: unknown, options?: PublishOptions): Promise<PublishResult>;
  /**
   * Start or resume reading: with `since`, the messages after it if all are still retained in the
   * same epoch (recovered), else a fresh snapshot (not recovered); without it, a fresh snapshot.
   */
  recover(topic: string, since: Position | undefined): Promise<RecoverResult>;
  /** Retained messages after `since` (at most `limit`, oldest first). */
  history(topic: string, since: number, limit: number): Promise<HistoryResult>;
  status(): BusStatus;
  /** Engine-specific figures for monitoring (optional). */
  figures?(): readonly BusFigure[];
  /**
   * Joins the deployment's roster of gateways (after start()). Optional: without it, or on an
   * engine with no peers, the cluster is this gateway alone (cluster.ts `localCluster`).
   */
  joinCluster?(options: ClusterOptions): BusCluster;
  /**
   * Presence between gateways (gateway/presence/ runs the logic; the engine only carries it).
   * Optional: without it presence is this gateway's alone (memory/presence.ts `localPresence`).
   */
  readonly presence?: PresenceLink;
  /**
   * A request/reply to whoever serves `subject` (relative to the engine's prefix: the NATS engine
   * sends to `<prefix>.<subject>`), e.g. RPC to a service in a queue group. Optional: engines with
   * no services to talk to (memory) leave it out. Rejects with a BusRequestError; `signal`
   * abandons the request (its late answer is dropped, its resources freed at once).
   */
  request?(subject: string, payload: Uint8Array, headers: Readonly<Record<string, string>>, timeoutMs: number, signal?: AbortSignal): Promise<BusReply>;
  close(): Promise<void>;
}

/** One presence member as gateways exchange it (the protocol's PresenceMember). */
export interface PresenceEntry {
  readonly session: string;
  readonly user?: string;
  readonly info?: unknown;
}

/**
 * One gateway's presence news about one topic. `seq` counts per (gateway instance, topic): a
 * receiver that sees `seq` skip asks that gateway for its full set. `full` replaces what the
 * receiver held of `from` (a sync answer); otherwise `join`/`leave` are changes since `seq - 1`.
 * Count-only topics carry `count` (the sender's whole count) and no lists.
 */
export interface PresenceChange {
  readonly topic: string;
  readonly from: string;
  readonly seq: number;
  readonly full: boolean;
  readonly join?: readonly PresenceEntry[];
  readonly leave?: readonly string[];
  readonly count?: number;
}

export interface PresenceHandlers {
  /** Another gateway's news about a topic this gateway watches (or a sync answer). */
  change(c: PresenceChange): void;
  /** This gateway's full set of `topic` (`full: true`), for a gateway that asks. */
  snapshot(topic: string): PresenceChange;
  /** A gateway instance left the roster (bye, missed beats, restarted): its members leave. */
  gone(instance: string): void;
  /** A gateway instance (re)appeared in the roster: sync the watched topics from it. */
  appeared(instance: string): void;
}

/** The engine's transport for presence: batches out, batches in, full-set requests, the roster's verdicts. */
export interface PresenceLink {
  /** This gateway's instance id (unique per process run). */
  readonly instance: string;
  start(handlers: PresenceHandlers): void;
  /** Receive other gateways' changes of `topic`. */
  watch(topic: string): void;
  unwatch(topic: string): void;
  publish(change: PresenceChange): void;
  /**
   * Asks every other gateway (or only `only`) for its full set of `topic`; resolves with the
   * answers that came before every known gateway answered or `timeoutMs` passed.
   */
  collect(topic: string, only: string | null, timeoutMs: number): Promise<PresenceChange[]>;
  close(): void;
}

/** A service's answer to `Bus.request`. */
export interface BusReply {
  readonly payload: Uint8Array;
  /** The answer's headers, names in lower case (first value of each). */
  readonly headers: Readonly<Record<string, string>>;
}

/** Why `Bus.request` got no answer: nobody serves the subject, none in time, or the bus is down. */
export class BusRequestError extends Error {
  constructor(
    readonly reason: 'no_responders' | 'timeout' | 'unavailable',
    message: string,
  ) {
    super(message);
  }
}

/** What an engine gives the gateway: its bus, and the session store that lives where the bus does. */
export interface Engine {
  readonly bus: Bus;
  readonly sessions: SessionStore;
  /** The sessions' inboxes of direct messages (inbox.ts). */
  readonly inbox: Inbox;
}
