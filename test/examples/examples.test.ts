/**
 * The examples still work: the live-state watcher (examples/live-state/) sees every patch the
 * HTTP publisher (examples/http-publisher/) sends, against a gateway in this process; the shell
 * scripts at least parse. (tsconfig.json includes examples/, so `npm test` type-checks them.)
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { COLOURS, paintDiagonal } from '../../examples/http-publisher/publish.ts';
import { watch } from '../../examples/live-state/watch.ts';
import { callOnce } from '../../examples/rpc-http-service/call.ts';
import { startHttpService } from '../../examples/rpc-http-service/service.ts';
import { Changes } from '../support/changes.ts';
import { useGateway } from '../support/gateway.ts';

const KEY = 'example-key';
const gw = await useGateway({ api: { keys: [KEY] }, demo: false });

describe('examples', () => {
  const changes = new Changes();
  const watched: string[] = [];
  const w = watch(gw.url, 'demo.board', (line) => {
    watched.push(line);
    changes.bump();
  });
  afterAll(() => w.stop());

  it('the watcher prints the board as the HTTP publisher paints it', async () => {
    await changes.until(() => watched.some((l) => l.startsWith('demo.board: subscribed')), 10_000, 'the watcher subscribed');
    const published: string[] = [];
    await paintDiagonal(gw.httpUrl, KEY, 'demo.board', (line) => published.push(line));
    expect(published).toHaveLength(COLOURS.length);
    const painted = JSON.stringify({ cells: Object.fromEntries(COLOURS.map((c, i) => [`${i},${i}`, c])) });
    await changes.until(
      () => watched.includes(`demo.board @ ${COLOURS.length}: ${painted}`),
      10_000,
      () => `the painted board, saw:\n${watched.join('\n')}`,
    );
  });

  it('the shell scripts parse', () => {
    for (const script of ['http-publisher/publish.sh', 'two-gateways/run.sh']) {
      const r = spawnSync('bash', ['-n', fileURLToPath(new URL(`../../examples/${script}`, import.meta.url))], { encoding: 'utf8' });
      expect(r.stderr, script).toBe('');
      expect(r.status, script).toBe(0);
    }
  });
});

describe('examples: RPC to the HTTP service', () => {
  it('call.ts gets a quote from service.ts through the gateway, and a service error with its data', async () => {
    const { server, url } = await startHttpService(0);
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const rpcGw = await useGateway({ demo: false, rpc: { methods: { 'quotes.*': { url, allow: 'anyone' } } } });
    expect(await callOnce(rpcGw.url, 'quotes.price', { sku: 'sku-1', qty: 2 })).toBe(
      'quotes.price -> {"sku":"sku-1","qty":2,"total":19.8,"quotedFor":"anonymous"}',
    );
    expect(await callOnce(rpcGw.url, 'quotes.price', { sku: 'nope' })).toBe('quotes.price failed: 2012 unknown sku {"sku":"nope"}');
    expect(await callOnce(rpcGw.url, 'other.thing', null)).toMatch(/^other\.thing failed: 2011 /);
  });
});
