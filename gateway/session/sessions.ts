/**
 * Sessions on this gateway: a session outlives its socket for `ttlMs`, so a client that
 * reconnects presents {id, key} and continues as the same session. The key rotates on every
 * welcome and is compared in constant time. (The NATS engine adds a cluster-wide registry.)
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';

export interface Session {
  readonly id: string;
  /** The user who opened it (null: anonymous); only the same user may resume it. */
  readonly user: string | null;
  key: string;
  /** Why the gateway closed its last socket, when the client could not be told (slow consumer). */
  previousClose?: { code: number; reason: string } | undefined;
  /** The socket holding it now, if any: a resume elsewhere takes it over. */
  holder: { takeOver(): void } | null;
  /** When a detached session is forgotten (ms since the epoch). */
  expiresAt: number;
}

export interface SessionStore {
  /**
   * Continues the offered session if it exists, the key matches and it belongs to `user`; else
   * starts a new one (leaving the offered one untouched).
   */
  attach(offer: { id: string; key: string } | undefined, holder: { takeOver(): void }, user: string | null): { session: Session; resumed: boolean };
  detach(session: Session, holder: { takeOver(): void }): void;
  sweep(now?: number): number;
  size(): number;
}

const newId = (bytes: number) => randomBytes(bytes).toString('base64url');

export function createSessionStore(ttlMs: number): SessionStore {
  const sessions = new Map<string, Session>();
  return {
    attach(offer, holder, user) {
      const found = offer ? sessions.get(offer.id) : undefined;
      if (found && found.user === user && keysEqual(found.key, offer!.key)) {
        const previous = found.holder;
        found.holder = holder;
        found.key = newId(18);
        found.expiresAt = Infinity;
        previous?.takeOver();
        return { session: found, resumed: true };
      }
      const session: Session = { id: newId(12), user, key: newId(18), holder, expiresAt: Infinity };
      sessions.set(session.id, session);
      return { session, resumed: false };
    },
    detach(session, holder) {
      if (session.holder !== holder) return; // already taken over by a newer socket
      session.holder = null;
      session.expiresAt = Date.now() + ttlMs;
    },
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
  };
}

function keysEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
