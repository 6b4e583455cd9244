/** The embedded engine's session store: sessions live in this process (one gateway). */
import { keysEqual, newSession, sessionInfo, takeSession, type Session, type SessionStore } from '../sessions.ts';

/** `onExpire`: a session is forgotten for good (its inbox goes with it). */
export function createSessionStore(ttlMs: number, onExpire: (id: string) => void = () => {}): SessionStore {
  const sessions = new Map<string, Session>();
  /** Each user's sessions (direct messages to a user), so a send does not scan every session. */
  const byUser = new Map<string, Set<Session>>();
  return {
    async attach(offer, holder, user) {
      const found = offer ? sessions.get(offer.id) : undefined;
      if (found && found.user === user && keysEqual(found.key, offer!.key)) {
        takeSession(found, holder);
        return { session: found, resumed: true };
      }
      const session = newSession(user, holder);
      sessions.set(session.id, session);
      if (user !== null) {
        const mine = byUser.get(user) ?? new Set<Session>();
        byUser.set(user, mine.add(session));
      }
      return { session, resumed: false };
    },
    detach(session, holder) {
      if (session.holder !== holder) return; // already taken over by a newer socket
      session.holder = null;
      session.expiresAt = Date.now() + ttlMs;
    },
    changed() {},
    sweep(now = Date.now()) {
      let removed = 0;
      // values(), not entries(): runs every second over every session, and an entry is an array each.
      for (const s of sessions.values()) {
        if (s.expiresAt <= now) {
          const id = s.id;
          sessions.delete(id);
          const mine = s.user === null ? undefined : byUser.get(s.user);
          mine?.delete(s);
          if (mine?.size === 0) byUser.delete(s.user!);
          onExpire(id);
          removed++;
        }
      }
      return removed;
    },
    size: () => sessions.size,
    async recipients(to) {
      const now = Date.now();
      if ('session' in to) {
        const s = sessions.get(to.session);
        return s && s.expiresAt > now ? [s.id] : [];
      }
      const ids: string[] = [];
      for (const s of byUser.get(to.user) ?? []) if (s.expiresAt > now) ids.push(s.id);
      return ids;
    },
    async inspect(id) {
      const s = sessions.get(id);
      return s && s.expiresAt > Date.now() ? sessionInfo(s) : undefined;
    },
    async close() {},
  };
}
