/** The embedded engine's inboxes: one array per session in this process, trimmed to `size`. */
import { randomBytes } from 'node:crypto';
import { lostAfter, type Inbox, type InboxListener, type InboxListening, type InboxMessage } from '../inbox.ts';

interface Box {
  messages: InboxMessage[];
  last: number;
}

/**
 * One listen, linked to the session's other listens (a session is held by one socket, two during
 * a takeover): a connected session costs this object and a Map entry, no Set, no closures.
 */
class Listening implements InboxListening {
  next: Listening | null = null;

  constructor(
    private readonly heads: Map<string, Listening>,
    private readonly sessionId: string,
    readonly listener: InboxListener,
  ) {}

  stop(): void {
    const head = this.heads.get(this.sessionId);
    if (head === this) {
      if (this.next) this.heads.set(this.sessionId, this.next);
      else this.heads.delete(this.sessionId);
      return;
    }
    for (let l: Listening | null | undefined = head; l; l = l.next) {
      if (l.next === this) {
        l.next = this.next;
        return;
      }
    }
  }
}

export function createMemoryInbox(size: number): Inbox {
  // A new process has new inboxes: positions from a previous one are meaningless.
  const epoch = randomBytes(6).toString('base64url');
  const boxes = new Map<string, Box>();
  /** Each listening session's first listen (the others linked from it). */
  const listens = new Map<string, Listening>();
  let delivered = 0;
  return {
    async append(sessionId, { from, data }) {
      let b = boxes.get(sessionId);
      if (!b) boxes.set(sessionId, (b = { messages: [], last: 0 }));
      const m: InboxMessage = { seq: b.last + 1, prev: b.last, epoch, ...(from ? { from } : {}), data, ts: Date.now() };
      b.last = m.seq;
      b.messages.push(m);
      if (b.messages.length > size) b.messages.splice(0, b.messages.length - size);
      for (let l: Listening | null | undefined = listens.get(sessionId); l; l = l.next) {
        delivered++;
        l.listener.deliver(m);
      }
      return { seq: m.seq, epoch };
    },
    async read(sessionId, after) {
      const all = boxes.get(sessionId)?.messages ?? [];
      const from = after && after.epoch === epoch ? after.seq : 0;
      const messages = all.filter((m) => m.seq > from);
      return { messages, lost: lostAfter(after, epoch, messages[0]) };
    },
    listen(sessionId, listener) {
      const l = new Listening(listens, sessionId, listener);
      let tail = listens.get(sessionId);
      if (!tail) listens.set(sessionId, l);
      else {
        while (tail.next) tail = tail.next;
        tail.next = l; // in the order they listened
      }
      return l;
    },
    listening: () => Promise.resolve(),
    forget(sessionId) {
      boxes.delete(sessionId);
    },
    delivered: () => delivered,
    async close() {
      boxes.clear();
      listens.clear();
    },
  };
}
