/**
 * A presence topic's members as this client sees them (docs/protocol.md section 15): a full
 * `members` frame replaces the list, `join`/`leave` frames change it (applied as set operations,
 * so a change the full list already holds is harmless), a count-only frame keeps only `count`.
 * `users()` groups sessions by user: one person with two tabs is one user with two sessions.
 */
import type { PresenceFrame, PresenceMember } from '../protocol/frames.ts';
import { Emitter } from './emitter.ts';

export type { PresenceMember };

export interface PresenceUser {
  /** The user id; undefined groups the anonymous sessions. */
  user: string | undefined;
  sessions: PresenceMember[];
}

export interface PresenceChange {
  count: number;
  /** Sessions that joined / left with this frame (empty after a full list or a count). */
  joined: PresenceMember[];
  left: PresenceMember[];
  /** The frame carried the whole list (or, count-only, no list at all). */
  full: boolean;
}

export interface PresenceEvents {
  join: PresenceMember[];
  leave: PresenceMember[];
  change: PresenceChange;
}

/** A one-shot read: `client.presence(topic)`. */
export interface PresenceSnapshot {
  count: number;
  /** Absent on count-only topics and past the server's member limit. */
  members?: PresenceMember[];
}

export class Presence extends Emitter<PresenceEvents> {
  private readonly bySession = new Map<string, PresenceMember>();
  private _count = 0;
  private _listed = false;

  /** Sessions present (all gateways), from the last frame. */
  get count(): number {
    return this._count;
  }
  /** False on count-only presence (namespace `presence: "count"`, or past the member limit): only `count` is known. */
  get listed(): boolean {
    return this._listed;
  }

  members(): PresenceMember[] {
    return [...this.bySession.values()];
  }

  users(): PresenceUser[] {
    const users = new Map<string | undefined, PresenceUser>();
    for (const m of this.bySession.values()) {
      let u = users.get(m.user);
      if (!u) users.set(m.user, (u = { user: m.user, sessions: [] }));
      u.sessions.push(m);
    }
    return [...users.values()];
  }

  has(session: string): boolean {
    return this.bySession.has(session);
  }

  /** @internal The subscription ended: nothing is known any more. */
  _reset(): void {
    this.bySession.clear();
    this._count = 0;
    this._listed = false;
  }

  /** @internal A `presence` frame pushed for this topic. */
  _apply(f: PresenceFrame): void {
    this._count = f.count;
    if (f.members) {
      this.bySession.clear();
      for (const m of f.members) this.bySession.set(m.session, m);
      this._listed = true;
      return this.emit('change', { count: f.count, joined: [], left: [], full: true });
    }
    if (!f.join && !f.leave) {
      this.bySession.clear();
      this._listed = false;
      return this.emit('change', { count: f.count, joined: [], left: [], full: true });
    }
    const joined = (f.join ?? []).filter((m) => !this.bySession.has(m.session));
    for (const m of f.join ?? []) this.bySession.set(m.session, m);
    const left = (f.leave ?? []).filter((m) => this.bySession.delete(m.session));
    if (joined.length) this.emit('join', joined);
    if (left.length) this.emit('leave', left);
    this.emit('change', { count: f.count, joined, left, full: false });
  }
}
