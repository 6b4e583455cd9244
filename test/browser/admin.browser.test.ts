/**
 * The admin page (GET /admin) in real Chromium against a real gateway: a wrong key and a key
 * without the admin scope get clear messages; signing in shows the gateway; its connection count
 * follows real WebSocket clients up and down; the charts draw; the key survives a reload (this
 * tab's sessionStorage); the drain button drains the gateway (/readyz turns 503). A screenshot of
 * the dashboard is kept in test-results/admin.png.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, poll } from '../support/admin.ts';
import { useGateway } from '../support/gateway.ts';
import { connectHello, isReply } from '../support/raw-client.ts';
import { launchChromium } from './support.ts';

const ADMIN = 'admin-ui-key-0123456789';
const PUBLISHER = 'admin-ui-publisher-0123456789';
const NODE = 'admin-ui-gw';
const SCREENSHOT = join(fileURLToPath(new URL('../..', import.meta.url)), 'test-results', 'admin.png');

const gw = await useGateway({
  nodeId: NODE,
  demo: false,
  api: {
    keys: [
      { key: ADMIN, scopes: ['admin', 'publish'], name: 'ops' },
      { key: PUBLISHER, scopes: ['publish'] },
    ],
  },
  cluster: { heartbeatMs: 250 },
  drain: { windowMs: 2000 },
});

let browser: Browser;
let page: Page;
const pageErrors: string[] = [];
beforeAll(async () => {
  browser = await launchChromium();
  page = await (await browser.newContext({ viewport: { width: 1360, height: 1000 } })).newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  // A CSP violation (an inline style or script the policy does not allow) shows as a console
  // error; the 401 and 403 answers the wrong keys get are expected.
  page.on('console', (m) => m.type() === 'error' && !/Failed to load resource: .* (401|403)/.test(m.text()) && pageErrors.push(m.text()));
});
afterAll(async () => {
  await browser?.close();
});

const cell = (field: string) => `#gateways tr[data-node="${NODE}"] td.${field}`;
async function cellText(field: string, text: string, timeout = 10_000): Promise<void> {
  await page.waitForFunction(([sel, want]) => document.querySelector(sel!)?.textContent === want, [cell(field), text] as const, { timeout });
}
async function signIn(key: string): Promise<void> {
  await page.fill('#key', key);
  await page.click('#signin-form button[type=submit]');
}

describe('admin page in Chromium', () => {
  it('refuses a wrong key and a key without the admin scope with clear messages', async () => {
    await page.goto(`${gw.httpUrl}/admin`);
    expect(await page.isVisible('#signin')).toBe(true);
    expect(await page.isVisible('#dash')).toBe(false);
    await signIn('not-a-key-0123456789');
    await page.waitForFunction(() => document.getElementById('signin-error')!.textContent!.length > 0, undefined, { timeout: 5000 });
    expect(await page.textContent('#signin-error')).toBe('Wrong key: this gateway does not accept it.');
    await signIn(PUBLISHER);
    await page.waitForFunction(() => document.getElementById('signin-error')!.textContent!.includes('scope'), undefined, { timeout: 5000 });
    expect(await page.textContent('#signin-error')).toBe('This key is valid but lacks the admin scope.');
    expect(await page.isVisible('#dash')).toBe(false);
    expect(await page.evaluate(() => sessionStorage.getItem('symphonic.admin.key'))).toBeNull();
  });

  it('signs in and shows the gateway; its connection count follows real clients; charts draw; the key survives a reload', async () => {
    await signIn(ADMIN);
    await page.waitForSelector(cell('connections'), { timeout: 5000 });
    expect(await page.isVisible('#signin')).toBe(false);
    await cellText('connections', '0');
    expect(await page.textContent(cell('node'))).toContain(NODE);
    expect(await page.textContent(cell('state'))).toBe('serving');
    expect(await page.textContent('#serving')).toContain(NODE);

    const clients = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const { c } = await connectHello(gw.url, 'json');
        c.send({ t: 'sub', id: 1, topic: 'ui.live' });
        await c.next(isReply(1));
        return c;
      }),
    );
    await cellText('connections', '5');
    expect(await page.textContent('#sum-connections')).toBe('5');

    // Traffic for the rates and the charts: publish until the page shows deliveries going out.
    const admin = adminClient(gw.httpUrl, ADMIN);
    await poll(
      'an out rate on the page',
      async () => {
        for (let i = 0; i < 10; i++) await admin.post('/api/publish', { topic: 'ui.live', data: { i } });
        // The page groups thousands ("1,200"): read the figure without the separators.
        return page.evaluate((sel) => Number(document.querySelector(sel)?.textContent?.replaceAll(',', '')) > 0, cell('out'));
      },
      15_000,
      20,
    );
    await page.waitForFunction(() => document.querySelectorAll('#chart-conn polyline, #chart-rate polyline').length >= 3, undefined, { timeout: 5000 });
    // A topic lookup, for the screenshot too.
    await page.fill('#topic', 'ui.live');
    await page.click('#topic-form button');
    await page.waitForFunction(() => document.getElementById('topic-result')!.textContent!.includes('subscribers'), undefined, { timeout: 5000 });
    expect(await page.textContent('#topic-result')).toContain('ui.live');
    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    for (const c of clients) c.close();
    await cellText('connections', '0');

    await page.reload();
    await cellText('connections', '0');
    expect(await page.isVisible('#signin')).toBe(false);
  });

  it('drains the gateway serving the page (its /readyz turns 503)', async () => {
    expect((await fetch(`${gw.httpUrl}/readyz`)).status).toBe(200);
    const { c } = await connectHello(gw.url, 'json');
    await cellText('connections', '1');
    page.once('dialog', (d) => void d.accept());
    await page.click('#drain');
    await page.waitForFunction(() => document.getElementById('drain-result')!.textContent!.startsWith('Draining'), undefined, { timeout: 5000 });
    expect(await page.textContent('#drain-result')).toContain(NODE);
    const ready = await fetch(`${gw.httpUrl}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ ready: false, reason: 'draining' });
    await cellText('state', 'draining');
    expect((await c.closed).code).toBe(4000);
    await gw.drained;
    await cellText('connections', '0');
    expect(pageErrors).toEqual([]);
  });
});
