/**
 * Direct messages on the client side (docs/protocol.md section 16): the recipient check, and the
 * inbox position. The client keeps the `{seq, epoch}` of the last `dm` it handled, sends it as
 * `hello.inbox` when resuming (the gateway then sends only later ones), and drops a `dm` at or
 * below it in the same epoch (sent twice around a reconnect). Peer-channel signals (data with a
 * `$peer` key) go to the `signal` event instead of `direct`.
 */
import { ErrorCode } from '../protocol/codes.ts';
import type { DirectFrame, Position } from '../protocol/frames.ts';
import { SymphonicError } from './errors.ts';

/** Who a direct message goes to: one session, or every session of a user. */
export type Recipient = { session: string } | { user: string };

export interface DirectMessage<T = unknown> {
  readonly data: T;
  /** The sending client; absent when a backend sent it. */
  readonly from?: { session: string; user?: string };
  readonly seq: number;
  readonly epoch: string;
  /** Send time, ms since the Unix epoch. */
  readonly ts: number;
}

const SESSION_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** The recipient as the gateway accepts it, or a SymphonicError (1001) saying what is wrong. */
export function checkRecipient(to: Recipient): Recipient {
  const t = to as { session?: unknown; user?: unknown };
  const keys = to && typeof to === 'object' ? Object.keys(to) : [];
  if (keys.length === 1 && typeof t.session === 'string' && SESSION_ID.test(t.session)) return { session: t.session };
  if (keys.length === 1 && typeof t.user === 'string' && t.user.length >= 1 && t.user.length <= 256) return { user: t.user };
  throw new SymphonicError(
    ErrorCode.InvalidFrame,
    'send: `to` is {session} (1-64 characters of [A-Za-z0-9_-]) or {user} (1-256 characters), exactly one of them',
  );
}

export class InboxPosition {
  private last: Position | undefined;

  /** For `hello.inbox` on a resume. */
  get position(): Position | undefined {
    return this.last;
  }

  /** A new session: its inbox is a new one. */
  reset(): void {
    this.last = undefined;
  }

  /** The message to hand to the app, or null for one already handled. */
  accept(f: DirectFrame): DirectMessage | null {
    if (this.last && f.epoch === this.last.epoch && f.seq <= this.last.seq) return null;
    this.last = { seq: f.seq, epoch: f.epoch };
    return { data: f.data, ...(f.from ? { from: f.from } : {}), seq: f.seq, epoch: f.epoch, ts: f.ts };
  }
}
