/**
 * Sessions, the second seam beside the Bus (bus.ts): a session outlives its socket for `ttlMs`,
 * so a client that reconnects presents {id, key} and continues as the same session, with its
 * identity, the topics it had subscribed and its small app-defined state. The key rotates on
 * every welcome and is compared in constant time. Sessions live where the bus does: each engine
 * brings its SessionStore (memory/sessions.ts: in this process; nats/sessions.ts: shared by the
 * cluster's gateways). Here: the interface and what every store does the same way.
 */
import { timingSafeEqual } from 'node:crypto';
import { randomToken } from '../random-token.ts';
import { SmallSet } from '../small.ts';

export interface SessionHolder {
  /** Called when the session is resumed on another socket (here or on another gateway). */
  takeOver(): void;
}

export interface Session {
  readonly id: string;
  /** The user who opened it (null: anonymous); only the same user may resume it. */
  readonly user: string | null;
  key: string;
  /** Topics the session is subscribed to: they outlive the socket, for resume on any gateway. */
  readonly topics: SmallSet<string>;
  /** Small app-defined state (`session` frame), restored on resume. */
  state: unknown;
  /** Why the gateway closed its last socket, when the client could not be told (slow consumer). */
  previousClose?: { code: number; reason: string } | undefined;
  /** The socket holding it now, if any. */
  holder: SessionHolder | null;
  /** When a detached session is forgotten (ms since the epoch). */
  expiresAt: number;
}

export interface AttachResult {
  session: Session;
  resumed: boolean;
}

/** What an operator may see of a session (never its key). */
export interface SessionInfo {
  readonly id: string;
  readonly user: string | null;
  readonly topics: readonly string[];
  /** Held by a socket of this process now; null when the session is held elsewhere (see `owner`). */
  readonly attached: boolean | null;
  /** Whether this process holds the session (attached, or detached awaiting resume). */
  readonly local: boolean;
  /** The gateway that last wrote its record (cluster registry), when known; null for a local session. */
  readonly owner: string | null;
  /** When it is forgotten unless resumed (ms since the epoch); null while attached here. */
  readonly expiresAt: number | null;
}

export function sessionInfo(s: Session): SessionInfo {
  return {
    id: s.id,
    user: s.user,
    topics: [...s.topics],
    attached: s.holder !== null,
    local: true,
    owner: null,
    expiresAt: Number.isFinite(s.expiresAt) ? s.expiresAt : null,
  };
}

export interface SessionStore {
  /**
   * Continues the offered session if it exists, the key matches and it belongs to `user`; else
   * starts a new one (leaving the offered one untouched). A previous holder is taken over.
   */
  attach(offer: { id: string; key: string } | undefined, holder: SessionHolder, user: string | null): Promise<AttachResult>;
  /** The socket is gone: the session waits `ttlMs` for a resume. */
  detach(session: Session, holder: SessionHolder): void;
  /** The session's topics or state changed (a store shared by gateways persists it). */
  changed(session: Session): void;
  sweep(now?: number): number;
  size(): number;
  /**
   * The live (not expired) sessions a direct message to `to` goes to, on any gateway: the session
   * itself, or every session of the user. Empty: nobody (2010).
   */
  recipients(to: { session: string } | { user: string }): Promise<string[]>;
  /** One session as an operator sees it (admin API); undefined when unknown or expired. */
  inspect(id: string): Promise<SessionInfo | undefined>;
  close(): Promise<void>;
}

export const newSessionId = () => randomToken(12);
export const newSessionKey = () => randomToken(18);

export function newSession(user: string | null, holder: SessionHolder | null): Session {
  // Every field in the literal, previousClose too: one added later moves the object's fields out
  // of line (a property array of its own, ~40 bytes per session).
  return { id: newSessionId(), user, key: newSessionKey(), topics: new SmallSet(), state: undefined, previousClose: undefined, holder, expiresAt: Infinity };
}

export function keysEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Hands a session to a new holder: rotates the key and takes it from the old holder. */
export function takeSession(session: Session, holder: SessionHolder): void {
  const previous = session.holder;
  session.holder = holder;
  session.key = newSessionKey();
  session.expiresAt = Infinity;
  if (previous && previous !== holder) previous.takeOver();
}
