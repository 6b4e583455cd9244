/**
 * Compact `msg` frames (`hello.compact`): a short msgpack array naming the topic by the alias its
 * `subscribed` gave, carrying everything the map form says (seq, prev, kind, data, ts) in about a
 * third of the bytes around the data. JSON connections keep the plain form.
 */
import { pack as encode } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { createAliases } from '../../gateway/aliases.ts';
import type { ServerFrame } from '../../protocol/index.ts';
import { useGateway } from '../support/gateway.ts';
import { connectRaw, isReply } from '../support/raw-client.ts';

const KEY = 'compact-key-0123456789';
const gw = await useGateway({ api: { keys: [KEY] }, namespaces: { room: { presence: 'members' } } });

const publish = (topic: string, kind: string, data: unknown) =>
  fetch(`${gw.httpUrl}/api/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ topic, kind, data }),
  }).then((r) => r.json() as Promise<{ seq: number }>);

async function compactClient(encoding: 'msgpack' | 'json' = 'msgpack') {
  const c = await connectRaw(gw.url, encoding);
  c.send({ t: 'hello', v: 1, compact: true });
  const welcome = await c.next<Extract<ServerFrame, { t: 'welcome' }>>((f) => f.t === 'welcome');
  return { c, welcome };
}

const isArray = (f: unknown) => Array.isArray(f);

describe('compact msg frames', () => {
  it('grants compact on msgpack: subscribed names an alias, msg frames are [1, alias, seq, seq - prev, kind, data, ts]', async () => {
    const { c, welcome } = await compactClient();
    expect(welcome.compact).toBe(true);
    c.send({ t: 'sub', id: 1, topic: 'cp.a' });
    c.send({ t: 'sub', id: 2, topic: 'cp.b' });
    const a = (await c.next(isReply(1))) as { alias: number };
    const b = (await c.next(isReply(2))) as { alias: number };
    expect(a.alias).toBeGreaterThan(0);
    expect(b.alias).not.toBe(a.alias);
    const first = await publish('cp.a', 'set', { x: 1 });
    const second = await publish('cp.a', 'patch', { y: 2 });
    await publish('cp.b', 'event', 'hi');
    const frames = (await c.collect(isArray as (f: ServerFrame) => boolean, 3)) as unknown as unknown[][];
    expect(frames[0]).toEqual([1, a.alias, first.seq, first.seq, 1, { x: 1 }, expect.any(Number)]);
    expect(frames[1]).toEqual([1, a.alias, second.seq, second.seq - first.seq, 2, { y: 2 }, expect.any(Number)]);
    expect(frames[2]).toEqual([1, b.alias, 1, 1, 0, 'hi', expect.any(Number)]);
    expect(Math.abs((frames[2]![6] as number) - Date.now())).toBeLessThan(60_000);
    c.close();
  });

  it('spends at most 30 bytes around a message its map form wraps in 60-odd', async () => {
    const { c } = await compactClient();
    c.send({ t: 'sub', id: 1, topic: 'bench.fanout-topic' });
    await c.next(isReply(1));
    const data = 'x'.repeat(100);
    const raw: Buffer[] = [];
    c.ws.on('message', (m: Buffer) => raw.push(m));
    await publish('bench.fanout-topic', 'event', data);
    await c.next((f) => isArray(f) && (f as unknown as unknown[])[5] === data);
    const overhead = raw[0]!.byteLength - encode(data).byteLength;
    // 1 array header, 1 type, 1 alias, 1 seq, 1 delta, 1 kind, 9 ts (float64) = 15 here; larger seqs and aliases take up to 8 more.
    expect(overhead).toBeLessThanOrEqual(30);
    c.close();
  });

  it('a JSON connection asking for compact keeps the plain frames', async () => {
    const { c, welcome } = await compactClient('json');
    expect(welcome.compact).toBeUndefined();
    c.send({ t: 'sub', id: 1, topic: 'cp.json' });
    expect(await c.next(isReply(1))).not.toHaveProperty('alias');
    await publish('cp.json', 'event', 1);
    expect(await c.next((f) => f.t === 'msg')).toMatchObject({ t: 'msg', topic: 'cp.json', seq: 1, prev: 0 });
    c.close();
  });

  it('compact connections get presence frames as plain maps', async () => {
    const { c } = await compactClient();
    c.send({ t: 'sub', id: 1, topic: 'room.cp' });
    await c.next(isReply(1));
    expect(await c.next((f) => f.t === 'presence')).toMatchObject({ topic: 'room.cp', count: 1 });
    c.close();
  });
});

describe('aliases', () => {
  it('one per topic while held, freed by the last holder, never reused', () => {
    const a = createAliases();
    const x = a.acquire('t.x');
    expect(a.acquire('t.x')).toBe(x);
    const y = a.acquire('t.y');
    a.release('t.x');
    expect(a.of('t.x')).toBe(x);
    a.release('t.x');
    expect(a.of('t.x')).toBeUndefined();
    expect(a.acquire('t.x')).toBeGreaterThan(y);
    a.release('t.x');
    a.release('t.y');
    expect(a.size()).toBe(0);
  });
});
