/** Which `rpc.methods` entry serves a method (most specific wins), who may call it, and the `rpc` claim. */
import { describe, expect, it } from 'vitest';
import { ANONYMOUS, createAuthenticator } from '../../gateway/policy/auth.ts';
import { compilePatterns } from '../../gateway/policy/patterns.ts';
import { methodTable } from '../../gateway/rpc/methods.ts';
import { canCall } from '../../gateway/rpc/permission.ts';
import { identityHeaders } from '../../gateway/rpc/identity-headers.ts';
import { ErrorCode } from '../../protocol/index.ts';
import { hs256, SECRET } from '../security/support/tokens.ts';

const any = { allow: 'anyone' as const };

describe('rpc.methods resolution', () => {
  const table = methodTable({ '>': any, 'orders.>': any, 'orders.*': any, 'orders.refund': any, 'a.*.c': any, 'a.b.*': any, 'x.*': any });
  it.each([
    ['orders.refund', 'orders.refund'],
    ['orders.create', 'orders.*'],
    ['orders.eu.create', 'orders.>'],
    ['billing.pay', '>'],
    ['a.b.c', 'a.b.*'],
    ['a.z.c', 'a.*.c'],
    ['x.y', 'x.*'],
  ])('%s is served by %s', (method, key) => expect(table(method)?.key).toBe(key));

  it('answers null when nothing matches, and rejects an invalid key', () => {
    expect(methodTable({ 'orders.*': any })('orders')).toBeNull();
    expect(() => methodTable({ 'a..b': any })).toThrow(/rpc\.methods/);
  });
});

describe('who may call', () => {
  const m = (allow: 'anyone' | 'authenticated' | 'token') => ({ key: 'k', allow });
  const user = { ...ANONYMOUS, user: 'u1' };
  it('anyone, authenticated, token', () => {
    expect(canCall(ANONYMOUS, 'a.b', m('anyone')).ok).toBe(true);
    expect(canCall(ANONYMOUS, 'a.b', m('authenticated'))).toMatchObject({ ok: false, code: ErrorCode.Unauthorized });
    expect(canCall(user, 'a.b', m('authenticated')).ok).toBe(true);
    expect(canCall(user, 'a.b', m('token'))).toMatchObject({ ok: false, code: ErrorCode.Forbidden });
    expect(canCall({ ...user, rpc: compilePatterns(['a.*']) }, 'a.b', m('token')).ok).toBe(true);
    expect(canCall({ ...user, rpc: compilePatterns(['a.*']) }, 'a.b.c', m('token'))).toMatchObject({ ok: false, code: ErrorCode.Forbidden });
  });
});

describe('the rpc claim and forwarded claims', () => {
  it('keeps rpc patterns and only the claims named in rpc.claims; rejects an invalid rpc claim', async () => {
    const auth = await createAuthenticator({
      anonymous: true,
      secrets: [SECRET],
      publicKeys: [],
      algorithms: ['HS256'],
      clockToleranceSec: 5,
      forwardClaims: ['tenant', 'roles'],
    });
    const r = await auth.identity(await hs256({ sub: 'u1', rpc: ['orders.*'], tenant: 'ü-1', roles: ['a'], other: 1 }));
    if (!r.ok) throw new Error(r.message);
    expect(r.value.rpc.matches('orders.create')).toBe(true);
    expect(r.value.claims).toEqual({ tenant: 'ü-1', roles: ['a'] });
    const h = identityHeaders({ identity: r.value, session: 's1' }, 'gw-1');
    expect(h).toEqual({
      'Symphonic-User': 'u1',
      'Symphonic-Session': 's1',
      'Symphonic-Node': 'gw-1',
      'Symphonic-Claims': '{"tenant":"\\u00fc-1","roles":["a"]}',
    });
    expect(JSON.parse(h['Symphonic-Claims']!)).toEqual({ tenant: 'ü-1', roles: ['a'] });
    for (const rpc of ['orders.*', ['a b']]) {
      expect(await auth.identity(await hs256({ sub: 'u1', rpc }))).toMatchObject({ ok: false, code: ErrorCode.Unauthorized });
    }
  });
});
