/**
 * A presence topic's group mesh in real Chromium: 6 pages in one room, each sending 30 cursor
 * updates a second over `peers.group(sub)`. Every page gets every other page's updates, in order
 * per sender; with the mesh on, the data goes over data channels (the gateway relays none of it),
 * with it off (`webrtc: false`) the gateway relays all of it. The bytes each way between the pages
 * and the gateway (every WebSocket frame, as the browser saw it) are printed for both.
 * Loopback only, as in peer.browser.test.ts: relay-only ICE through a coturn on 127.0.0.1.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoturn, type Coturn } from '../support/coturn.ts';
import { useGateway } from '../support/gateway.ts';
import { hs256, SECRET } from '../security/support/tokens.ts';
import { ensureBundle, launchChromium, servePage } from './support.ts';

const PAGES = 6;
const RATE = 30; // updates per second per page
const SECONDS = 2;
const TURN_SECRET = 'turn-shared-secret-for-group-0123';
const turn: Coturn = await startCoturn(TURN_SECRET);
const gw = await useGateway({
  auth: { secret: SECRET },
  namespaces: { room: { presence: 'members', subscribe: 'authenticated' } },
  ice: { turn: { urls: [turn.url], secret: TURN_SECRET } },
});

let browser: Browser;
let context: BrowserContext;
let pageServer: Awaited<ReturnType<typeof servePage>>;
beforeAll(async () => {
  await ensureBundle();
  browser = await launchChromium();
  context = await browser.newContext();
  pageServer = await servePage(HARNESS, '/group.html');
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await pageServer?.close();
  await turn.stop();
});

const HARNESS = `<!doctype html><meta charset="utf-8"><title>group test</title>
<script src="${gw.httpUrl}/sdk/symphonic.iife.js"></script>
<script src="${gw.httpUrl}/sdk/symphonic-peer.iife.js"></script>
<script>
  const p = new URLSearchParams(location.search);
  window.got = {};
  const client = new Symphonic.SymphonicClient('${gw.url}', { token: p.get('token'), reconnect: { min: 50, max: 500 } });
  client.connect();
  const room = client.subscribe('room.' + p.get('room'));
  const peers = new SymphonicPeer.SymphonicPeers(client, { iceTransportPolicy: 'relay', p2pTimeoutMs: 30000 });
  window.group = peers.group(room, { webrtc: p.get('mesh') !== 'off' });
  group.on('message', ({ from, data }) => (window.got[from] ??= []).push(data.i));
  window.linkLog = [];
  group.on('link', (e) => window.linkLog.push(e.session.slice(0, 4) + ':' + e.state + (e.state === 'closed' ? '(' + e.reason + ')' : '')));
  peers.on('error', (e) => window.linkLog.push('error:' + e.message));
  window.me = () => client.session && client.session.id;
  window.members = () => room.presence.members().length;
  window.linked = (state) => Object.values(group.states()).filter((s) => s === state).length;
  window.burst = (rate, seconds) => new Promise((resolve) => {
    let i = 0;
    const t = setInterval(() => {
      group.send({ i, x: Math.round(Math.random() * 1920), y: Math.round(Math.random() * 1080) });
      if (++i >= rate * seconds) { clearInterval(t); resolve(i); }
    }, 1000 / rate);
  });
</script>`;

interface Traffic {
  toGateway: number;
  fromGateway: number;
}

async function openRoom(room: string, mesh: boolean): Promise<{ pages: Page[]; traffic: Traffic }> {
  const traffic: Traffic = { toGateway: 0, fromGateway: 0 };
  const pages: Page[] = [];
  for (let i = 0; i < PAGES; i++) {
    const page = await context.newPage();
    // Every WebSocket frame between this page and the gateway, counted as the browser saw it.
    page.on('websocket', (ws) => {
      ws.on('framesent', (f) => (traffic.toGateway += typeof f.payload === 'string' ? Buffer.byteLength(f.payload) : f.payload.length));
      ws.on('framereceived', (f) => (traffic.fromGateway += typeof f.payload === 'string' ? Buffer.byteLength(f.payload) : f.payload.length));
    });
    const params = new URLSearchParams({ token: await hs256({ sub: `user-${i}` }), room, mesh: mesh ? 'on' : 'off' });
    await page.goto(`${pageServer.url}?${params}`);
    pages.push(page);
  }
  const expected = mesh ? 'p2p' : 'relayed';
  try {
    for (const page of pages) {
      await page.waitForFunction((n) => (window as unknown as { members(): number }).members() === n, PAGES, { timeout: 20_000 });
      await page.waitForFunction(([n, st]) => (window as unknown as { linked(s: string): number }).linked(st as string) === n, [PAGES - 1, expected] as const, {
        timeout: 45_000,
      });
    }
  } catch (e) {
    const states = await Promise.all(
      pages.map((p) =>
        p.evaluate(() => [
          (window as unknown as { me(): string }).me().slice(0, 4),
          Object.keys((window as unknown as { group: { states(): object } }).group.states()).length,
          (window as unknown as { linkLog: string[] }).linkLog,
        ]),
      ),
    );
    throw new Error(`links did not all reach ${expected}: ${JSON.stringify(states)} (${(e as Error).message.split('\n')[0]})`);
  }
  return { pages, traffic };
}

/** Every page sends RATE x SECONDS updates at once; resolves once every page has all the others'. */
async function exchange(pages: Page[], traffic: Traffic): Promise<Traffic> {
  const before = { ...traffic };
  const n = RATE * SECONDS;
  await Promise.all(
    pages.map((page) => page.evaluate(([r, s]) => (window as unknown as { burst(r: number, s: number): Promise<number> }).burst(r!, s!), [RATE, SECONDS])),
  );
  for (const page of pages) {
    await page.waitForFunction(
      ([others, count]) => {
        const got = (window as unknown as { got: Record<string, number[]> }).got;
        return Object.keys(got).length === others && Object.values(got).every((l) => l.length >= count);
      },
      [PAGES - 1, n] as const,
      { timeout: 30_000 },
    );
    const got = await page.evaluate(() => (window as unknown as { got: Record<string, number[]> }).got);
    for (const list of Object.values(got)) expect(list).toEqual(Array.from({ length: n }, (_, i) => i));
  }
  return { toGateway: traffic.toGateway - before.toGateway, fromGateway: traffic.fromGateway - before.fromGateway };
}

async function relayedData(): Promise<number> {
  const text = await (await fetch(`${gw.httpUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('symphonic_peer_signals_total{') && l.includes('op="data"'));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('group mesh', () => {
  let meshOn: Traffic;
  it(`${PAGES} pages: every page gets every other page's updates over the mesh; the gateway relays none`, async () => {
    const { pages, traffic } = await openRoom('g1', true);
    const before = await relayedData();
    meshOn = await exchange(pages, traffic);
    expect(await relayedData()).toBe(before);
    for (const p of pages) await p.close();
  }, 120_000);

  it('the same with the mesh off: all of it relayed by the gateway; the bytes of both printed', async () => {
    const { pages, traffic } = await openRoom('g2', false);
    const before = await relayedData();
    const meshOff = await exchange(pages, traffic);
    // Each update goes to each other page: PAGES x (PAGES - 1) x RATE x SECONDS relayed messages (acks travel inside relayed signals too).
    expect((await relayedData()) - before).toBeGreaterThanOrEqual(PAGES * (PAGES - 1) * RATE * SECONDS);
    const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;
    console.log(
      `group of ${PAGES} pages, ${RATE} updates/s each for ${SECONDS} s: gateway carried, pages -> gateway / gateway -> pages: ` +
        `mesh on ${kb(meshOn.toGateway)} / ${kb(meshOn.fromGateway)}; mesh off ${kb(meshOff.toGateway)} / ${kb(meshOff.fromGateway)}`,
    );
    expect(meshOn.toGateway + meshOn.fromGateway).toBeLessThan((meshOff.toGateway + meshOff.fromGateway) / 10);
    for (const p of pages) await p.close();
  }, 120_000);
});
