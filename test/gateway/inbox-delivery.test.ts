/**
 * InboxDelivery's ordering logic (gateway/connection/inbox-delivery.ts) on the embedded engine's
 * inbox: a live copy that does not follow the last one sent (a core NATS copy missed) makes it
 * read the inbox again, and everything still goes out once, in order. The connection is a
 * recorder of frames; the socket paths are in direct.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { Inbox, InboxMessage } from '../../gateway/bus/inbox.ts';
import { createMemoryInbox } from '../../gateway/bus/memory/inbox.ts';
import type { Connection } from '../../gateway/connection/connection.ts';
import { InboxDelivery } from '../../gateway/connection/inbox-delivery.ts';
import type { GatewayContext } from '../../gateway/context.ts';
import { createLogger } from '../../gateway/log.ts';

/** The memory inbox, whose live copies skip the seqs in `missed` (as a lost core NATS message). */
function lossyInbox(missed: Set<number>): Inbox {
  const inner = createMemoryInbox(100);
  return { ...inner, listen: (id, l) => inner.listen(id, { deliver: (m: InboxMessage) => !missed.has(m.seq) && l.deliver(m) }) };
}

function setup(inbox: Inbox) {
  const sent: { seq: number; data: unknown }[] = [];
  const conn = { send: (f: { t: string; seq: number; data: unknown }) => f.t === 'dm' && sent.push({ seq: f.seq, data: f.data }) } as unknown as Connection;
  const ctx = { inbox, log: createLogger('silent') } as unknown as GatewayContext;
  return { sent, conn, ctx };
}

const until = async (ok: () => boolean) => {
  for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setImmediate(r));
  expect(ok()).toBe(true);
};

describe('InboxDelivery', () => {
  it('repairs a missed live copy by reading the inbox: once, in order', async () => {
    const inbox = lossyInbox(new Set([2]));
    const { sent, conn, ctx } = setup(inbox);
    const d = new InboxDelivery(ctx, conn, 's1');
    d.begin([]);
    for (let i = 1; i <= 4; i++) await inbox.append('s1', { data: i });
    await until(() => sent.length === 4);
    expect(sent.map((m) => m.data)).toEqual([1, 2, 3, 4]);
    d.close();
  });

  it('repairs a missed first live copy too (no position yet: a new session found by a send before it listened)', async () => {
    const inbox = lossyInbox(new Set([1]));
    const { sent, conn, ctx } = setup(inbox);
    const d = new InboxDelivery(ctx, conn, 's3');
    d.begin([]);
    for (let i = 1; i <= 3; i++) await inbox.append('s3', { data: i });
    await until(() => sent.length === 3);
    expect(sent.map((m) => m.data)).toEqual([1, 2, 3]);
    d.close();
  });

  it('sends the backlog before live copies that arrived while it was read, without repeats', async () => {
    const inbox = createMemoryInbox(100);
    const { sent, conn, ctx } = setup(inbox);
    await inbox.append('s2', { data: 1 });
    await inbox.append('s2', { data: 2 });
    const d = new InboxDelivery(ctx, conn, 's2');
    const backlog = await d.backlog(undefined);
    await inbox.append('s2', { data: 3 }); // live, waits for the backlog
    expect(sent).toEqual([]);
    d.begin([...backlog.messages, ...(await inbox.read('s2', undefined)).messages]);
    await inbox.append('s2', { data: 4 });
    expect(sent.map((m) => m.data)).toEqual([1, 2, 3, 4]);
    d.close();
    await inbox.append('s2', { data: 5 });
    expect(sent).toHaveLength(4);
  });
});
