/**
 * The browser bundle in real Chromium against the real gateway: pages subscribe and render live
 * state; every socket is cut server-side while a backend publishes a numbered sequence, and each
 * page ends with exactly that sequence; a second page's publish appears in the first; the demo
 * page shares its board and chat between two tabs.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SymphonicPublisher } from '../../sdk/server/index.ts';
import { useGateway } from '../support/gateway.ts';
import { ensureBundle, launchChromium, servePage } from './support.ts';

const KEY = 'browser-test-key-0123456789';
const gw = await useGateway({ api: { keys: [KEY] }, ws: { heartbeatMs: 2000 } });
const publisher = new SymphonicPublisher({ url: gw.httpUrl, apiKey: KEY });

let browser: Browser;
let context: BrowserContext;
let pageServer: Awaited<ReturnType<typeof servePage>>;
let pageUrl: string;
beforeAll(async () => {
  await ensureBundle();
  browser = await launchChromium();
  context = await browser.newContext();
  // The page loads the bundle the gateway serves and connects to the gateway.
  pageServer = await servePage(HARNESS, '/sdk-test.html');
  pageUrl = pageServer.url;
});
afterAll(async () => {
  await browser?.close();
  await pageServer?.close();
});

const HARNESS = `<!doctype html><meta charset="utf-8"><title>sdk test</title>
<ol id="seq"></ol><pre id="status"></pre>
<script src="${gw.httpUrl}/sdk/symphonic.iife.js"></script>
<script>
  const params = new URLSearchParams(location.search);
  window.received = [];
  window.infos = [];
  const client = new Symphonic.SymphonicClient('${gw.url}', {
    encoding: params.get('enc') || 'msgpack', reconnect: { min: 50, max: 500 },
  });
  const sub = client.subscribe(params.get('topic'), {
    onMessage(m) {
      window.received.push(m.data);
      const li = document.createElement('li');
      li.textContent = String(m.data);
      document.getElementById('seq').appendChild(li);
    },
    onSubscribed(i) { window.infos.push({ wasRecovering: i.wasRecovering, recovered: i.recovered }); },
    onStatus(e) { document.getElementById('status').textContent = e.newState; },
  });
  window.client = client;
  window.sub = sub;
  client.connect();
</script>`;

declare global {
  interface Window {
    received: unknown[];
    infos: { wasRecovering: boolean; recovered: boolean }[];
    client: { state: string; publish(topic: string, data: unknown): Promise<{ seq: number }> };
    sub: { status: string };
  }
}

async function harness(topic: string, enc: 'msgpack' | 'json' = 'msgpack'): Promise<Page> {
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${pageUrl}?topic=${topic}&enc=${enc}`);
  await page.waitForFunction(() => window.sub?.status === 'subscribed', undefined, { timeout: 10_000 });
  expect(errors).toEqual([]);
  return page;
}

describe('SDK in Chromium', () => {
  it('two pages (msgpack and json) end with exactly the published sequence across server-side socket drops', async () => {
    const N = 300;
    const pages = [await harness('browser.seq'), await harness('browser.seq', 'json')];
    let drops = 0;
    for (let i = 1; i <= N; i++) {
      await publisher.event('browser.seq', i);
      if (i === 100 || i === 200) {
        // Each drop must hit a live socket: wait until every page resubscribed after the last one
        // (a second drop while a page is still reconnecting would cut nothing of it).
        await Promise.all(pages.map((p) => p.waitForFunction((n) => window.infos.length > n, drops, { timeout: 10_000 })));
        gw.dropAllSockets();
        drops++;
      }
    }
    const expected = Array.from({ length: N }, (_, i) => i + 1);
    for (const page of pages) {
      await page.waitForFunction((n) => window.received.length >= n && window.sub.status === 'subscribed', N, { timeout: 15_000 });
      expect(await page.evaluate(() => window.received)).toEqual(expected);
      // What the page rendered is the same sequence.
      const rendered = await page.$$eval('#seq li', (lis) => lis.map((li) => Number(li.textContent)));
      expect(rendered).toEqual(expected);
      const infos = await page.evaluate(() => window.infos);
      expect(infos[0]).toEqual({ wasRecovering: false, recovered: false });
      expect(infos.slice(1).length).toBeGreaterThanOrEqual(2);
      for (const info of infos.slice(1)) expect(info).toEqual({ wasRecovering: true, recovered: true });
    }
    await Promise.all(pages.map((p) => p.close()));
  });

  it("a second page's publish appears in the first", async () => {
    const first = await harness('browser.two');
    const second = await harness('browser.two', 'json');
    const ack = await second.evaluate(() => window.client.publish('browser.two', 'hello from page 2'));
    expect(ack.seq).toBeGreaterThan(0);
    await first.waitForFunction(() => window.received.includes('hello from page 2'), undefined, { timeout: 5000 });
    expect(await first.evaluate(() => window.received)).toEqual(['hello from page 2']);
    await Promise.all([first.close(), second.close()]);
  });
});

describe('demo page', () => {
  it('shares the board and the chat between two tabs, across a server-side drop', async () => {
    const open = async () => {
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${gw.httpUrl}/`);
      await page.waitForSelector('#conn[data-state="connected"]', { timeout: 10_000 });
      await page.waitForSelector('#board-sub[data-state="subscribed"]', { timeout: 10_000 });
      await page.waitForSelector('#chat-sub[data-state="subscribed"]', { timeout: 10_000 });
      return { page, errors };
    };
    const a = await open();
    const b = await open();

    await a.page.click('.swatch[aria-label="#ef4444"]');
    await a.page.click('.cell[data-key="3,4"]');
    await b.page.waitForFunction(
      () => (document.querySelector('.cell[data-key="3,4"]') as HTMLElement).style.backgroundColor === 'rgb(239, 68, 68)',
      undefined,
      { timeout: 5000 },
    );

    await b.page.fill('#text', 'hi from tab b');
    await b.page.press('#text', 'Enter');
    await a.page.waitForFunction(() => document.getElementById('chat')!.textContent!.includes('hi from tab b'), undefined, { timeout: 5000 });

    gw.dropAllSockets();
    for (const p of [a.page, b.page])
      await p.waitForFunction(() => document.getElementById('log')!.textContent!.includes('resumed, nothing lost'), undefined, { timeout: 10_000 });
    await b.page.click('.swatch[aria-label="#3b82f6"]');
    await b.page.click('.cell[data-key="0,0"]');
    await a.page.waitForFunction(
      () => (document.querySelector('.cell[data-key="0,0"]') as HTMLElement).style.backgroundColor === 'rgb(59, 130, 246)',
      undefined,
      { timeout: 5000 },
    );
    // Clicking your own colour again erases (a `null` in the merge patch).
    await b.page.click('.cell[data-key="0,0"]');
    await a.page.waitForFunction(() => (document.querySelector('.cell[data-key="0,0"]') as HTMLElement).style.backgroundColor === '', undefined, {
      timeout: 5000,
    });

    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
    await Promise.all([a.page.close(), b.page.close()]);
  });
});
