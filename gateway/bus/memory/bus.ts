/**
 * The embedded engine: one process, no NATS. Each topic is a bounded in-memory log with its
 * state document. Publishes are queued and applied in one batch from `setImmediate`, outside any
 * uWebSockets.js callback: fan-out then runs uncorked, where uWS can batch every subscriber's
 * writes (publishing from inside a `message` handler collapsed past ~1M deliveries/s here).
 * Sequences are assigned at flush, so the log holds exactly what has been delivered.
 */
import { randomBytes } from 'node:crypto';
import { applyMessage, type MessageKind, type Position } from '../../../protocol/index.ts';
import { SequenceConflictError, type Bus, type BusMessage, type BusStatus, type HistoryResult, type PublishResult, type RecoverResult } from '../bus.ts';
import { localCluster } from '../cluster.ts';
import { IdempotencyConflictError, idempotencyId, publishDigest } from '../idempotency.ts';
import { localPresence } from './presence.ts';

export interface MemoryBusOptions {
  history?: { size?: number; ageMs?: number };
  /** Per-topic retention (e.g. by namespace); `history` is the default for topics it leaves out. */
  historyFor?: (topic: string) => { size: number; ageMs: number } | undefined;
  /** Most topics kept; past it the least recently created unwatched topic is forgotten. */
  maxTopics?: number;
}

interface TopicLog {
  last: number;
  /** Retention of this topic, fixed when the log is created. */
  size: number;
  ageMs: number;
  /** Retained messages, oldest first; `head` skips trimmed entries without shifting on every publish. */
  messages: BusMessage[];
  head: number;
  state: unknown;
}

interface Pending {
  topic: string;
  kind: MessageKind;
  data: unknown;
  resolve: (r: PublishResult) => void;
  reject: (e: Error) => void;
  expectedSeq: number | undefined;
}

/** Idempotency keys remembered (the duplicate window): this many, at most this long. */
const DEDUPE_KEYS = 10_000;
const DEDUPE_MS = 120_000;

export function createMemoryBus(options: MemoryBusOptions = {}): Bus {
  const historySize = options.history?.size ?? 1000;
  const historyAgeMs = options.history?.ageMs ?? 3_600_000;
  const maxTopics = options.maxTopics ?? 100_000;
  const epoch = randomBytes(6).toString('hex');
  const topics = new Map<string, TopicLog>();
  const watched = new Set<string>();
  /** Idempotency id -> when, what (digest of topic, kind, data) and the first publish's result. */
  const dedupe = new Map<string, { at: number; digest: string; result: Promise<PublishResult> }>();
  let queue: Pending[] = [];
  let scheduled = false;
  let status: BusStatus = 'starting';
  let deliver: (m: BusMessage) => void = () => {};

  function logOf(topic: string): TopicLog {
    let log = topics.get(topic);
    if (!log) {
      const limits = options.historyFor?.(topic);
      log = { last: 0, size: limits?.size ?? historySize, ageMs: limits?.ageMs ?? historyAgeMs, messages: [], head: 0, state: undefined };
      topics.set(topic, log);
      if (topics.size > maxTopics) evictOne();
    }
    return log;
  }

  function evictOne(): void {
    for (const name of topics.keys()) {
      if (!watched.has(name)) {
        topics.delete(name);
        return;
      }
    }
  }

  function trim(log: TopicLog, now: number): void {
    const { messages } = log;
    let head = log.head;
    while (messages.length - head > log.size) head++;
    while (head < messages.length && now - messages[head]!.ts > log.ageMs) head++;
    // Compact once the dead prefix dominates, so trimming stays amortised O(1).
    if (head > 1024 && head * 2 > messages.length) {
      log.messages = messages.slice(head);
      head = 0;
    }
    log.head = head;
  }

  function flush(): void {
    scheduled = false;
    const batch = queue;
    queue = [];
    const now = Date.now();
    for (const p of batch) {
      const log = logOf(p.topic);
      // Checked here, in the one place publishes are ordered: atomic with the append.
      if (p.expectedSeq !== undefined && log.last !== p.expectedSeq) {
        p.reject(new SequenceConflictError(p.topic, p.expectedSeq, log.last));
        continue;
      }
      const m: BusMessage = { topic: p.topic, seq: log.last + 1, prev: log.last, kind: p.kind, data: p.data, ts: now };
      log.last = m.seq;
      log.messages.push(m);
      trim(log, now);
      log.state = applyMessage(log.state, p.kind, p.data);
      if (watched.has(p.topic)) deliver(m);
      p.resolve({ seq: m.seq, epoch });
    }
  }

  function retained(log: TopicLog | undefined): BusMessage[] {
    if (!log) return [];
    trim(log, Date.now());
    return log.messages.slice(log.head);
  }

  return {
    engine: 'memory',
    async start(onMessage) {
      deliver = onMessage;
      status = 'ready';
    },
    async watch(topic) {
      watched.add(topic);
    },
    unwatch(topic) {
      watched.delete(topic);
    },
    publish(topic, kind, data, options) {
      if (status === 'closed') return Promise.reject(new Error('bus closed'));
      const key = options?.idempotencyKey;
      const idem = key === undefined ? undefined : { id: idempotencyId(key, options?.idempotencyScope), digest: publishDigest(topic, kind, data) };
      if (idem) {
        const seen = dedupe.get(idem.id);
        if (seen && Date.now() - seen.at < DEDUPE_MS) {
          // A true retry answers the first result; the key reused for another publish is refused, never dropped silently.
          if (seen.digest === idem.digest) return seen.result;
          return Promise.reject(new IdempotencyConflictError(`idempotency key ${JSON.stringify(key)} was already used for a different publish`));
        }
      }
      const result = new Promise<PublishResult>((resolve, reject) => {
        queue.push({ topic, kind, data, resolve, reject, expectedSeq: options?.expectedSeq });
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      });
      if (idem) {
        dedupe.delete(idem.id);
        dedupe.set(idem.id, { at: Date.now(), digest: idem.digest, result });
        if (dedupe.size > DEDUPE_KEYS) dedupe.delete(dedupe.keys().next().value!);
      }
      return result;
    },
    async recover(topic, since?: Position): Promise<RecoverResult> {
      const log = topics.get(topic);
      const last = log?.last ?? 0;
      if (since && since.epoch === epoch && since.seq <= last) {
        const kept = retained(log);
        const oldest = kept[0]?.seq ?? last + 1;
        if (since.seq + 1 >= oldest) {
          return { epoch, seq: last, recovered: true, replay: kept.filter((m) => m.seq > since.seq), state: undefined };
        }
      }
      return { epoch, seq: last, recovered: false, replay: [], state: log?.state };
    },
    async history(topic, since, limit): Promise<HistoryResult> {
      const log = topics.get(topic);
      const kept = retained(log);
      const after = kept.filter((m) => m.seq > since);
      const oldest = kept[0]?.seq ?? (log?.last ?? 0) + 1;
      return { epoch, seq: log?.last ?? 0, messages: after.slice(0, limit), complete: since + 1 >= oldest };
    },
    status: () => status,
    // One process, no peers: the cluster is this gateway.
    joinCluster: (o) => localCluster(o, () => ({ engine: 'memory', status, keeper: null })),
    presence: localPresence(),
    async close() {
      status = 'closed';
      deliver = () => {};
      // Publishes already queued still resolve: they were accepted before close.
      if (queue.length) flush();
    },
  };
}
