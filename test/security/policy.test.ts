/**
 * Unit tests of the policy modules (gateway/policy/): topic patterns, namespaces and their
 * retention, permission decisions, JWT verification (HS256, RS256, ES256, JWKS), payload
 * schemas, Origins, token buckets, API keys, and the config fields that drive them.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, type GatewayConfigInput } from '../../gateway/config.ts';
import { createApiKeys } from '../../gateway/policy/api-keys.ts';
import { ANONYMOUS, createAuthenticator, type AuthConfig, type Identity } from '../../gateway/policy/auth.ts';
import { createPolicy, historyFor, widestHistory } from '../../gateway/policy/index.ts';
import { namespaceAges } from '../../gateway/policy/namespaces.ts';
import { createNamespaces } from '../../gateway/policy/namespaces.ts';
import { createOriginPolicy } from '../../gateway/policy/origin.ts';
import { compilePatterns, matchPattern, patternError } from '../../gateway/policy/patterns.ts';
import { checkPayload, topicTooLong } from '../../gateway/policy/payload.ts';
import { canPublish, canSubscribe } from '../../gateway/policy/permissions.ts';
import { TokenBucket, bucket } from '../../gateway/policy/rate-limit.ts';
import { compileSchema, JsonSchemaConfig } from '../../gateway/policy/schema.ts';
import { ErrorCode } from '../../protocol/index.ts';
import { hs256, inSeconds, keyPair, SECRET } from './support/tokens.ts';

const tmp = mkdtempSync(join(tmpdir(), 'symphonic-sec-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('topic patterns', () => {
  it.each([
    ['chat.*', 'chat.a', true],
    ['chat.*', 'chat', false],
    ['chat.*', 'chat.a.b', false],
    ['chat.>', 'chat.a', true],
    ['chat.>', 'chat.a.b.c', true],
    ['chat.>', 'chat', false],
    ['*.x', 'a.x', true],
    ['*.x', 'a.y', false],
    ['>', 'anything.at.all', true],
    ['a.*.c', 'a.b.c', true],
    ['a.*.c', 'a.b.d', false],
    ['chat.room', 'chat.room', true],
    ['chat.room', 'chat.room2', false],
  ])('%s vs %s -> %s', (pattern, topic, expected) => {
    expect(matchPattern(pattern, topic)).toBe(expected);
    expect(compilePatterns([pattern]).matches(topic)).toBe(expected);
  });

  it.each(['', 'a..b', 'a.>.b', 'a b', 'a.>x', 7, 'x'.repeat(201)])('rejects the invalid pattern %j', (p) => {
    expect(patternError(p)).not.toBeNull();
    expect(() => compilePatterns([p as string])).toThrow();
  });

  it('an empty list matches nothing', () => {
    expect(compilePatterns([]).matches('a')).toBe(false);
  });
});

function config(input: GatewayConfigInput = {}) {
  return parseConfig(input);
}

describe('namespaces', () => {
  const cfg = config({
    bus: { history: { size: 500, ageMs: 60_000 } },
    defaultNamespace: { history: { size: 100 } },
    namespaces: {
      chat: { subscribe: 'authenticated', history: { size: 10, ageMs: 1000 }, presence: true },
      'chat.vip': { subscribe: 'token' },
      prices: { publish: 'server', maxPayloadBytes: 128 },
    },
  });
  const ns = createNamespaces(cfg);

  it('picks the longest configured prefix of whole tokens, else the default', () => {
    expect(ns.of('chat').name).toBe('chat');
    expect(ns.of('chat.room-1').name).toBe('chat');
    expect(ns.of('chat.vip.x').name).toBe('chat.vip');
    expect(ns.of('chat.vipx').name).toBe('chat');
    expect(ns.of('chatter.x').name).toBe('');
    expect(ns.of('user.u1.inbox')).toMatchObject({ name: 'user', personal: true, subscribe: 'authenticated', publish: 'server' });
  });

  it('resolves unset fields from defaultNamespace, then from the gateway config', () => {
    expect(ns.of('chat.x')).toMatchObject({ subscribe: 'authenticated', publish: 'anyone', presence: 'members', maxPayloadBytes: 64 * 1024 });
    expect(ns.of('prices.eur')).toMatchObject({ subscribe: 'anyone', publish: 'server', maxPayloadBytes: 128, presence: false });
    expect(ns.of('other').publish).toBe('anyone');
    expect(createNamespaces(config({ clientPublish: false })).of('other').publish).toBe('server');
  });

  it('exposes retention per topic for the bus engines (historyFor)', () => {
    expect(ns.historyFor('chat.room-1')).toEqual({ size: 10, ageMs: 1000 });
    expect(ns.historyFor('chat.vip.x')).toEqual({ size: 100, ageMs: 60_000 }); // chat.vip inherits the default, not chat
    expect(ns.historyFor('misc')).toEqual({ size: 100, ageMs: 60_000 });
    expect(historyFor('chat.a', cfg)).toEqual({ size: 10, ageMs: 1000 });
    expect(historyFor('misc', config())).toEqual({ size: 1000, ageMs: 3_600_000 });
    // What a store shared by all namespaces (the NATS stream) must keep: the widest of each limit.
    expect(widestHistory(cfg)).toEqual({ size: 100, ageMs: 60_000 });
    expect(widestHistory(config({ namespaces: { archive: { history: { size: 5000, ageMs: 1000 } } } }))).toEqual({ size: 5000, ageMs: 3_600_000 });
    // Each namespace's age, for the NATS engine's purges ('' is the default namespace).
    expect(namespaceAges(cfg)).toEqual([
      { name: '', ageMs: 60_000 },
      { name: 'user', ageMs: 60_000 },
      { name: 'chat', ageMs: 1000 },
      { name: 'chat.vip', ageMs: 60_000 },
      { name: 'prices', ageMs: 60_000 },
    ]);
  });

  it('a config may redefine the built-in personal namespace', () => {
    const n = createNamespaces(config({ namespaces: { user: { subscribe: 'anyone' } } }));
    expect(n.of('user.x')).toMatchObject({ personal: false, subscribe: 'anyone' });
  });
});

describe('permissions', () => {
  const cfg = config({
    namespaces: {
      open: {},
      members: { subscribe: 'authenticated', publish: 'authenticated' },
      private: { subscribe: 'token', publish: 'token' },
      feed: { publish: 'server' },
    },
  });
  const ns = createNamespaces(cfg);
  const user = (u: string, extra: Partial<Identity> = {}): Identity => ({ ...ANONYMOUS, user: u, ...extra });

  it('subscribe: anyone / authenticated / token', () => {
    expect(canSubscribe(ANONYMOUS, ns.of('open.a'), 'open.a').ok).toBe(true);
    expect(canSubscribe(ANONYMOUS, ns.of('members.a'), 'members.a')).toMatchObject({ ok: false, code: ErrorCode.Unauthorized });
    expect(canSubscribe(user('u1'), ns.of('members.a'), 'members.a').ok).toBe(true);
    expect(canSubscribe(user('u1'), ns.of('private.a'), 'private.a')).toMatchObject({ ok: false, code: ErrorCode.Forbidden });
    expect(canSubscribe(user('u1', { subs: compilePatterns(['private.*']) }), ns.of('private.a'), 'private.a').ok).toBe(true);
  });

  it('subscribe with a subscription token: the topic named, the right user', () => {
    const grant = { user: 'u1', exp: null, topic: 'private.a', subs: compilePatterns([]) };
    expect(canSubscribe(user('u1'), ns.of('private.a'), 'private.a', grant).ok).toBe(true);
    expect(canSubscribe(user('u1'), ns.of('private.b'), 'private.b', grant)).toMatchObject({ ok: false, code: ErrorCode.Forbidden });
    expect(canSubscribe(user('u2'), ns.of('private.a'), 'private.a', grant)).toMatchObject({ ok: false, code: ErrorCode.Forbidden });
    const bearer = { user: null, exp: null, topic: null, subs: compilePatterns(['private.>']) };
    expect(canSubscribe(ANONYMOUS, ns.of('private.b.c'), 'private.b.c', bearer).ok).toBe(true);
  });

  it('personal namespace: own topics (sub or channels) only', () => {
    const u1 = user('u1', { channels: ['team-7'] });
    expect(canSubscribe(u1, ns.of('user.u1'), 'user.u1').ok).toBe(true);
    expect(canSubscribe(u1, ns.of('user.u1.inbox'), 'user.u1.inbox').ok).toBe(true);
    expect(canSubscribe(u1, ns.of('user.team-7.x'), 'user.team-7.x').ok).toBe(true);
    expect(canSubscribe(u1, ns.of('user.u2.inbox'), 'user.u2.inbox')).toMatchObject({ ok: false, code: ErrorCode.Forbidden });
    expect(canSubscribe(u1, ns.of('user'), 'user')).toMatchObject({ ok: false, code: ErrorCode.Forbidden });
    expect(canSubscribe(ANONYMOUS, ns.of('user.u1'), 'user.u1')).toMatchObject({ ok: false, code: ErrorCode.Unauthorized });
    // An explicit grant (e.g. a support agent's token) reaches other users' personal topics.
    expect(canSubscribe(user('agent', { subs: compilePatterns(['user.>']) }), ns.of('user.u2'), 'user.u2').ok).toBe(true);
  });

  it('publish: server / token / authenticated / anyone, and the clientPublish switch', () => {
    expect(canPublish(ANONYMOUS, ns.of('open.a'), 'open.a', true).ok).toBe(true);
    expect(canPublish(ANONYMOUS, ns.of('open.a'), 'open.a', false)).toMatchObject({ ok: false, code: ErrorCode.PublishNotAllowed });
    expect(canPublish(user('u1'), ns.of('feed.a'), 'feed.a', true)).toMatchObject({ ok: false, code: ErrorCode.PublishNotAllowed });
    expect(canPublish(ANONYMOUS, ns.of('members.a'), 'members.a', true)).toMatchObject({ ok: false, code: ErrorCode.Unauthorized });
    expect(canPublish(user('u1'), ns.of('members.a'), 'members.a', true).ok).toBe(true);
    expect(canPublish(user('u1'), ns.of('private.a'), 'private.a', true)).toMatchObject({ ok: false, code: ErrorCode.Forbidden });
    expect(canPublish(user('u1', { pubs: compilePatterns(['private.a']) }), ns.of('private.a'), 'private.a', true).ok).toBe(true);
    expect(canPublish(user('u1'), ns.of('user.u1'), 'user.u1', true)).toMatchObject({ ok: false, code: ErrorCode.PublishNotAllowed });
  });
});

const authConfig = (over: Partial<AuthConfig> = {}): AuthConfig => ({
  anonymous: true,
  secrets: [SECRET],
  publicKeys: [],
  algorithms: ['HS256', 'RS256', 'ES256'],
  clockToleranceSec: 0,
  ...over,
});

describe('JWT verification', () => {
  it('HS256: a valid token gives the identity with its claims', async () => {
    const auth = await createAuthenticator(authConfig());
    const exp = inSeconds(60);
    const r = await auth.identity(await hs256({ sub: 'u1', exp, subs: ['a.*'], pubs: ['b.>'], channels: ['t1'] }));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value).toMatchObject({ user: 'u1', exp, channels: ['t1'] });
    expect(r.value.subs.matches('a.x')).toBe(true);
    expect(r.value.pubs.matches('b.x.y')).toBe(true);
  });

  it.each([
    ['a wrong secret', () => hs256({ sub: 'u1' }, { secret: 'another-secret-0123456789-abcdefghijk' }), ErrorCode.Unauthorized],
    ['an expired token', () => hs256({ sub: 'u1', exp: inSeconds(-10) }), ErrorCode.TokenExpired],
    ['a token not yet valid', () => hs256({ sub: 'u1', nbf: inSeconds(100) }), ErrorCode.Unauthorized],
    ['no sub', () => hs256({ exp: inSeconds(60) }), ErrorCode.Unauthorized],
    ['a bad subs claim', () => hs256({ sub: 'u1', subs: 'a.*' }), ErrorCode.Unauthorized],
    ['an invalid pattern', () => hs256({ sub: 'u1', pubs: ['a b'] }), ErrorCode.Unauthorized],
    ['bad channels', () => hs256({ sub: 'u1', channels: ['a.b'] }), ErrorCode.Unauthorized],
    ['an algorithm not allowed', () => hs256({ sub: 'u1' }, { alg: 'HS512' }), ErrorCode.Unauthorized],
    ['garbage', async () => 'not.a.jwt', ErrorCode.Unauthorized],
    [
      'alg none',
      async () => `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"u1"}').toString('base64url')}.`,
      ErrorCode.Unauthorized,
    ],
  ])('rejects %s', async (_, make, code) => {
    const auth = await createAuthenticator(authConfig());
    expect(await auth.identity(await make())).toMatchObject({ ok: false, code, message: expect.any(String) });
  });

  it('the error never contains the token', async () => {
    const auth = await createAuthenticator(authConfig());
    const token = await hs256({ sub: 'u1' }, { secret: 'another-secret-0123456789-abcdefghijk' });
    const r = await auth.identity(token);
    expect(JSON.stringify(r)).not.toContain(token.split('.')[2]);
  });

  it('issuer and audience, when configured, are required', async () => {
    const auth = await createAuthenticator(authConfig({ issuer: 'https://issuer', audience: 'symphonic' }));
    expect((await auth.identity(await hs256({ sub: 'u1', iss: 'https://issuer', aud: 'symphonic' }))).ok).toBe(true);
    expect(await auth.identity(await hs256({ sub: 'u1', iss: 'https://other', aud: 'symphonic' }))).toMatchObject({ ok: false, code: ErrorCode.Unauthorized });
    expect(await auth.identity(await hs256({ sub: 'u1', iss: 'https://issuer' }))).toMatchObject({ ok: false });
  });

  it('RS256 and ES256 with PEM public keys (inline or as a file); the wrong key fails', async () => {
    const rs = await keyPair('RS256');
    const es = await keyPair('ES256');
    const other = await keyPair('ES256');
    const file = join(tmp, 'es.pem');
    writeFileSync(file, es.publicPem);
    const auth = await createAuthenticator(authConfig({ secrets: [], publicKeys: [rs.publicPem, file] }));
    expect(await auth.identity(await rs.sign({ sub: 'r1' }))).toMatchObject({ ok: true, value: { user: 'r1' } });
    expect(await auth.identity(await es.sign({ sub: 'e1' }))).toMatchObject({ ok: true, value: { user: 'e1' } });
    expect(await auth.identity(await other.sign({ sub: 'x' }))).toMatchObject({ ok: false, code: ErrorCode.Unauthorized });
    expect(await auth.identity(await hs256({ sub: 'h' }))).toMatchObject({ ok: false, code: ErrorCode.Unauthorized });
  });

  it('a JWKS file, keys picked by kid', async () => {
    const a = await keyPair('ES256');
    const b = await keyPair('RS256');
    const file = join(tmp, 'jwks.json');
    writeFileSync(
      file,
      JSON.stringify({
        keys: [
          { ...a.jwk, kid: 'a' },
          { ...b.jwk, kid: 'b' },
        ],
      }),
    );
    const auth = await createAuthenticator(authConfig({ secrets: [], jwksFile: file }));
    expect(await auth.identity(await a.sign({ sub: 'ua' }, 'a'))).toMatchObject({ ok: true, value: { user: 'ua' } });
    expect(await auth.identity(await b.sign({ sub: 'ub' }, 'b'))).toMatchObject({ ok: true, value: { user: 'ub' } });
    expect(await auth.identity(await a.sign({ sub: 'ua' }, 'b'))).toMatchObject({ ok: false });
  });

  it('bad key material fails at startup with the field named', async () => {
    await expect(createAuthenticator(authConfig({ publicKeys: ['-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----'] }))).rejects.toThrow(
      /auth\.publicKeys\[0\]/,
    );
    await expect(createAuthenticator(authConfig({ publicKeys: [join(tmp, 'missing.pem')] }))).rejects.toThrow(/auth\.publicKeys\[0\].*missing\.pem/);
    await expect(createAuthenticator(authConfig({ jwksFile: join(tmp, 'missing.json') }))).rejects.toThrow(/auth\.jwksFile/);
    await expect(createPolicy(config({ auth: { anonymous: false } }))).rejects.toThrow(ConfigError);
  });

  it('without keys every token is refused (never trusted unverified)', async () => {
    const auth = await createAuthenticator(authConfig({ secrets: [] }));
    expect(auth.enabled).toBe(false);
    expect(await auth.identity(await hs256({ sub: 'u1' }))).toMatchObject({ ok: false, code: ErrorCode.Unauthorized });
  });

  it('subscription tokens name a topic (or patterns), optionally a user', async () => {
    const auth = await createAuthenticator(authConfig());
    expect(await auth.grant(await hs256({ topic: 'private.a', sub: 'u1' }))).toMatchObject({ ok: true, value: { topic: 'private.a', user: 'u1' } });
    expect(await auth.grant(await hs256({ subs: ['private.>'] }))).toMatchObject({ ok: true, value: { topic: null, user: null } });
    expect(await auth.grant(await hs256({ sub: 'u1' }))).toMatchObject({ ok: false, code: ErrorCode.Unauthorized });
    expect(await auth.grant(await hs256({ topic: 'private.a', exp: inSeconds(-5) }))).toMatchObject({ ok: false, code: ErrorCode.TokenExpired });
  });
});

describe('payload schemas (JSON Schema subset)', () => {
  const schema = {
    type: 'object',
    required: ['text'],
    additionalProperties: false,
    properties: {
      text: { type: 'string', minLength: 1, maxLength: 5 },
      n: { type: 'integer', minimum: 0, exclusiveMaximum: 10 },
      tags: { type: 'array', items: { enum: ['a', 'b'] }, maxItems: 2 },
      kind: { const: 'x' },
      any: { anyOf: [{ type: 'null' }, { type: 'string', pattern: '^z' }] },
      meta: { type: 'object', additionalProperties: { type: 'number' }, maxProperties: 1 },
    },
  } as const;
  const check = compileSchema(JsonSchemaConfig.parse(schema));

  it.each([[{ text: 'hi' }], [{ text: 'hello', n: 9, tags: ['a', 'b'], kind: 'x', any: null, meta: { a: 1 } }], [{ text: 'é✓', any: 'zz' }]])(
    'accepts %j',
    (data) => {
      expect(check(data)).toBeNull();
    },
  );

  it.each([
    [null, /must be object/],
    [[], /must be object/],
    [{}, /missing required property "text"/],
    [{ text: '' }, /shorter/],
    [{ text: 'toolong' }, /longer/],
    [{ text: 'a', n: 1.5 }, /data\.n: must be integer/],
    [{ text: 'a', n: 10 }, /< 10/],
    [{ text: 'a', tags: ['c'] }, /data\.tags\[0\]: must be one of/],
    [{ text: 'a', tags: ['a', 'a', 'a'] }, /more than 2/],
    [{ text: 'a', kind: 'y' }, /must equal/],
    [{ text: 'a', any: 'q' }, /none of the allowed/],
    [{ text: 'a', extra: 1 }, /not allowed/],
    [{ text: 'a', meta: { a: 'x' } }, /data\.meta\.a: must be number/],
    [{ text: 'a', meta: { a: 1, b: 2 } }, /more than 1/],
  ])('rejects %j', (data, re) => {
    expect(check(data)).toMatch(re);
  });

  it('unknown keywords and bad patterns are config errors, with their path', () => {
    expect(() => config({ namespaces: { chat: { schema: { type: 'object', format: 'email' } as never } } })).toThrow(/namespaces\.chat\.schema/);
    expect(() => config({ namespaces: { chat: { schema: { type: 'string', pattern: '(' } } } })).toThrow(/pattern/);
    expect(() => config({ namespaces: { chat: { schema: { type: 'text' as never } } } })).toThrow(ConfigError);
  });
});

describe('topic and payload rules (shared by pub and the HTTP API)', () => {
  const ns = createNamespaces(config({ namespaces: { small: { maxPayloadBytes: 16, maxTopicLength: 12, schema: { type: 'object', required: ['a'] } } } })).of(
    'small.x',
  );
  const encode = (d: unknown) => JSON.stringify(d);

  it('a topic longer than its namespace allows is 2000 BadTopic', () => {
    expect(topicTooLong(ns, 'small.x')).toBeNull();
    expect(topicTooLong(ns, 'small.xxxxxxx')).toMatchObject({ ok: false, code: ErrorCode.BadTopic, message: 'topic longer than 12 characters' });
  });

  it('the size counts as encoded (the frame size only spares the encode), then the schema', () => {
    let encoded = 0;
    const counting = (d: unknown) => (encoded++, encode(d));
    expect(checkPayload(ns, { a: 1 }, 10, counting)).toBeNull();
    expect(encoded).toBe(0);
    expect(checkPayload(ns, { a: 1 }, 100, counting)).toBeNull();
    expect(encoded).toBe(1);
    expect(checkPayload(ns, { a: 'x'.repeat(20) }, 100, encode)).toMatchObject({ code: ErrorCode.PayloadTooLarge, message: 'data larger than 16 bytes' });
    expect(checkPayload(ns, { a: 'é'.repeat(7) }, 100, encode)?.code).toBe(ErrorCode.PayloadTooLarge); // bytes, not characters
    expect(checkPayload(ns, { b: 1 }, 10, encode)).toMatchObject({ code: ErrorCode.InvalidPayload, message: expect.stringMatching(/namespace "small"/) });
  });
});

describe('origins', () => {
  it('empty list: any origin; otherwise exact entries and wildcard subdomains', () => {
    expect(createOriginPolicy([]).allowed('https://evil.example')).toBe(true);
    const p = createOriginPolicy(['https://app.example.com', 'https://*.example.org']);
    expect(p.allowed('https://app.example.com')).toBe(true);
    expect(p.allowed('HTTPS://APP.EXAMPLE.COM')).toBe(true);
    expect(p.allowed('https://a.example.org')).toBe(true);
    expect(p.allowed('https://a.b.example.org')).toBe(true);
    expect(p.allowed('https://example.org')).toBe(false);
    expect(p.allowed('http://a.example.org')).toBe(false);
    expect(p.allowed('https://app.example.com.evil.net')).toBe(false);
    expect(p.allowed('https://evilexample.org')).toBe(false);
    expect(p.allowed('')).toBe(true); // non-browser clients send no Origin
    expect(createOriginPolicy(['https://a.test'], true).allowed('')).toBe(false);
  });

  // Each once passed `https://*.example.org` (matched as a string suffix).
  it.each([
    'https://evil.com#.example.org',
    'https://evil.com?.example.org',
    'https://evil.com\\.example.org',
    'https://evil.com .example.org',
    'https://evil.com@a.example.org',
    'https://user@a.example.org',
    'https://evil.com/.example.org',
    'https://a.example.org/path',
    'https://a.example.org:8443', // another port
    'https://.example.org',
    'null',
  ])('a wildcard does not match %j', (origin) => {
    expect(createOriginPolicy(['https://*.example.org']).allowed(origin)).toBe(false);
  });

  it('compares parsed origins: case, default ports and one trailing slash do not matter; the port does', () => {
    const p = createOriginPolicy(['https://App.Example.com:443/', 'http://*.example.org', 'https://*.example.net:8443', 'http://localhost:3000', 'null']);
    for (const ok of [
      'https://app.example.com',
      'https://app.example.com:443',
      'HTTPS://APP.EXAMPLE.COM/',
      'http://a.example.org:80',
      'HTTP://A.B.EXAMPLE.ORG',
      'https://x.example.net:8443',
      'http://localhost:3000',
      'null',
    ]) {
      expect(p.allowed(ok), ok).toBe(true);
    }
    for (const no of [
      'https://app.example.com:444',
      'http://app.example.com',
      'https://app.example.com//',
      'https://app.example.com/x',
      'http://example.org',
      'https://a.example.org',
      'https://x.example.net',
      'http://localhost',
      'http://localhost:3000?',
      'https://app.example.com.',
      'nul',
    ]) {
      expect(p.allowed(no), no).toBe(false);
    }
  });

  it.each([
    'https://a.test/path',
    'https://a.test?x',
    'https://*.a.test#f',
    'a.test',
    '*.a.test',
    'https://user@a.test',
    'https://a.test:99999',
    'https://*',
    'https://*.[::1]',
  ])('an invalid entry %j stops the start with a config error naming it', async (entry) => {
    expect(() => createOriginPolicy([entry])).toThrow(JSON.stringify(entry));
    await expect(createPolicy(config({ ws: { allowedOrigins: ['https://ok.test', entry] } }))).rejects.toThrow(ConfigError);
    await expect(createPolicy(config({ ws: { allowedOrigins: [entry] } }))).rejects.toThrow(/ws\.allowedOrigins/);
  });
});

describe('token bucket', () => {
  it('allows the burst, then the refill rate', () => {
    const b = new TokenBucket(10, 3, 0);
    expect([b.take(0), b.take(0), b.take(0), b.take(0)]).toEqual([true, true, true, false]);
    expect(b.take(99)).toBe(false); // 0.99 tokens
    expect(b.take(100)).toBe(true);
    expect(b.take(10_000)).toBe(true); // capped at capacity: 3 more at most
    expect([b.take(10_000), b.take(10_000), b.take(10_000)]).toEqual([true, true, false]);
  });

  it('rate 0 is unlimited', () => {
    const b = bucket(0, 1);
    for (let i = 0; i < 1000; i++) expect(b.take()).toBe(true);
  });
});

describe('API keys', () => {
  const keys = createApiKeys([
    'plain-key-0123456789',
    { key: 'admin-key-0123456789', scopes: ['admin'], name: 'ops' },
    { key: 'both-key-01234567890', scopes: ['publish', 'admin'] },
  ]);
  it('plain strings are publish-scoped; objects carry scopes and a name', () => {
    expect(keys.check('Bearer plain-key-0123456789', 'publish')).toEqual({ ok: true, name: 'key-0', id: expect.any(String) });
    expect(keys.check('Bearer plain-key-0123456789', 'admin')).toEqual({ ok: false, reason: 'forbidden' });
    expect(keys.check('Bearer admin-key-0123456789', 'admin')).toEqual({ ok: true, name: 'ops', id: expect.any(String) });
    expect(keys.check('Bearer admin-key-0123456789', 'publish')).toEqual({ ok: false, reason: 'forbidden' });
    expect(keys.check('Bearer both-key-01234567890', 'admin')).toEqual({ ok: true, name: 'key-2', id: expect.any(String) });
  });

  it('each key has its own stable id (scopes Idempotency-Keys), which is not the key and does not depend on its position', () => {
    const id = (k: ReturnType<typeof keys.check>) => (k.ok ? k.id : '');
    const plain = id(keys.check('Bearer plain-key-0123456789', 'publish'));
    const both = id(keys.check('Bearer both-key-01234567890', 'publish'));
    expect(plain).not.toBe(both);
    expect(plain).not.toContain('plain-key');
    const reordered = createApiKeys([{ key: 'both-key-01234567890', scopes: ['publish'] }, 'plain-key-0123456789']);
    expect(id(reordered.check('Bearer plain-key-0123456789', 'publish'))).toBe(plain);
  });

  it.each(['', 'Bearer', 'Bearer ', 'bearer plain-key-0123456789', 'Bearer plain-key-012345678', 'Bearer plain-key-0123456789x', 'Basic cGxhaW4='])(
    'refuses %j',
    (header) => {
      expect(keys.check(header, 'publish')).toEqual({ ok: false, reason: 'unauthorized' });
    },
  );

  it('no keys: disabled', () => {
    expect(createApiKeys([]).check('Bearer x', 'publish')).toEqual({ ok: false, reason: 'disabled' });
  });
});

describe('config', () => {
  it('defaults keep the gateway open out of the box, with safe limits', () => {
    const c = parseConfig({});
    expect(c.auth).toMatchObject({ anonymous: true, secrets: [], publicKeys: [], algorithms: ['HS256', 'RS256', 'ES256'], clockToleranceSec: 5 });
    expect(c.limits).toEqual({
      maxTopicLength: 200,
      connRatePerSec: 100,
      connBurst: 200,
      userRatePerSec: 200,
      userBurst: 400,
      maxRateViolations: 50,
      maxConnectionsPerUser: 100,
      maxConnectionsPerIp: 0,
      clientIpHeader: '',
    });
    expect(c.ws).toMatchObject({ allowedOrigins: [], requireOrigin: false });
    expect(c.namespaces).toEqual({});
  });

  it('accepts API keys as strings (env comma list) or objects with scopes', () => {
    expect(parseConfig({ api: { keys: 'a1,b2' } }).api.keys).toEqual(['a1', 'b2']);
    expect(parseConfig({ api: { keys: [{ key: 'k', scopes: ['admin'] }, 'p'] } }).api.keys).toEqual([{ key: 'k', scopes: ['admin'] }, 'p']);
    expect(() => parseConfig({ api: { keys: [{ key: 'k', scopes: ['root'] }] } })).toThrow(/api\.keys/);
  });

  it('rejects short HMAC secrets, unknown namespace fields, and bad namespace names', () => {
    expect(() => parseConfig({ auth: { secret: 'short' } })).toThrow(/auth\.secret/);
    expect(() => parseConfig({ namespaces: { chat: { subscribe: 'everyone' as never } } })).toThrow(/namespaces\.chat\.subscribe/);
    expect(() => parseConfig({ namespaces: { chat: { colour: 'red' } as never } })).toThrow(/namespaces\.chat/);
    expect(() => parseConfig({ namespaces: { 'a b': {} } })).toThrow(/namespaces\.a b/);
  });
});
