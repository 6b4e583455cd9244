/**
 * The retried JetStream publish (nats-kit/publish.ts), logic only, over an in-memory stand-in for
 * `js.publish` (the real publishes run against nats-server in the engine, restart and cluster
 * tests): an attempt dropped by a reconnect is sent again at once with the same message id and
 * leaves nothing registered behind it; publishes started in one event-loop turn reach the client
 * together, so nats.js writes them in one go.
 */
import { describe, expect, it } from 'vitest';
import type { PubAck } from 'nats';
import type { JsPublisher } from '../../nats-kit/js-writer.ts';
import { AckFloor, publishRetried, type RetryRules } from '../../nats-kit/publish.ts';

interface Call {
  msgID: string;
  ack: (a: PubAck) => void;
}

function fakeJs() {
  const calls: Call[] = [];
  let onCall: ((n: number) => void) | undefined;
  const js = {
    publish(_subject: string, _payload: Uint8Array, opts: { msgID: string }) {
      return new Promise<PubAck>((ack) => {
        calls.push({ msgID: opts.msgID, ack });
        onCall?.(calls.length);
      });
    },
  } as unknown as JsPublisher;
  return { js, calls, onFirstCall: (f: (n: number) => void) => (onCall = f) };
}

const ackOf = (seq: number): PubAck => ({ stream: 'S', seq, duplicate: false, domain: '' }) as PubAck;
const publish = (id: string) => ({ subject: 's.x', payload: new Uint8Array(1), msgID: id, stream: 'S', deadline: Date.now() + 10_000, floor: new AckFloor() });

/** Resend rules over a set of registered callbacks, as the engine's identity keeps them. */
function reconnects() {
  const waiters = new Set<() => void>();
  const rules: RetryRules = {
    resend(now) {
      waiters.add(now);
      return () => void waiters.delete(now);
    },
    failed: (e) => {
      throw e;
    },
    wrongStream: (s) => new Error(`wrong stream ${s}`),
  };
  return {
    rules,
    waiters,
    reconnect: () => {
      for (const w of [...waiters]) w();
    },
  };
}

describe('publishRetried', () => {
  it('sends an attempt again at once when a reconnect drops it, with the same message id, and leaves no registration behind', async () => {
    const { js, calls } = fakeJs();
    const r = reconnects();
    const done = publishRetried(js, publish('m-1'), r.rules);
    await expect.poll(() => calls.length).toBe(1);
    expect(r.waiters.size).toBe(1);
    r.reconnect();
    await expect.poll(() => calls.length).toBe(2);
    expect(calls.map((c) => c.msgID)).toEqual(['m-1', 'm-1']);
    calls[1]!.ack(ackOf(7));
    await expect(done).resolves.toMatchObject({ seq: 7 });
    expect(r.waiters.size).toBe(0);
  });

  it('keeps nothing registered per settled publish (a long-lived reconnect promise would hold one reaction per publish)', async () => {
    const { js, calls } = fakeJs();
    const r = reconnects();
    const all = Array.from({ length: 200 }, (_, i) => publishRetried(js, publish(`m-${i}`), r.rules));
    await expect.poll(() => calls.length).toBe(200);
    expect(r.waiters.size).toBe(200);
    for (const [i, c] of calls.entries()) c.ack(ackOf(i + 1));
    await Promise.all(all);
    expect(r.waiters.size).toBe(0);
  });

  it('hands publishes started by separate callbacks of one turn to the client before its next microtask checkpoint', async () => {
    const { js, calls, onFirstCall } = fakeJs();
    const r = reconnects();
    let seenByFirstFlush = 0;
    // nats.js queues its socket write as a microtask at the first command: count what it would carry.
    onFirstCall((n) => n === 1 && queueMicrotask(() => (seenByFirstFlush = calls.length)));
    const started: Promise<PubAck>[] = [];
    // Separate macrotask callbacks, like uWS message callbacks: microtasks run between them.
    await new Promise<void>((resolve) => {
      for (let i = 0; i < 5; i++) setImmediate(() => started.push(publishRetried(js, publish(`m-${i}`), r.rules)));
      setImmediate(resolve);
    });
    await expect.poll(() => calls.length).toBe(5);
    expect(seenByFirstFlush).toBe(5);
    for (const [i, c] of calls.entries()) c.ack(ackOf(i + 1));
    await Promise.all(started);
  });
});
