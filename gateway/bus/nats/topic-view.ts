/**
 * A topic seen cold, from NATS alone: its state (KV snapshot + the stream tail after it) and its
 * recent messages with their `prev` rebuilt. Used when a topic is first watched and for
 * recover/history on topics this gateway does not watch.
 *
 * Why not from the beginning of time: the stream keeps only `history.size` messages per topic.
 * The state keeper keeps each snapshot within that window (see keeper.ts); the tail read
 * starts AT the snapshot's seq to prove it: if that message is still retained, snapshot + tail is
 * exact. If not (no keeper ran while more than history.size messages, or history.ageMs, went by),
 * the result is the best available and `exact` is false - unless the tail holds a `set`, which
 * replaces everything before it.
 */
import { applyMessage } from '../../../protocol/index.ts';
import type { BusMessage } from '../bus.ts';
import { rebuildChain } from './chain.ts';
import type { StreamReader } from './reader.ts';
import type { SnapshotStore, StoredSnapshot } from './snapshots.ts';

export interface TopicView {
  /** The last message reflected in `state` (0: none). */
  readonly seq: number;
  readonly state: unknown;
  /** Messages after the snapshot whose prev is known, oldest first. */
  readonly recent: readonly BusMessage[];
  /** Every message in (chainStart, seq] is in `recent`; undefined when unproven. */
  readonly chainStart: number | undefined;
  /** False when messages may be missing from `state` (dropped before any snapshot covered them). */
  readonly exact: boolean;
  /** The snapshot it started from (a KV entry, or the keeper's state with revision 0). */
  readonly snapshot: StoredSnapshot;
  /** The snapshot seq used (0: none). */
  readonly snapshotSeq: number;
}

/**
 * `known`: a state known exact at its seq (the keeper's, in memory), used instead of the KV
 * snapshot when given.
 */
export async function loadTopicView(
  reader: StreamReader,
  store: SnapshotStore,
  topic: string,
  epoch: string,
  maxRead: number,
  known?: { readonly seq: number; readonly state: unknown },
): Promise<TopicView> {
  const snapshot = known ? { record: { ...known, epoch, ts: 0 }, revision: 0 } : await store.load(topic);
  const rec = snapshot.record && snapshot.record.epoch === epoch ? snapshot.record : undefined;
  const base = rec?.seq ?? 0;
  const tail = await reader.read(topic, Math.max(1, base), { limit: maxRead });
  const chain = rebuildChain(topic, base, tail);
  let state = rec?.state;
  for (const m of chain.messages) state = applyMessage(state, m.kind, m.data);
  const first = chain.messages[0];
  const exact = chain.proven || first === undefined || chain.messages.some((m) => m.kind === 'set');
  return {
    seq: chain.messages.at(-1)?.seq ?? base,
    state,
    recent: chain.messages.filter((m) => m !== chain.unknownFirst),
    chainStart: chain.proven ? base : chain.unknownFirst?.seq,
    exact,
    snapshot,
    snapshotSeq: base,
  };
}
