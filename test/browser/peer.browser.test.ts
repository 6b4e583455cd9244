/**
 * Peer channels in real Chromium through a real gateway and a real coturn. Pages find each other
 * by presence and open a channel; the data goes over a WebRTC data channel (the gateway's relay
 * counter does not move), over the gateway's relay when WebRTC cannot come up, and survives the
 * data channel dying mid-stream with nothing lost or repeated.
 *
 * Loopback only: Chromium gathers host candidates on the machine's other interfaces and never on
 * 127.0.0.1 while such interfaces exist (--allow-loopback-in-peer-connection only helps on a
 * machine with loopback alone), so these pages use relay-only ICE through a coturn on 127.0.0.1:
 * still a WebRTC data channel between the pages, which the gateway does not carry.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoturn, type Coturn } from '../support/coturn.ts';
import { useGateway } from '../support/gateway.ts';
import { hs256, SECRET } from '../security/support/tokens.ts';
import { ensureBundle, launchChromium, servePage } from './support.ts';

const TURN_SECRET = 'turn-shared-secret-for-peers-0123';
const turn: Coturn = await startCoturn(TURN_SECRET);
const gw = await useGateway({
  auth: { secret: SECRET },
  namespaces: { room: { presence: 'members', subscribe: 'authenticated' } },
  ice: { turn: { urls: [turn.url], secret: TURN_SECRET } },
  api: { keys: [{ key: 'peer-admin-key-0123456789', scopes: ['admin', 'publish'] }] },
});

let browser: Browser;
let context: BrowserContext;
let pageServer: Awaited<ReturnType<typeof servePage>>;
let pageUrl: string;
beforeAll(async () => {
  await ensureBundle();
  browser = await launchChromium();
  context = await browser.newContext();
  pageServer = await servePage(HARNESS, '/peer.html');
  pageUrl = pageServer.url;
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await pageServer?.close();
  await turn.stop();
});

/** A page: a client in room `room`, the peer add-on, and hooks for the test. */
const HARNESS = `<!doctype html><meta charset="utf-8"><title>peer test</title>
<script src="${gw.httpUrl}/sdk/symphonic.iife.js"></script>
<script src="${gw.httpUrl}/sdk/symphonic-peer.iife.js"></script>
<script>
  const p = new URLSearchParams(location.search);
  window.log = { states: [], received: [], errors: [] };
  window.pcs = [];
  // Every peer connection the add-on makes, so a test can kill one mid-stream.
  const Native = window.RTCPeerConnection;
  class Tracked extends Native { constructor(c) { super(c); window.pcs.push(this); } }
  const client = new Symphonic.SymphonicClient('${gw.url}', { token: p.get('token'), reconnect: { min: 50, max: 500 } });
  client.connect();
  window.room = client.subscribe('room.' + p.get('room'));
  const options = { RTCPeerConnection: Tracked, iceTransportPolicy: 'relay', p2pTimeoutMs: Number(p.get('p2p') || 10000) };
  if (p.get('ice') === 'none') options.iceServers = [];
  window.peers = new SymphonicPeer.SymphonicPeers(client, options);
  function track(ch) {
    window.ch = ch;
    ch.on('state', (e) => window.log.states.push(e.newState));
    ch.on('message', (m) => window.log.received.push(m));
    ch.on('error', (e) => window.log.errors.push(String(e && e.message)));
  }
  peers.on('request', (req) => (p.get('refuse') ? req.reject('not now') : track(req.accept())));
  window.me = () => client.session && client.session.id;
  // Another member of the room, found by presence.
  window.other = () => { const me = window.me(); const m = window.room.presence.members().find((x) => x.session !== me); return m && m.session; };
  window.openTo = (session) => track(peers.open(session, { label: 'test' }));
  window.sendRange = (from, to) => { for (let i = from; i < to; i++) window.ch.send(i); };
</script>`;

interface Log {
  states: string[];
  received: number[];
  errors: string[];
}

async function openPage(user: string, room: string, query: Record<string, string> = {}): Promise<Page> {
  const page = await context.newPage();
  const params = new URLSearchParams({ token: await hs256({ sub: user }), room, ...query });
  await page.goto(`${pageUrl}?${params}`);
  await page.waitForFunction(() => (window as unknown as { me(): string | undefined }).me() !== undefined, null, { timeout: 15_000 });
  return page;
}

/** Page `a` finds page `b` by presence and opens a channel to it; both reach `state`. */
async function connectPair(a: Page, b: Page, state: 'p2p' | 'relayed'): Promise<void> {
  const bSession = await b.evaluate(() => (window as unknown as { me(): string }).me());
  await a.waitForFunction((s) => (window as unknown as { other(): string | undefined }).other() === s, bSession, { timeout: 15_000 });
  await a.evaluate((s) => (window as unknown as { openTo(s: string): void }).openTo(s), bSession);
  for (const page of [a, b]) {
    await page.waitForFunction((st) => (window as unknown as { log: Log }).log.states.includes(st), state, { timeout: 30_000 });
  }
}

const logOf = (page: Page) => page.evaluate(() => (window as unknown as { log: Log }).log);
const sendRange = (page: Page, from: number, to: number) =>
  page.evaluate(([f, t]) => (window as unknown as { sendRange(f: number, t: number): void }).sendRange(f!, t!), [from, to]);
const receivedAll = (page: Page, n: number) =>
  page.waitForFunction((count) => (window as unknown as { log: Log }).log.received.length >= count, n, { timeout: 30_000 });

/** Peer messages the gateway relayed, by the /metrics counter. */
async function relayed(): Promise<number> {
  const text = await (await fetch(`${gw.httpUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('symphonic_peer_signals_total{') && l.includes('op="data"'));
  return line ? Number(line.split(' ').pop()) : 0;
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

describe('peer channels', () => {
  it('two pages found by presence talk over a data channel; the gateway relays nothing', async () => {
    const a = await openPage('ann', 'p1');
    const b = await openPage('bob', 'p1');
    await connectPair(a, b, 'p2p');
    const before = await relayed();
    await sendRange(a, 0, 500);
    await receivedAll(b, 500);
    expect((await logOf(b)).received).toEqual(range(0, 500));
    expect(await relayed()).toBe(before);
    // The path really is the data channel: the selected pair goes through the TURN relay, not the gateway.
    const types = await a.evaluate(async () => {
      const pc = (window as unknown as { pcs: RTCPeerConnection[] }).pcs[0]!;
      const byId = new Map<string, Record<string, unknown>>();
      (await pc.getStats()).forEach((s: Record<string, unknown>) => byId.set(s.id as string, s));
      const transport = [...byId.values()].find((s) => s.type === 'transport');
      const pair = byId.get(transport?.selectedCandidatePairId as string);
      return [byId.get(pair?.localCandidateId as string)?.candidateType, byId.get(pair?.remoteCandidateId as string)?.candidateType];
    });
    expect(types).toEqual(['relay', 'relay']);
    await a.close();
    await b.close();
  }, 90_000);

  it('with WebRTC made to fail the channel says relayed and every message arrives, in order', async () => {
    const a = await openPage('ann', 'p2', { ice: 'none', p2p: '1500' });
    const b = await openPage('bob', 'p2', { ice: 'none', p2p: '1500' });
    await sendRange(a, 0, 0); // nothing yet: the channel does not exist
    await connectPair(a, b, 'relayed');
    const before = await relayed();
    await sendRange(a, 0, 200);
    await sendRange(b, 1000, 1100);
    await receivedAll(b, 200);
    await receivedAll(a, 100);
    expect((await logOf(b)).received).toEqual(range(0, 200));
    expect((await logOf(a)).received).toEqual(range(1000, 1100));
    expect(await relayed()).toBeGreaterThanOrEqual(before + 300);
    await a.close();
    await b.close();
  }, 90_000);

  it('a data channel killed mid-stream: the channel moves to the relay and nothing is lost or repeated', async () => {
    const a = await openPage('ann', 'p3');
    const b = await openPage('bob', 'p3');
    await connectPair(a, b, 'p2p');
    await sendRange(a, 0, 300);
    // Kill the peer connection under the channel while messages are still in flight.
    await a.evaluate(() => {
      (window as unknown as { sendRange(f: number, t: number): void }).sendRange(300, 600);
      (window as unknown as { pcs: RTCPeerConnection[] }).pcs[0]!.close();
      (window as unknown as { sendRange(f: number, t: number): void }).sendRange(600, 1000);
    });
    await receivedAll(b, 1000);
    const got = (await logOf(b)).received;
    expect(got).toEqual(range(0, 1000));
    expect((await logOf(a)).states).toContain('relayed');
    await a.close();
    await b.close();
  }, 90_000);

  it('a refused request closes the opener side with the reason', async () => {
    const a = await openPage('ann', 'p4');
    const b = await openPage('bob', 'p4', { refuse: '1' });
    const bSession = await b.evaluate(() => (window as unknown as { me(): string }).me());
    await a.waitForFunction((s) => (window as unknown as { other(): string | undefined }).other() === s, bSession, { timeout: 15_000 });
    const reason = await a.evaluate(
      (s) =>
        new Promise<string>((resolve) => {
          const w = window as unknown as { peers: { open(s: string): { on(e: string, f: (x: { newState: string; reason: string }) => void): void } } };
          w.peers.open(s).on('state', (e) => e.newState === 'closed' && resolve(e.reason));
        }),
      bSession,
    );
    expect(reason).toBe('not now');
    await a.close();
    await b.close();
  }, 60_000);
});
