/**
 * Topic state snapshots in a JetStream KV bucket (`<prefix>_state`, key = topic, history 1).
 * Writes are compare-and-set on the key's revision, so when several gateways keep the same topic
 * a slower one never replaces a newer snapshot with an older one.
 */
import { StorageType, type JetStreamClient, type KV } from 'nats';
import { decodeSnapshot, encodeSnapshot, type SnapshotRecord } from './codec.ts';
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

export class SnapshotStore {
  private constructor(readonly kv: KV) {}

  static async open(js: JetStreamClient, o: ResolvedNatsOptions): Promise<SnapshotStore> {
    const kv = await js.views.kv(o.bucket, {
      history: 1,
      replicas: o.replicas,
      storage: StorageType.File,
      ttl: o.snapshotTtlMs,
      // Leader reads: a follower may not have the newest snapshot yet.
      allow_direct: false,
      description: `Symphonic topic state snapshots of deployment ${o.prefix}`,
    });
    return new SnapshotStore(kv);
  }

  async load(topic: string): Promise<StoredSnapshot> {
    const e = await this.kv.get(topic);
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
