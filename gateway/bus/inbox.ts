/**
 * Inboxes, the third seam beside the Bus and the SessionStore: each session has an ordered log of
 * the direct messages sent to it (docs/protocol.md section 16), kept as long as the session and
 * at most `inboxSize` messages, so a session between sockets loses nothing. Each engine brings
 * its own (memory/inbox.ts: in this process; nats/inbox.ts: a JetStream stream shared by the
 * gateways). `seq` increases within the inbox and `epoch`; `prev` is the inbox's previous `seq`
 * as the appender saw it (0: none), so a reader tells a dropped message from a gap in numbering.
 */
import type { Position } from '../../protocol/index.ts';

export interface DirectSender {
  readonly session: string;
  readonly user?: string;
}

export interface InboxMessage {
  readonly seq: number;
  readonly prev: number;
  readonly epoch: string;
  readonly from?: DirectSender;
  readonly data: unknown;
  /** Send time, ms since the Unix epoch. */
  readonly ts: number;
}

export interface InboxRead {
  /** Retained messages after the position, oldest first. */
  readonly messages: readonly InboxMessage[];
  /** Messages after the position were dropped (overflow, aged out, other epoch). */
  readonly lost: boolean;
}

/**
 * Takes a session's live copies (InboxDelivery). An object rather than a callback, and `listen`
 * answers with an object: a gateway listens once per connected session, and a closure pair per
 * session is memory per connection.
 */
export interface InboxListener {
  deliver(m: InboxMessage): void;
}

/** One `listen`: `stop()` ends the live copies (idempotent). */
export interface InboxListening {
  stop(): void;
}

export interface Inbox {
  /** Stores a message in the session's inbox; resolves once it is durable there. */
  append(sessionId: string, message: { from?: DirectSender; data: unknown }): Promise<{ seq: number; epoch: string }>;
  /** The retained messages after `after` (absent: all retained). */
  read(sessionId: string, after: Position | undefined): Promise<InboxRead>;
  /** Live copies of what is appended from now on, on this gateway only, until `stop()`. */
  listen(sessionId: string, listener: InboxListener): InboxListening;
  /**
   * Resolves once the listens made so far are in place where messages are appended (NATS: their
   * subscriptions reached the server), so a message appended after that arrives live.
   */
  listening(): Promise<void>;
  /** The session is gone for good (expired): its inbox may go too. */
  forget(sessionId: string): void;
  /** Live copies this gateway received (a figure: delivery goes only where the session is held). */
  delivered(): number;
  close(): Promise<void>;
}

/**
 * Whether messages after `after` were dropped, from the first retained one after it: it does not
 * follow `after` (its predecessor is gone), or the inbox is another one (recreated store). Without
 * a position nothing counts as lost: the client asks for whatever is retained.
 */
export function lostAfter(after: Position | undefined, epoch: string, first: InboxMessage | undefined): boolean {
  if (!after) return false;
  if (after.epoch !== epoch) return after.seq > 0;
  return first !== undefined && first.prev > after.seq;
}
