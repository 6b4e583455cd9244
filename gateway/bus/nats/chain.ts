/**
 * Stored messages carry no per-subject previous sequence (only RePublish copies do): `prev` is
 * rebuilt from the order of a read that starts AT a known position. If the message at that
 * position is still retained, every later one is provably chained; if not, retention may have
 * dropped messages in between, and the first one's prev is reported as seq - 1, a position that
 * is not the reader's, so every reader downstream sees the gap instead of missing it silently.
 */
import type { BusMessage } from '../bus.ts';
import type { StoredMessage } from './reader.ts';

export interface Chain {
  /** Messages after `after`, with prev rebuilt. */
  readonly messages: readonly BusMessage[];
  /** True when nothing between `after` and the first message can be missing. */
  readonly proven: boolean;
  /** The first message when its prev is not known (then reported as seq - 1). */
  readonly unknownFirst: BusMessage | undefined;
}

/**
 * Rebuilds prev for messages read from the stream starting AT `after` (the read includes the
 * message at `after` itself when it is still retained, which proves the chain).
 */
export function rebuildChain(topic: string, after: number, read: readonly StoredMessage[]): Chain {
  const messages: BusMessage[] = [];
  let proven = after > 0 && read[0]?.seq === after;
  let unknownFirst: BusMessage | undefined;
  let prev = after;
  for (const s of read) {
    if (s.seq <= after) continue;
    let p = prev;
    if (messages.length === 0 && !proven) {
      if (s.seq - 1 === after) proven = true;
      else p = s.seq - 1;
    }
    const m: BusMessage = { topic, seq: s.seq, prev: p, kind: s.kind, data: s.data, ts: s.ts };
    if (messages.length === 0 && !proven) unknownFirst = m;
    messages.push(m);
    prev = s.seq;
  }
  return { messages, proven, unknownFirst };
}
