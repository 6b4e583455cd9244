/** The embedded engine's inboxes: one array per session in this process, trimmed to `size`. */
import { randomBytes } from 'node:crypto';
import { lostAfter, type Inbox, type InboxMessage } from '../inbox.ts';

interface Box {
  messages: InboxMessage[];
  last: number;
  listeners: Set<(m: InboxMessage) => void>;
}

export function createMemoryInbox(size: number): Inbox {
  // A new process has new inboxes: positions from a previous one are meaningless.
  const epoch = randomBytes(6).toString('base64url');
  const boxes = new Map<string, Box>();
  let delivered = 0;
  const box = (id: string) => {
    let b = boxes.get(id);
    if (!b) boxes.set(id, (b = { messages: [], last: 0, listeners: new Set() }));
    return b;
  };
  return {
    async append(sessionId, { from, data }) {
      const b = box(sessionId);
      const m: InboxMessage = { seq: b.last + 1, prev: b.last, epoch, ...(from ? { from } : {}), data, ts: Date.now() };
      b.last = m.seq;
      b.messages.push(m);
      if (b.messages.length > size) b.messages.splice(0, b.messages.length - size);
      for (const l of b.listeners) {
        delivered++;
        l(m);
      }
      return { seq: m.seq, epoch };
    },
    async read(sessionId, after) {
      const all = boxes.get(sessionId)?.messages ?? [];
      const from = after && after.epoch === epoch ? after.seq : 0;
      const messages = all.filter((m) => m.seq > from);
      return { messages, lost: lostAfter(after, epoch, messages[0]) };
    },
    listen(sessionId, deliver) {
      const b = box(sessionId);
      b.listeners.add(deliver);
      return () => {
        b.listeners.delete(deliver);
        if (b.listeners.size === 0 && b.messages.length === 0) boxes.delete(sessionId);
      };
    },
    forget(sessionId) {
      boxes.delete(sessionId);
    },
    delivered: () => delivered,
    async close() {
      boxes.clear();
    },
  };
}
