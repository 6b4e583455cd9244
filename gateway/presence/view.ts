/**
 * One topic's presence across the deployment: a set per gateway instance (this gateway's own
 * included) and their union by session id. A session held by two gateways at once (resumed on B
 * while A still holds it in grace) is one member: it joins when the first set gains it and
 * leaves when the last set loses it, so A dropping it later shows nothing. Count-only topics keep
 * a count per gateway instead of lists. Every union change lands in `pending`, the next frame.
 */
import type { PresenceChange, PresenceEntry } from '../bus/bus.ts';
import { addJoin, addLeave, type Batch } from './batch.ts';

interface GatewaySet {
  seq: number;
  readonly members: Map<string, PresenceEntry>;
  /** Count-only topics: the gateway's count (its `members` stay empty). */
  count: number;
}

/** What applying a remote change needs next. */
export type ApplyResult = 'applied' | 'stale' | 'gap';

export class TopicView {
  readonly sets = new Map<string, GatewaySet>();
  /** Session -> its entry and how many gateway sets hold it. */
  readonly union = new Map<string, { entry: PresenceEntry; refs: number }>();
  readonly pending: Batch = new Map();

  constructor(readonly countOnly: boolean) {}

  /** Sessions present now (all gateways). */
  get count(): number {
    if (!this.countOnly) return this.union.size;
    let n = 0;
    for (const s of this.sets.values()) n += s.count;
    return n;
  }

  members(): PresenceEntry[] {
    const out: PresenceEntry[] = [];
    for (const u of this.union.values()) out.push(u.entry);
    return out;
  }

  private set(instance: string): GatewaySet {
    let s = this.sets.get(instance);
    if (!s) {
      s = { seq: 0, members: new Map(), count: 0 };
      this.sets.set(instance, s);
    }
    return s;
  }

  /** `instance`'s set gains `entry` (an update when it already held the session). */
  join(instance: string, entry: PresenceEntry): void {
    const s = this.set(instance);
    if (this.countOnly) {
      if (!s.members.has(entry.session)) s.count++;
      s.members.set(entry.session, entry);
      return;
    }
    if (s.members.has(entry.session)) return void s.members.set(entry.session, entry);
    s.members.set(entry.session, entry);
    const u = this.union.get(entry.session);
    if (u) u.refs++;
    else {
      this.union.set(entry.session, { entry, refs: 1 });
      addJoin(this.pending, entry);
    }
  }

  leave(instance: string, session: string): void {
    const s = this.sets.get(instance);
    const had = s?.members.get(session);
    if (!s || !had) return;
    s.members.delete(session);
    if (this.countOnly) return void s.count--;
    const u = this.union.get(session)!;
    if (--u.refs > 0) return;
    this.union.delete(session);
    addLeave(this.pending, u.entry);
  }

  /** `instance` is gone (or sends its full set next): every member of its set leaves the union. */
  drop(instance: string): void {
    const s = this.sets.get(instance);
    if (!s) return;
    for (const session of [...s.members.keys()]) this.leave(instance, session);
    this.sets.delete(instance);
  }

  /** Another gateway's change: applied in `seq` order; a skipped `seq` is a gap (ask for its full set). */
  apply(c: PresenceChange): ApplyResult {
    const s = this.sets.get(c.from);
    if (this.countOnly || c.count !== undefined) {
      // Counts are absolute: the newest wins, nothing to repair.
      if (s && c.seq <= s.seq) return 'stale';
      const t = this.set(c.from);
      t.seq = c.seq;
      t.count = c.count ?? 0;
      return 'applied';
    }
    if (c.full) {
      if (s && c.seq < s.seq) return 'stale';
      const next = new Set((c.join ?? []).map((e) => e.session));
      if (s) for (const session of [...s.members.keys()]) if (!next.has(session)) this.leave(c.from, session);
      for (const e of c.join ?? []) this.join(c.from, e);
      this.set(c.from).seq = c.seq;
      return 'applied';
    }
    if (!s) return 'gap';
    if (c.seq <= s.seq) return 'stale';
    if (c.seq !== s.seq + 1) return 'gap';
    for (const session of c.leave ?? []) this.leave(c.from, session);
    for (const e of c.join ?? []) this.join(c.from, e);
    s.seq = c.seq;
    return 'applied';
  }
}
