/**
 * How much of one NATS operation outlives V8's young generation: operations at a steady rate
 * against a real nats-server, and the old generation's growth at each young-generation GC (what
 * was promoted, or allocated there directly), per operation. The NATS engine's session refresh is
 * a KV write per session every TTL/2 (TTL/3 before 2026-12-05); what of it reaches the old generation stays in the heap
 * until V8's next full GC (loadtest/README.md, "Memory per idle connection").
 *
 *   npx tsx loadtest/bench/promotion.ts [--op kv-update|kv-update-writer|js-publish|js-publish-writer|request|request-headers|publish] [--rate 1000] [--seconds 20]
 *
 * Run it under the gateway's Node flags (`node --max-semi-space-size=4 --import tsx ...`) to see
 * what the gateway sees.
 */
import { parseArgs } from 'node:util';
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';
import { StorageType, connect, headers } from 'nats';
import { STAY_CONNECTED } from '../../nats-kit/connect.ts';
import { JsWriter } from '../../nats-kit/js-writer.ts';
import { startNatsServer } from '../../test/support/nats-server.ts';

const OPS = ['kv-update', 'kv-update-writer', 'js-publish', 'js-publish-writer', 'request', 'request-headers', 'publish'] as const;
const { values: v } = parseArgs({
  options: { op: { type: 'string', default: 'kv-update' }, rate: { type: 'string', default: '1000' }, seconds: { type: 'string', default: '20' } },
});
const op = v.op as (typeof OPS)[number];
if (!OPS.includes(op)) throw new Error(`--op: one of ${OPS.join(', ')}`);
const rate = Number(v.rate);
const seconds = Number(v.seconds);
if (!(rate >= 100 && rate <= 20_000) || !(seconds >= 1 && seconds <= 300)) throw new Error('--rate 100-20000, --seconds 1-300');

const ns = await startNatsServer();
// The gateway's own connection options, so its request path is the one measured.
const nc = await connect({ ...STAY_CONNECTED, servers: ns.url });
const responder = await connect({ ...STAY_CONNECTED, servers: ns.url });
try {
  responder.subscribe('svc', { callback: (_e, m) => m.respond(m.data) });
  await responder.flush();
  // A record like the session registry's, in a bucket like it (history 1, file store).
  const value = new TextEncoder().encode(JSON.stringify({ v: 1, keyHash: 'x'.repeat(44), user: null, owner: 'node-1', topics: ['bench'] }));
  const kv = await nc.jetstream().views.kv('promotion', { history: 1, storage: StorageType.File });
  const KEYS = 2000;
  const revisions = await Promise.all(Array.from({ length: KEYS }, (_, i) => kv.create(`k${i}`, value)));
  await (await nc.jetstreamManager()).streams.add({ name: 'PROMOTION', subjects: ['promotion.>'], storage: StorageType.File });
  const js = nc.jetstream();
  const writer = new JsWriter(nc);

  const one = (i: number): Promise<unknown> | undefined => {
    switch (op) {
      case 'kv-update': {
        const k = i % KEYS;
        return kv.update(`k${k}`, value, revisions[k]!).then((r) => void (revisions[k] = r));
      }
      case 'kv-update-writer': {
        // The gateway's session registry: a KV update as a conditional publish to the key's subject.
        const k = i % KEYS;
        return writer.publish(`$KV.promotion.k${k}`, value, { expect: { lastSubjectSequence: revisions[k]! } }).then((a) => void (revisions[k] = a.seq));
      }
      case 'js-publish-writer':
        return writer.publish(`promotion.${i % 100}`, value);
      case 'js-publish':
        return js.publish(`promotion.${i % 100}`, value);
      case 'request':
        return nc.request('svc', value, { timeout: 5000 });
      case 'request-headers': {
        const h = headers();
        h.set('X-N', String(i));
        return nc.request('svc', value, { timeout: 5000, headers: h });
      }
      case 'publish':
        return void nc.publish('nobody', value);
    }
  };

  const oldUsed = () => getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')!.space_used_size;
  let youngGcs = 0;
  let grown = 0;
  let last = oldUsed();
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const now = oldUsed();
      // kind 1: a young-generation GC (scavenge); full GCs shrink the old generation and are left out.
      if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === 1) {
        youngGcs++;
        grown += now - last;
      }
      last = now;
    }
  });
  observer.observe({ entryTypes: ['gc'] });

  let sent = 0;
  let failed = 0;
  const perTick = rate / 100;
  const end = Date.now() + seconds * 1000;
  await new Promise<void>((done) => {
    const tick = setInterval(() => {
      for (let k = 0; k < perTick; k++) one(sent++)?.catch(() => failed++);
      if (Date.now() >= end) {
        clearInterval(tick);
        done();
      }
    }, 10);
  });
  await nc.flush();
  observer.disconnect();
  console.log(
    `${op} at ${rate}/s for ${seconds} s, ${process.version}: ${sent} sent, ${failed} failed, ${youngGcs} young GCs, ` +
      `old generation +${(grown / 1024 / 1024).toFixed(2)} MB at them = ${Math.round(grown / sent)} bytes per operation`,
  );
} finally {
  await nc.close();
  await responder.close();
  await ns.stop();
}
