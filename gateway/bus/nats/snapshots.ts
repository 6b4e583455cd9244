/**
 * Topic state snapshots in a JetStream KV bucket (`<prefix>_state`, key = topic, history 1).
 * Writes are compare-and-set on the key's revision, so when several gateways keep the same topic
 * a slower one never replaces a newer snapshot with an older one.
 *
 * A bucket just created in a cluster answers nothing until its stream's raft group has elected a
 * first leader: nats-server 2.9 leaves requests to a new group without a leader unanswered (for
 * its first seconds; 503 only later). The gateway whose STREAM.CREATE made the stream is answered
 * after that election; gateways starting at the same time may be answered at once from the
 * stream's metadata, or not at all (their STREAM.INFO or duplicate create is dropped too). A
 * request sent then (the keeper lease's first read) waits for the client's whole JetStream
 * timeout (5 s), though the leader is usually elected within a second. So open() binds with a
 * short attempt (the engine retries with growing ones) and the engine then waits, bounded, until
 * `bucketAnswers`.
 */
import { StorageType, type JetStreamClient, type KV } from 'nats';
import { decodeSnapshot, encodeSnapshot, type SnapshotRecord } from './codec.ts';
import { askUntil, whenAnswering, withTimeout } from './requests.ts';
import { isNotFound } from './reader.ts';
import type { ResolvedNatsOptions } from './options.ts';

export interface StoredSnapshot {
  /** Undefined when the key holds nothing usable. */
  readonly record: SnapshotRecord | undefined;
  /** The key's KV revision (0 when absent): the expected revision of the next write. */
  readonly revision: number;
}

export type SaveResult =
  | { readonly ok: true; readonly revision: number }
  /** Someone else wrote first: what is there now. */
  | { readonly ok: false; readonly current: StoredSnapshot };

const WRONG_LAST_SEQUENCE = 10071;

/** A key no topic can be (`=` is not valid in a topic): reading it only asks the stream leader. */
const PROBE_KEY = '=probe';

/** Whether the bucket's stream leader answers a read (see whenAnswering). */
export function bucketAnswers(kv: KV, maxWaitMs: number): Promise<boolean> {
  return whenAnswering(() => kv.get(PROBE_KEY), maxWaitMs, 'snapshot bucket read');
}

export class SnapshotStore {
  private constructor(
    readonly kv: KV,
    private readonly readTimeoutMs: number,
  ) {}

  /**
   * Binds (or creates) the bucket; one attempt of `attemptMs` (the caller retries): binding reads
   * the stream's info, which can go unanswered during a new stream's first election as well.
   */
  static async open(js: JetStreamClient, o: ResolvedNatsOptions, attemptMs: number): Promise<SnapshotStore> {
    const kv = await withTimeout(
      js.views.kv(o.bucket, {
        history: 1,
        replicas: o.replicas,
        storage: StorageType.File,
        ttl: o.snapshotTtlMs,
        // Leader reads: a follower may not have the newest snapshot yet.
        allow_direct: false,
        description: `Symphonic topic state snapshots of deployment ${o.prefix}`,
      }),
      attemptMs,
      'snapshot bucket setup',
    );
    return new SnapshotStore(kv, o.readTimeoutMs);
  }

  /** Retried through leader elections until the read timeout. */
  async load(topic: string): Promise<StoredSnapshot> {
    const e = await askUntil('snapshot read', Date.now() + this.readTimeoutMs, () => this.kv.get(topic));
    if (!e || e.operation !== 'PUT') return { record: undefined, revision: e?.revision ?? 0 };
    return { record: decodeSnapshot(e.value), revision: e.revision };
  }

  /** Writes `record` if the key is still at `revision`; otherwise reports what is there now. */
  async save(topic: string, record: SnapshotRecord, revision: number): Promise<SaveResult> {
    try {
      const rev = await this.kv.put(topic, encodeSnapshot(record), { previousSeq: revision });
      return { ok: true, revision: rev };
    } catch (e) {
      const code = (e as { api_error?: { err_code?: number } }).api_error?.err_code;
      if (code !== WRONG_LAST_SEQUENCE && !isNotFound(e)) throw e;
      return { ok: false, current: await this.load(topic) };
    }
  }
}
