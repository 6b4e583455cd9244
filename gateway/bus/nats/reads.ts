/**
 * recover() and history(): from the feed's memory when the topic is watched (consistent with
 * live delivery), else from the stream (replays.ts, reader.ts) and the KV snapshot, each topic
 * seen through its own retention window (window.ts). See README "Recover and history".
 */
import type { Position } from '../../../protocol/index.ts';
import type { HistoryResult, RecoverResult } from '../bus.ts';
import { rebuildChain } from './chain.ts';
import { linked, type EngineState } from './state.ts';
import { loadTopicView } from './topic-view.ts';
import { clipToWindow, insideWindow } from './window.ts';

export async function recover(s: EngineState, topic: string, since: Position | undefined): Promise<RecoverResult> {
  const { replays } = linked(s);
  const w = s.watches.get(topic);
  if (w) await w.ready;
  const feed = w && s.watches.get(topic) === w && w.feed.ready ? w.feed : undefined;
  const current = s.epoch;
  if (since && since.epoch === current) {
    const window = s.o.windowOf(topic);
    const cached = feed?.replayAfter(since.seq);
    if (cached && feed) {
      if (insideWindow(cached, window)) return { epoch: current, seq: feed.cursor, recovered: true, replay: cached, state: undefined };
    } else {
      const fromStream = await replays.after(topic, since.seq, window.size);
      if (fromStream && insideWindow(fromStream.replay, window)) {
        return { epoch: current, seq: fromStream.seq, recovered: true, replay: fromStream.replay, state: undefined };
      }
    }
  }
  const snap = feed ? { seq: feed.cursor, state: feed.state } : await snapshotOf(s, topic);
  return { epoch: current, seq: snap.seq, recovered: false, replay: [], state: snap.state };
}

export async function history(s: EngineState, topic: string, since: number, limit: number): Promise<HistoryResult> {
  const { o } = s;
  const { reader, store } = linked(s);
  const current = s.epoch;
  const max = Math.max(0, Math.floor(limit));
  const last = await reader.last(topic);
  if (last === 0 || since >= last) {
    // Nothing after `since` is retained. Dropped messages are older than the newest retained
    // one, so `since >= last > 0` proves completeness; with nothing retained it is unknowable.
    return { epoch: current, seq: last, messages: [], complete: last > 0 || (since === 0 && (await store.load(topic)).record === undefined) };
  }
  // A narrower window needs everything after `since` to know which messages are its last ones.
  const window = o.windowOf(topic);
  const read = await reader.read(topic, Math.max(1, since), { until: last, limit: window.narrower ? o.historySize + 1 : max + 1 });
  const chain = rebuildChain(topic, since, read);
  const feed = s.watches.get(topic)?.feed;
  const clipped = clipToWindow(chain.messages, window);
  const complete = !clipped.trimmed && (chain.proven || (since === 0 && feed?.replayAfter(0) !== undefined));
  const messages = clipped.messages.slice(0, max);
  if (complete && since === 0 && messages[0] && !chain.proven) messages[0] = { ...messages[0], prev: 0 };
  return { epoch: current, seq: last, messages, complete };
}

/** A cold topic's state: the keeper's (on its gateway) or the KV snapshot, plus the stream tail. */
async function snapshotOf(s: EngineState, topic: string): Promise<{ seq: number; state: unknown }> {
  const { reader, store } = linked(s);
  const view = await loadTopicView(reader, store, topic, s.epoch, s.o.historySize + 1, s.term?.keeper.peek(topic));
  return { seq: view.seq, state: view.state };
}
