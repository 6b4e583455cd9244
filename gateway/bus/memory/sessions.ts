/** The embedded engine's session store: sessions live in this process (one gateway). */
import { keysEqual, newSession, sessionInfo, takeSession, type Session, type SessionStore } from '../sessions.ts';

export function createSessionStore(ttlMs: number): SessionStore {
  const sessions = new Map<string, Session>();
  return {
    async attach(offer, holder, user) {
      const found = offer ? sessions.get(offer.id) : undefined;
      if (found && found.user === user && keysEqual(found.key, offer!.key)) {
        takeSession(found, holder);
        return { session: found, resumed: true };
      }
      const session = newSession(user, holder);
      sessions.set(session.id, session);
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
      for (const [id, s] of sessions) {
        if (s.expiresAt <= now) {
          sessions.delete(id);
          removed++;
        }
      }
      return removed;
    },
    size: () => sessions.size,
    async inspect(id) {
      const s = sessions.get(id);
      return s && s.expiresAt > Date.now() ? sessionInfo(s) : undefined;
    },
    async close() {},
  };
}
