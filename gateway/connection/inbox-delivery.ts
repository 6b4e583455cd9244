/**
 * Direct messages to the session a connection holds, from its inbox (bus/inbox.ts): the live
 * copies (one listen per connection, on this gateway only), and on a resume the messages the
 * client has not seen, sent right after `welcome` and before any live one. Everything goes out
 * in `seq` order, each once: live copies that arrive while the backlog is read wait, anything at
 * or below the last sent `seq` is dropped, and a live copy that does not follow the last sent
 * (`prev` above it: a live copy was missed) makes it read the inbox again from there.
 */
import type { DirectFrame, Position } from '../../protocol/index.ts';
import type { InboxListener, InboxListening, InboxMessage, InboxRead } from '../bus/inbox.ts';
import type { GatewayContext } from '../context.ts';
import type { Connection } from './connection.ts';

export class InboxDelivery implements InboxListener {
  private last = 0;
  private epoch: string | undefined;
  /** Live copies waiting while a read is under way (null: send at once). */
  private waiting: InboxMessage[] | null = [];
  private readonly listening: InboxListening;
  private stopped = false;

  /** Listens at once (before any read): nothing appended from here on is missed. */
  constructor(
    private readonly ctx: GatewayContext,
    private readonly conn: Connection,
    private readonly sessionId: string,
  ) {
    this.listening = ctx.inbox.listen(sessionId, this);
  }

  /** On a resume: the retained messages after the client's position (`hello.inbox`; absent: all). */
  async backlog(after: Position | undefined): Promise<InboxRead> {
    if (after) {
      this.last = after.seq;
      this.epoch = after.epoch;
    }
    try {
      return await this.ctx.inbox.read(this.sessionId, after);
    } catch (e) {
      this.ctx.log.warn('inbox read failed', { error: (e as Error).message });
      return { messages: [], lost: true };
    }
  }

  /**
   * On a new session: nothing to read, but `welcome` waits until the live copies are in place, so a
   * message sent to the session right after it arrives live (with no later one to reveal the gap).
   */
  async fresh(): Promise<InboxRead> {
    await this.ctx.inbox.listening();
    return { messages: [], lost: false };
  }

  /** After `welcome`: the backlog, then the live copies that waited, then live as they come. */
  begin(backlog: readonly InboxMessage[]): void {
    this.flush(backlog);
  }

  close(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.waiting = null;
    this.listening.stop();
  }

  /** A live copy (InboxListener). */
  deliver(m: InboxMessage): void {
    if (this.stopped) return;
    if (this.waiting) return void this.waiting.push(m);
    // No position yet (a new session, or a resume that had none): any predecessor is a missed copy,
    // e.g. a user-addressed send that found the new session before this gateway listened.
    if (m.prev > this.last && (this.epoch === undefined || m.epoch === this.epoch)) return void this.catchUp();
    this.emit(m);
  }

  /**
   * Sends what was read, then what waited. After a catch-up read, a copy that still does not
   * follow is sent anyway: what it follows is gone (overflow, age), reading again would not help.
   */
  private flush(first: readonly InboxMessage[], afterCatchUp = false): void {
    const waited = this.waiting ?? [];
    this.waiting = null;
    for (const m of first) this.emit(m);
    for (const m of waited) {
      if (afterCatchUp) this.emit(m);
      else this.deliver(m);
    }
  }

  /** A live copy was missed: read what follows the last one sent, holding live copies meanwhile. */
  private catchUp(): void {
    this.waiting = [];
    const after = { seq: this.last, epoch: this.epoch ?? '' };
    this.ctx.inbox.read(this.sessionId, after).then(
      (r) => !this.stopped && this.flush(r.messages, true),
      (e: Error) => {
        this.ctx.log.warn('inbox read failed', { error: e.message });
        if (!this.stopped) this.flush([], true);
      },
    );
  }

  private emit(m: InboxMessage): void {
    if (m.epoch === this.epoch && m.seq <= this.last) return; // sent already
    this.last = m.seq;
    this.epoch = m.epoch;
    const frame: DirectFrame = { t: 'dm', seq: m.seq, epoch: m.epoch, ...(m.from ? { from: m.from } : {}), data: m.data, ts: m.ts };
    this.conn.send(frame);
  }
}
