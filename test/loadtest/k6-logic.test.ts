/**
 * The k6 scenarios' protocol logic (loadtest/k6/lib/protocol.js) without k6: the same tracker the
 * scenarios use, fed by real sockets on a real gateway, must count every message owed, and flag
 * a gap, a duplicate and a subscriber that got nothing. And every scenario script must bundle
 * (syntax and local imports; the `k6/*` modules are k6's own), so a broken script fails CI even
 * where no k6 binary is installed.
 */
import { describe, expect, it } from 'vitest';
import { build } from 'esbuild';
import WebSocket from 'ws';
import { fileURLToPath } from 'node:url';
// @ts-expect-error plain JavaScript shared with the k6 scripts (no types)
import * as protocol from '../../loadtest/k6/lib/protocol.js';
import { Changes } from '../support/changes.ts';
import { useGateway } from '../support/gateway.ts';

const { SUBPROTOCOL, createTopicTracker, helloFrame, parseFrame, subFrame, closeCodeOf } = protocol as {
  SUBPROTOCOL: string;
  createTopicTracker(topic: string): Tracker;
  helloFrame(o?: object): string;
  parseFrame(text: string): Record<string, unknown> | null;
  subFrame(id: number, topic: string, since?: object): string;
  closeCodeOf(e: unknown): number;
};

interface Tracker {
  phase: string;
  gaps: number;
  duplicates: number;
  received: number;
  subscribes: number;
  startSubscribe(): void;
  onFrame(f: Record<string, unknown>): { seq: number; data: { n?: number } }[];
  delivery(total: number, fromStart: boolean): { owed: number; got: number };
}

const KEY = 'k6-logic-key';
const gw = await useGateway({ api: { keys: [KEY] } });
const changes = new Changes();

/** A JSON-subprotocol subscriber driven by the k6 tracker; resolves once subscribed. */
async function subscriber(topic: string): Promise<{ t: Tracker; ws: WebSocket }> {
  const t = createTopicTracker(topic);
  const ws = new WebSocket(gw.url, SUBPROTOCOL);
  await new Promise<void>((resolve, reject) => {
    ws.once('error', reject);
    ws.on('message', (raw) => {
      const f = parseFrame(raw.toString());
      if (!f) throw new Error('undecodable frame');
      if (f.t === 'welcome') {
        t.startSubscribe();
        ws.send(subFrame(1, topic));
      } else if (f.topic === topic) {
        t.onFrame(f);
        changes.bump();
        if (f.t === 'subscribed') resolve();
      }
    });
    ws.once('open', () => ws.send(helloFrame({ client: 'k6-logic' })));
  });
  return { t, ws };
}

async function publish(topic: string, data: unknown): Promise<void> {
  const r = await fetch(`${gw.httpUrl}/api/publish`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ topic, kind: 'event', data }),
  });
  expect(r.status).toBe(200);
}

describe('k6 scenario logic (loadtest/k6/lib/protocol.js)', () => {
  it('fan-out: every subscriber is owed and gets every numbered message up to the end marker', async () => {
    const topic = 'k6logic.fanout';
    const subs = await Promise.all(Array.from({ length: 20 }, () => subscriber(topic)));
    const total = 200;
    for (let n = 1; n <= total; n++) await publish(topic, { n, sentAt: Date.now() });
    await publish(topic, { end: total });
    await changes.until(() => subs.every((s) => s.t.received === total + 1), 10_000, 'every subscriber got every message and the end marker');
    for (const s of subs) {
      expect(s.t.delivery(total, true)).toEqual({ owed: total, got: total });
      expect([s.t.gaps, s.t.duplicates]).toEqual([0, 0]);
      s.ws.close();
    }
  });

  it('merges what arrives before `subscribed`, and counts gaps, duplicates and what was not delivered', () => {
    const t = createTopicTracker('x');
    t.startSubscribe();
    // A live message held during the subscribe, then the snapshot at 3: 4 is applied after it.
    t.onFrame({ t: 'msg', topic: 'x', seq: 4, prev: 3, data: { n: 4 } });
    t.onFrame({ t: 'subscribed', topic: 'x', seq: 3, epoch: 'e', recovered: false, wasRecovering: false });
    expect(t.phase).toBe('live');
    t.onFrame({ t: 'msg', topic: 'x', seq: 4, prev: 3, data: { n: 4 } }); // seen twice
    t.onFrame({ t: 'msg', topic: 'x', seq: 7, prev: 5, data: { n: 6 } }); // 5 is missing
    expect({ received: t.received, duplicates: t.duplicates, gaps: t.gaps }).toEqual({ received: 2, duplicates: 1, gaps: 1 });
    expect(t.delivery(6, false)).toEqual({ owed: 3, got: 2 });
    // A subscriber that got nothing although it was subscribed from the start is owed everything.
    const silent = createTopicTracker('y');
    expect(silent.delivery(10, true)).toEqual({ owed: 10, got: 0 });
  });

  it('reads close codes from k6 error texts and close events', () => {
    expect(closeCodeOf({ error: 'websocket: close 4001 (private use): slow consumer' })).toBe(4001);
    expect(closeCodeOf({ code: 4004 })).toBe(4004);
    expect(closeCodeOf({ error: 'dial tcp 127.0.0.1:1: connect: connection refused' })).toBe(0);
  });

  for (const scenario of ['fanout', 'connect-storm', 'chat', 'resume-storm']) {
    it(`loadtest/k6/${scenario}.js bundles (syntax, local imports)`, async () => {
      const entry = fileURLToPath(new URL(`../../loadtest/k6/${scenario}.js`, import.meta.url));
      const r = await build({ entryPoints: [entry], bundle: true, write: false, format: 'esm', external: ['k6', 'k6/*'], logLevel: 'silent' });
      expect(r.errors).toEqual([]);
      expect(r.outputFiles[0]!.text).toMatch(/handleSummary/);
    });
  }
});
