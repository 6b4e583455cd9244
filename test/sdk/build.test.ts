/** The bundles: they build, stay under budget, carry no zod/msgpackr (browser) or zod (server), and expose the API. */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEnvelope, epochFromCreated } from '../../protocol/envelope.ts';
import { buildSdk, buildTypes, CORE_BUDGET, type BuiltFile } from '../../scripts/build-sdk.mjs';
import { FakeNats } from './helpers/fake-nats.ts';
import { withoutGlobalWebSocket } from './helpers/no-websocket.ts';

let dir: string;
let files: BuiltFile[];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'symphonic-sdk-'));
  ({ files } = await buildSdk({ outdir: dir, quiet: true }));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const file = (name: string) => files.find((f) => f.name === name)!;

describe('SDK bundles', () => {
  it('the core stays under its min+gzip budget', () => {
    for (const name of ['symphonic.mjs', 'symphonic.iife.js']) {
      expect(file(name).gzip).toBeLessThan(CORE_BUDGET);
      expect(file(name).min).toBeGreaterThan(5_000);
    }
  });

  it('the IIFE defines the global Symphonic in a bare browser-like context', async () => {
    const code = await readFile(file('symphonic.iife.js').path, 'utf8');
    const ctx: Record<string, unknown> = { TextEncoder, TextDecoder, setTimeout, clearTimeout, console };
    ctx.window = ctx;
    runInNewContext(code, ctx);
    const S = ctx.Symphonic as Record<string, unknown>;
    for (const name of [
      'SymphonicClient',
      'Subscription',
      'SymphonicError',
      'TimeoutError',
      'ConnectionClosedError',
      'ValidationError',
      'ErrorCode',
      'CloseCode',
      'applyMergePatch',
      'nextConnectionState',
      'nextSubscriptionStatus',
      'backoffDelay',
    ]) {
      expect(S[name], name).toBeDefined();
    }
  });

  it('the ESM bundle imports in Node and its client refuses to run without a WebSocket class', async () => {
    const mod = await import(pathToFileURL(file('symphonic.mjs').path).href);
    const c = new mod.SymphonicClient('ws://127.0.0.1:1/ws', { networkEvents: false });
    const errors: { code: number }[] = [];
    c.on('error', (e: { code: number }) => errors.push(e));
    withoutGlobalWebSocket(() => c.connect());
    expect(errors[0]?.code).toBe(mod.ClientErrorCode.NoTransport);
  });

  it('the browser bundles carry no zod, msgpackr or Node-only protocol modules (the bus envelope is server-only)', () => {
    for (const name of ['symphonic.mjs', 'symphonic.iife.js']) {
      const inputs = file(name).inputs;
      expect(
        inputs.some((p) => p.includes('node_modules')),
        name,
      ).toBe(false);
      expect(
        inputs.filter((p) => /protocol\/(envelope|codec|frames|validate)\.ts$/.test(p)),
        name,
      ).toEqual([]);
    }
    expect(file('symphonic-server.mjs').inputs.some((p) => p.endsWith('protocol/envelope.ts'))).toBe(true);
    expect(file('symphonic-server.mjs').inputs.some((p) => p.includes('node_modules/zod/'))).toBe(false);
  });

  it('the server bundle is self-contained: it imports from anywhere and publishes the envelope', async () => {
    const mod = await import(pathToFileURL(file('symphonic-server.mjs').path).href);
    for (const name of ['SymphonicPublisher', 'HttpPublishTransport', 'NatsPublishTransport', 'FallbackTransport', 'TransportUnavailableError']) {
      expect(typeof mod[name], name).toBe('function');
    }
    const fake = new FakeNats();
    const pub = new mod.SymphonicPublisher({
      transport: new mod.NatsPublishTransport({ servers: 'nats://fake', prefix: 'p', connect: async () => fake.connection }),
    });
    fake.stream = 'p_topics';
    await expect(pub.set('a.b', { x: [1, 'two'] })).resolves.toEqual({ seq: 1, epoch: epochFromCreated(fake.created) });
    expect(fake.published[0]!.subject).toBe('p.in.a.b');
    expect(decodeEnvelope(fake.published[0]!.data, 0)).toMatchObject({ kind: 'set', data: { x: [1, 'two'] } });
    await pub.close();
  });
});

describe('SDK type declarations', () => {
  it('emits declarations for both entry points that a strict consumer can use', async () => {
    buildTypes();
    const index = await readFile(join(process.cwd(), 'dist/types/sdk/index.d.ts'), 'utf8');
    expect(index).toMatch(/export \{ SymphonicClient \}/);
    const server = await readFile(join(process.cwd(), 'dist/types/sdk/server/index.d.ts'), 'utf8');
    expect(server).toMatch(/SymphonicPublisher/);
  }, 60_000);
});
