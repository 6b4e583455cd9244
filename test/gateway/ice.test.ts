/**
 * The `ice` frame: STUN servers for everyone, TURN credentials only where the config allows, in
 * the TURN REST API form coturn checks (username `<expiry>:<name>`, HMAC-SHA1 of it under the
 * shared secret). The browser test with a real coturn is test/browser/turn.browser.test.ts.
 */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ServerFrame } from '../../protocol/index.ts';
import { turnCredentials } from '../../gateway/ice/credentials.ts';
import { connectRaw } from '../support/raw-client.ts';
import { useGateway } from '../support/gateway.ts';
import { connectWithToken } from '../support/admin.ts';
import { hs256, SECRET } from '../security/support/tokens.ts';

type Ice = Extract<ServerFrame, { t: 'ice' }>;
const TURN_SECRET = 'turn-shared-secret-0123456789';
const ice = {
  servers: [{ urls: 'stun:stun.example.test:3478' }],
  turn: { urls: ['turn:turn.example.test:3478?transport=udp'], secret: TURN_SECRET, ttlSec: 900 },
};
const gw = await useGateway({ auth: { secret: SECRET }, ice });
const bare = await useGateway({});

async function askIce(c: Awaited<ReturnType<typeof connectRaw>>): Promise<Ice> {
  c.send({ t: 'ice', id: 7 });
  return c.next<Ice>((f) => f.t === 'ice' && f.id === 7);
}

describe('ice', () => {
  it('gives an authenticated connection the STUN servers and TURN credentials that verify under the shared secret', async () => {
    const { c } = await connectWithToken(gw.url, await hs256({ sub: 'ann' }));
    const before = Math.floor(Date.now() / 1000);
    const r = await askIce(c);
    expect(r.servers[0]).toEqual({ urls: ['stun:stun.example.test:3478'] });
    const t = r.servers[1]!;
    expect(t.urls).toEqual(['turn:turn.example.test:3478?transport=udp']);
    const [expiry, name] = t.username!.split(':');
    expect(name).toBe('ann');
    expect(Number(expiry)).toBe(r.expires);
    expect(r.expires! - before).toBeGreaterThanOrEqual(899);
    expect(r.expires! - before).toBeLessThanOrEqual(901);
    expect(t.credential).toBe(createHmac('sha1', TURN_SECRET).update(t.username!).digest('base64'));
    expect(JSON.stringify(r)).not.toContain(TURN_SECRET);
    c.close();
  });

  it('gives an anonymous connection the STUN servers only (a relay costs the operator bandwidth)', async () => {
    const c = await connectRaw(gw.url, 'json');
    c.send({ t: 'hello', v: 1 });
    await c.next((f) => f.t === 'welcome');
    const r = await askIce(c);
    expect(r).toEqual({ t: 'ice', id: 7, servers: [{ urls: ['stun:stun.example.test:3478'] }] });
    c.close();
  });

  it('answers an empty list when nothing is configured', async () => {
    const c = await connectRaw(bare.url, 'msgpack');
    c.send({ t: 'hello', v: 1 });
    await c.next((f) => f.t === 'welcome');
    expect(await askIce(c)).toEqual({ t: 'ice', id: 7, servers: [] });
    c.close();
  });

  it('keeps colons out of the name part (coturn splits the username at the first one)', () => {
    const c = turnCredentials(TURN_SECRET, 'tenant:ann', 60, 1_000_000);
    expect(c).toEqual({ username: '1060:tenant_ann', credential: createHmac('sha1', TURN_SECRET).update('1060:tenant_ann').digest('base64'), expires: 1060 });
  });
});
