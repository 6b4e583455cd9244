/** The subscribe/resume merge rules, fed frame by frame. */
import { describe, expect, it } from 'vitest';
import type { Publication } from '../../protocol/frames.ts';
import { TopicLog, type SubscribedInfo } from '../../sdk/topic-log.ts';

function pub(seq: number, prev: number, data: unknown = { [`k${seq}`]: seq }, kind: Publication['kind'] = 'patch'): Publication {
  return { seq, prev, kind, data, ts: seq };
}

function setup(maxBuffer = 100) {
  const applied: number[] = [];
  const snapshots: { state: unknown; seq: number }[] = [];
  const log = new TopicLog({ message: (p) => applied.push(p.seq), snapshot: (state, seq) => snapshots.push({ state, seq }) }, maxBuffer);
  return { log, applied, snapshots };
}

const fresh = (seq: number, state: unknown, extra: Partial<SubscribedInfo> = {}): SubscribedInfo => ({
  epoch: 'e1',
  seq,
  state,
  wasRecovering: false,
  recovered: false,
  ...extra,
});

describe('TopicLog: fresh subscribe', () => {
  it('takes the snapshot at subscribed.seq, then applies live messages in order', () => {
    const { log, applied, snapshots } = setup();
    log.startBuffering();
    expect(log.subscribed(fresh(5, { a: 1 }))).toEqual({ recovered: false, gap: false });
    expect(snapshots).toEqual([{ state: { a: 1 }, seq: 5 }]);
    expect(log.position).toEqual({ seq: 5, epoch: 'e1' });
    expect(log.receive(pub(7, 5, { b: 2 }))).toBe('applied');
    expect(log.receive(pub(8, 7, { a: null }))).toBe('applied');
    expect(log.state).toEqual({ b: 2 });
    expect(applied).toEqual([7, 8]);
  });

  it('buffers msgs that arrive before subscribed, drops those already in the snapshot, applies the rest', () => {
    const { log, applied } = setup();
    log.startBuffering();
    // The server joined the live topic at 3, then read the snapshot at 5.
    for (const p of [pub(4, 3), pub(5, 4), pub(6, 5), pub(7, 6)]) expect(log.receive(p)).toBe('buffered');
    expect(log.subscribed(fresh(5, { k4: 4, k5: 5 }))).toEqual({ recovered: false, gap: false });
    expect(applied).toEqual([6, 7]);
    expect(log.state).toEqual({ k4: 4, k5: 5, k6: 6, k7: 7 });
    expect(log.seq).toBe(7);
  });

  it('a buffered message that skips past the snapshot is a gap', () => {
    const { log, applied } = setup();
    log.startBuffering();
    log.receive(pub(9, 8));
    expect(log.subscribed(fresh(5, {}))).toEqual({ recovered: false, gap: true });
    expect(applied).toEqual([]);
    expect(log.isBuffering).toBe(true);
    expect(log.position).toEqual({ seq: 5, epoch: 'e1' });
  });

  it('a topic without state: state stays undefined, events advance the position', () => {
    const { log, applied } = setup();
    log.startBuffering();
    log.subscribed(fresh(0, undefined));
    log.receive(pub(1, 0, 'hello', 'event'));
    expect(log.state).toBeUndefined();
    expect(applied).toEqual([1]);
  });
});

describe('TopicLog: live path', () => {
  function live() {
    const s = setup();
    s.log.startBuffering();
    s.log.subscribed(fresh(10, {}));
    return s;
  }

  it('drops duplicates (seq <= last)', () => {
    const { log, applied } = live();
    expect(log.receive(pub(11, 10))).toBe('applied');
    expect(log.receive(pub(11, 10))).toBe('duplicate');
    expect(log.receive(pub(9, 8))).toBe('duplicate');
    expect(applied).toEqual([11]);
  });

  it('a msg whose prev is not the last seq is a gap: nothing applied, buffering starts', () => {
    const { log, applied } = live();
    expect(log.receive(pub(13, 12))).toBe('gap');
    expect(applied).toEqual([]);
    expect(log.isBuffering).toBe(true);
    expect(log.position).toEqual({ seq: 10, epoch: 'e1' });
    expect(log.receive(pub(14, 13))).toBe('buffered');
  });

  it('sequences need not be contiguous: prev links the chain', () => {
    const { log, applied } = live();
    expect(log.receive(pub(15, 10))).toBe('applied');
    expect(log.receive(pub(40, 15))).toBe('applied');
    expect(applied).toEqual([15, 40]);
  });
});

describe('TopicLog: resume', () => {
  function at10() {
    const s = setup();
    s.log.startBuffering();
    s.log.subscribed(fresh(10, { base: true }));
    s.applied.length = 0;
    s.snapshots.length = 0;
    s.log.startBuffering();
    return s;
  }

  it('recovered: applies the replay chain, then buffered msgs past it, dropping the overlap', () => {
    const { log, applied, snapshots } = at10();
    log.receive(pub(12, 11)); // live msgs that raced the reply
    log.receive(pub(13, 12));
    log.receive(pub(14, 13));
    const r = log.subscribed({ epoch: 'e1', seq: 13, wasRecovering: true, recovered: true, replay: [pub(11, 10), pub(12, 11), pub(13, 12)] });
    expect(r).toEqual({ recovered: true, gap: false });
    expect(applied).toEqual([11, 12, 13, 14]);
    expect(snapshots).toEqual([]);
    expect(log.state).toEqual({ base: true, k11: 11, k12: 12, k13: 13, k14: 14 });
  });

  it('recovered with an empty replay (nothing missed)', () => {
    const { log, applied } = at10();
    expect(log.subscribed({ epoch: 'e1', seq: 10, wasRecovering: true, recovered: true, replay: [] })).toEqual({ recovered: true, gap: false });
    expect(log.receive(pub(11, 10))).toBe('applied');
    expect(applied).toEqual([11]);
  });

  it('replay entries already applied are skipped', () => {
    const { log, applied } = at10();
    log.subscribed({ epoch: 'e1', seq: 12, wasRecovering: true, recovered: true, replay: [pub(9, 8), pub(10, 9), pub(11, 10), pub(12, 11)] });
    expect(applied).toEqual([11, 12]);
  });

  it('a replay that does not continue the chain is reported as a gap', () => {
    const { log, applied } = at10();
    const r = log.subscribed({ epoch: 'e1', seq: 13, wasRecovering: true, recovered: true, replay: [pub(11, 10), pub(13, 12)] });
    expect(r.gap).toBe(true);
    expect(applied).toEqual([11]);
    expect(log.position).toEqual({ seq: 11, epoch: 'e1' });
  });

  it('not recovered: the snapshot replaces the state and position', () => {
    const { log, applied, snapshots } = at10();
    log.receive(pub(51, 50));
    const r = log.subscribed({ epoch: 'e1', seq: 50, state: { fresh: 1 }, wasRecovering: true, recovered: false });
    expect(r).toEqual({ recovered: false, gap: false });
    expect(snapshots).toEqual([{ state: { fresh: 1 }, seq: 50 }]);
    expect(applied).toEqual([51]);
    expect(log.state).toEqual({ fresh: 1, k51: 51 });
  });

  it('a "recovered" reply in another epoch is not trusted: the snapshot is taken', () => {
    const { log, snapshots } = at10();
    const r = log.subscribed({ epoch: 'e2', seq: 3, state: { x: 1 }, wasRecovering: true, recovered: true, replay: [] });
    expect(r.recovered).toBe(false);
    expect(snapshots).toEqual([{ state: { x: 1 }, seq: 3 }]);
    expect(log.position).toEqual({ seq: 3, epoch: 'e2' });
  });

  it('buffer overflow while subscribing: applies what it can, then asks for a resync', () => {
    const s = setup(2);
    s.log.startBuffering();
    for (let i = 1; i <= 5; i++) s.log.receive(pub(i, i - 1));
    const r = s.log.subscribed(fresh(0, {}));
    expect(r.gap).toBe(true);
    expect(s.applied).toEqual([1, 2]);
    expect(s.log.position).toEqual({ seq: 2, epoch: 'e1' });
  });

  it('starting from a persisted position: the first subscribe can resume', () => {
    const applied: number[] = [];
    const log = new TopicLog({ message: (p) => applied.push(p.seq), snapshot: () => {} }, 100, { position: { seq: 7, epoch: 'e1' }, state: { n: 1 } });
    expect(log.position).toEqual({ seq: 7, epoch: 'e1' });
    log.startBuffering();
    log.subscribed({ epoch: 'e1', seq: 8, wasRecovering: true, recovered: true, replay: [pub(8, 7, { n: 2 })] });
    expect(log.state).toEqual({ n: 2 });
  });
});
