/**
 * This gateway's members: per topic, per session, its state (member-state.ts) and its grace
 * timer. It decides when a session joins or leaves here and says so through `onJoin`/`onLeave`;
 * what the deployment sees is the union (view.ts). Maps and timers are freed as members leave.
 */
import type { PresenceEntry } from '../bus/bus.ts';
import { nextMember, type MemberEvent, type MemberState } from './member-state.ts';

interface Local {
  state: MemberState;
  entry: PresenceEntry;
  timer: ReturnType<typeof setTimeout> | null;
}

export interface LocalEvents {
  join(topic: string, entry: PresenceEntry): void;
  leave(topic: string, session: string): void;
}

export class LocalMembers {
  private readonly topics = new Map<string, Map<string, Local>>();
  private timers = 0;

  constructor(
    private readonly graceMs: number,
    private readonly events: LocalEvents,
  ) {}

  subscribe(topic: string, entry: PresenceEntry): void {
    this.step(topic, entry.session, 'subscribe', entry);
  }
  unsubscribe(topic: string, session: string): void {
    this.step(topic, session, 'unsubscribe');
  }
  socketGone(topic: string, session: string): void {
    this.step(topic, session, 'socket-gone');
  }

  /** Sessions held here for `topic` (in grace included). */
  count(topic: string): number {
    return this.topics.get(topic)?.size ?? 0;
  }
  has(topic: string, session: string): boolean {
    return this.topics.get(topic)?.has(session) ?? false;
  }
  /** For leak checks: topics with members, and grace timers running. */
  sizes(): { topics: number; timers: number } {
    return { topics: this.topics.size, timers: this.timers };
  }

  close(): void {
    for (const members of this.topics.values()) for (const m of members.values()) if (m.timer) clearTimeout(m.timer);
    this.topics.clear();
    this.timers = 0;
  }

  private step(topic: string, session: string, event: MemberEvent, entry?: PresenceEntry): void {
    let members = this.topics.get(topic);
    const m = members?.get(session);
    const { state, effect } = nextMember(m?.state ?? null, event);
    if (effect === 'stop-grace' || (effect === 'leave' && m?.timer)) this.stopTimer(m!);
    if (state === null) {
      if (m) {
        members!.delete(session);
        if (members!.size === 0) this.topics.delete(topic);
      }
    } else if (m) m.state = state;
    else {
      if (!members) {
        members = new Map();
        this.topics.set(topic, members);
      }
      members.set(session, { state, entry: entry!, timer: null });
    }
    if (effect === 'join') this.events.join(topic, entry!);
    else if (effect === 'leave') this.events.leave(topic, session);
    else if (effect === 'start-grace') this.startTimer(topic, session, members!.get(session)!);
  }

  private startTimer(topic: string, session: string, m: Local): void {
    if (this.graceMs === 0) return this.step(topic, session, 'grace-over');
    this.timers++;
    m.timer = setTimeout(() => {
      m.timer = null;
      this.timers--;
      this.step(topic, session, 'grace-over');
    }, this.graceMs);
    m.timer.unref?.();
  }

  private stopTimer(m: Local): void {
    if (!m.timer) return;
    clearTimeout(m.timer);
    m.timer = null;
    this.timers--;
  }
}
