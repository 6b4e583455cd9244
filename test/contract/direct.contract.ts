/**
 * The direct-message seams' contract (docs/protocol.md section 16): `SessionStore.recipients` and
 * the `Inbox` (gateway/bus/inbox.ts), one suite both engines pass. Expiry past the TTL is in the
 * gateway tests (it needs the TTL to pass); delivery through sockets is in direct.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { Inbox, InboxMessage } from '../../gateway/bus/inbox.ts';
import type { SessionHolder, SessionStore } from '../../gateway/bus/sessions.ts';

export type MakeDirect = (inboxSize: number) => Promise<{ sessions: SessionStore; inbox: Inbox; cleanup: () => Promise<void> }>;

const holder = (): SessionHolder => ({ takeOver() {} });

/** Live copies, with a wait for the n-th (no sleeps: resolves on arrival, fails after `ms`). */
function recorder() {
  const got: InboxMessage[] = [];
  const waiters: (() => void)[] = [];
  return {
    got,
    deliver: (m: InboxMessage) => {
      got.push(m);
      for (const w of waiters.splice(0)) w();
    },
    async count(n: number, ms = 5000): Promise<void> {
      const deadline = Date.now() + ms;
      while (got.length < n) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`${got.length} live copies, expected ${n}`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
      }
    },
  };
}

export function runDirectContract(name: string, make: MakeDirect): void {
  describe(`direct-message seams: ${name}`, () => {
    it('recipients: a session (attached or waiting for a resume), every session of a user, nobody', async () => {
      const { sessions, cleanup } = await make(10);
      try {
        const h1 = holder();
        const a = (await sessions.attach(undefined, h1, 'ann')).session;
        const b = (await sessions.attach(undefined, holder(), 'ann')).session;
        const c = (await sessions.attach(undefined, holder(), 'bob')).session;
        const anon = (await sessions.attach(undefined, holder(), null)).session;
        expect(await sessions.recipients({ session: a.id })).toEqual([a.id]);
        expect(await sessions.recipients({ session: anon.id })).toEqual([anon.id]);
        expect((await sessions.recipients({ user: 'ann' })).sort()).toEqual([a.id, b.id].sort());
        expect(await sessions.recipients({ user: 'bob' })).toEqual([c.id]);
        expect(await sessions.recipients({ user: 'nobody' })).toEqual([]);
        expect(await sessions.recipients({ session: 'AAAAAAAAAAAAAAAA' })).toEqual([]);
        // Between sockets the session is still someone: messages wait in its inbox.
        sessions.detach(a, h1);
        expect(await sessions.recipients({ session: a.id })).toEqual([a.id]);
        expect((await sessions.recipients({ user: 'ann' })).sort()).toEqual([a.id, b.id].sort());
      } finally {
        await cleanup();
      }
    });

    it('inbox: appends in order under one epoch; reads all, or after a position, nothing lost', async () => {
      const { inbox, cleanup } = await make(10);
      try {
        const acks = [];
        for (let i = 1; i <= 4; i++) acks.push(await inbox.append('s-order', { data: { i }, ...(i === 2 ? { from: { session: 'x', user: 'ann' } } : {}) }));
        expect(new Set(acks.map((a) => a.epoch)).size).toBe(1);
        for (let i = 1; i < acks.length; i++) expect(acks[i]!.seq).toBeGreaterThan(acks[i - 1]!.seq);
        const all = await inbox.read('s-order', undefined);
        expect(all.lost).toBe(false);
        expect(all.messages.map((m) => m.data)).toEqual([{ i: 1 }, { i: 2 }, { i: 3 }, { i: 4 }]);
        expect(all.messages.map((m) => m.seq)).toEqual(acks.map((a) => a.seq));
        expect(all.messages[1]!.from).toEqual({ session: 'x', user: 'ann' });
        expect(all.messages[0]!.from).toBeUndefined();
        const after = await inbox.read('s-order', { seq: acks[1]!.seq, epoch: acks[1]!.epoch });
        expect(after.lost).toBe(false);
        expect(after.messages.map((m) => m.data)).toEqual([{ i: 3 }, { i: 4 }]);
        const none = await inbox.read('s-order', { seq: acks[3]!.seq, epoch: acks[3]!.epoch });
        expect(none).toEqual({ messages: [], lost: false });
        // Inboxes are per session.
        expect((await inbox.read('s-other', undefined)).messages).toEqual([]);
      } finally {
        await cleanup();
      }
    });

    it('inbox: past its size the oldest go, and a position before them reads as lost', async () => {
      const { inbox, cleanup } = await make(3);
      try {
        const acks = [];
        for (let i = 1; i <= 5; i++) acks.push(await inbox.append('s-full', { data: i }));
        const kept = await inbox.read('s-full', undefined);
        expect(kept.messages.map((m) => m.data)).toEqual([3, 4, 5]);
        expect(kept.lost).toBe(false); // no position: whatever is retained
        const behind = await inbox.read('s-full', { seq: acks[0]!.seq, epoch: acks[0]!.epoch });
        expect(behind.lost).toBe(true);
        expect(behind.messages.map((m) => m.data)).toEqual([3, 4, 5]);
        const atEdge = await inbox.read('s-full', { seq: acks[1]!.seq, epoch: acks[1]!.epoch });
        expect(atEdge.lost).toBe(false);
        // A position from another inbox (a recreated store) cannot be trusted.
        const foreign = await inbox.read('s-full', { seq: 1, epoch: 'another-epoch' });
        expect(foreign.lost).toBe(true);
        expect(foreign.messages.map((m) => m.data)).toEqual([3, 4, 5]);
      } finally {
        await cleanup();
      }
    });

    it('inbox: live copies while listening, in order with their predecessor, none after the stop', async () => {
      const { inbox, cleanup } = await make(10);
      try {
        const live = recorder();
        const other = recorder();
        const listening = inbox.listen('s-live', live);
        const listeningOther = inbox.listen('s-live-other', other);
        const acks = [];
        for (let i = 1; i <= 3; i++) acks.push(await inbox.append('s-live', { data: i }));
        await live.count(3);
        expect(live.got.map((m) => [m.seq, m.data])).toEqual(acks.map((a, i) => [a.seq, i + 1]));
        expect(live.got[0]!.prev).toBe(0);
        expect(live.got[1]!.prev).toBe(acks[0]!.seq);
        expect(live.got[2]!.prev).toBe(acks[1]!.seq);
        listening.stop();
        await inbox.append('s-live', { data: 4 });
        // A copy to the other session arriving proves the stopped one had its chance first.
        await inbox.append('s-live-other', { data: 'x' });
        await other.count(1);
        expect(live.got).toHaveLength(3);
        expect(other.got.map((m) => m.data)).toEqual(['x']);
        listeningOther.stop();
      } finally {
        await cleanup();
      }
    });

    it('inbox: two listens of one session (a takeover) both get copies; a stop ends only its own', async () => {
      const { inbox, cleanup } = await make(10);
      try {
        const [a, b, c] = [recorder(), recorder(), recorder()];
        const la = inbox.listen('s-two', a);
        const lb = inbox.listen('s-two', b);
        const lc = inbox.listen('s-two', c);
        await inbox.append('s-two', { data: 1 });
        await Promise.all([a.count(1), b.count(1), c.count(1)]);
        lb.stop();
        lb.stop(); // idempotent
        await inbox.append('s-two', { data: 2 });
        await Promise.all([a.count(2), c.count(2)]);
        la.stop();
        await inbox.append('s-two', { data: 3 });
        await c.count(3);
        expect(a.got.map((m) => m.data)).toEqual([1, 2]);
        expect(b.got.map((m) => m.data)).toEqual([1]);
        expect(c.got.map((m) => m.data)).toEqual([1, 2, 3]);
        lc.stop();
      } finally {
        await cleanup();
      }
    });
  });
}
