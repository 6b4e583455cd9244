/**
 * TURN with credentials from the gateway, end to end: a real coturn (`use-auth-secret`) on
 * loopback, the gateway configured with the same secret, an authenticated SDK client asking for
 * ICE servers, and two RTCPeerConnections in real Chromium forced to relay-only ICE. The data
 * channel must come up through the TURN relay; a tampered credential must get no relay at all
 * (coturn checks the HMAC itself: the gateway never hands out a standing password).
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { SymphonicClient } from '../../sdk/index.ts';
import { startCoturn, type Coturn } from '../support/coturn.ts';
import { useGateway } from '../support/gateway.ts';
import { hs256, SECRET } from '../security/support/tokens.ts';
import { launchChromium, servePage } from './support.ts';

const TURN_SECRET = 'turn-shared-secret-0123456789';
const turn: Coturn = await startCoturn(TURN_SECRET);
const gw = await useGateway({
  auth: { secret: SECRET },
  ice: { servers: [{ urls: `stun:127.0.0.1:${turn.port}` }], turn: { urls: [turn.url], secret: TURN_SECRET, ttlSec: 600 } },
});

let browser: Browser;
let page: Page;
let pageServer: Awaited<ReturnType<typeof servePage>>;
beforeAll(async () => {
  browser = await launchChromium();
  // A loopback origin (see sdk.browser.test.ts): the page needs nothing but RTCPeerConnection.
  pageServer = await servePage('<!doctype html><title>turn</title>');
  page = await browser.newPage();
  await page.goto(pageServer.url);
});
afterAll(async () => {
  await browser?.close();
  await pageServer?.close();
  await turn.stop();
});

async function iceFromGateway(): Promise<{ servers: Array<{ urls: string[]; username?: string; credential?: string }>; expires?: number }> {
  const client = new SymphonicClient(gw.url, { WebSocket, token: await hs256({ sub: 'ann' }) });
  try {
    client.connect();
    await client.ready();
    const ice = await client.iceServers();
    return { servers: ice.servers.map((s) => ({ ...s, urls: [...s.urls] })), ...(ice.expires === undefined ? {} : { expires: ice.expires }) };
  } finally {
    client.close();
  }
}

interface RelayResult {
  opened: boolean;
  relayCandidates: number;
  received: string[];
  pair?: { local: string; remote: string };
}

/** In the page: two peer connections, relay-only, signalled in place; sends `count` messages A -> B. */
function relayChannel(servers: unknown, count: number, waitMs: number): Promise<RelayResult> {
  return page.evaluate(
    async ({ servers, count, waitMs }) => {
      const config = { iceServers: servers as RTCIceServer[], iceTransportPolicy: 'relay' as RTCIceTransportPolicy };
      const a = new RTCPeerConnection(config);
      const b = new RTCPeerConnection(config);
      let relayCandidates = 0;
      const gathered = (pc: RTCPeerConnection, other: RTCPeerConnection) =>
        new Promise<void>((resolve) => {
          pc.onicecandidate = (e) => {
            if (!e.candidate) return resolve();
            if (e.candidate.type === 'relay') relayCandidates++;
            void other.addIceCandidate(e.candidate);
          };
        });
      const received: string[] = [];
      const allIn = new Promise<void>((resolve) => {
        b.ondatachannel = (e) => {
          e.channel.onmessage = (m) => {
            received.push(String(m.data));
            if (received.length === count) resolve();
          };
        };
      });
      const channel = a.createDataChannel('data', { ordered: true });
      const opened = new Promise<boolean>((resolve) => {
        channel.onopen = () => resolve(true);
        setTimeout(() => resolve(false), waitMs);
      });
      const doneA = gathered(a, b);
      const doneB = gathered(b, a);
      await a.setLocalDescription(await a.createOffer());
      await b.setRemoteDescription(a.localDescription!);
      await b.setLocalDescription(await b.createAnswer());
      await a.setRemoteDescription(b.localDescription!);
      await Promise.all([doneA, doneB]);
      const result: RelayResult = { opened: await opened, relayCandidates, received };
      if (result.opened) {
        for (let i = 0; i < count; i++) channel.send(`m${i}`);
        await Promise.race([allIn, new Promise((r) => setTimeout(r, waitMs))]);
        const byId = new Map<string, { type: string; [k: string]: unknown }>();
        (await a.getStats()).forEach((s) => byId.set(s.id, s));
        // The pair carrying the data: the transport's selected pair (Chromium names it there).
        let pairId: string | undefined;
        byId.forEach((s) => {
          if (s.type === 'transport' && typeof s.selectedCandidatePairId === 'string') pairId = s.selectedCandidatePairId;
        });
        const pair = pairId === undefined ? undefined : byId.get(pairId);
        if (pair) {
          const local = byId.get(pair.localCandidateId as string) as { candidateType?: string } | undefined;
          const remote = byId.get(pair.remoteCandidateId as string) as { candidateType?: string } | undefined;
          result.pair = { local: String(local?.candidateType), remote: String(remote?.candidateType) };
        }
      }
      a.close();
      b.close();
      return result;
    },
    { servers, count, waitMs },
  );
}

describe('TURN through the gateway', () => {
  it('hands an authenticated client TURN credentials that coturn accepts: a relay-only data channel comes up and carries every message in order', async () => {
    const ice = await iceFromGateway();
    const turnEntry = ice.servers.find((s) => s.urls[0]!.startsWith('turn:'));
    expect(turnEntry?.username).toMatch(/^\d+:ann$/);
    expect(ice.expires).toBeGreaterThan(Date.now() / 1000);
    const r = await relayChannel(ice.servers, 200, 15_000);
    expect(r.relayCandidates).toBeGreaterThan(0);
    expect(r.opened).toBe(true);
    expect(r.received).toEqual(Array.from({ length: 200 }, (_, i) => `m${i}`));
    expect(r.pair).toEqual({ local: 'relay', remote: 'relay' });
  }, 60_000);

  it('a tampered credential gets no relay: coturn checks the HMAC, not the gateway', async () => {
    const ice = await iceFromGateway();
    const forged = ice.servers.map((s) => (s.credential ? { ...s, credential: `${s.credential.slice(0, -4)}AAA=` } : s));
    const r = await relayChannel(forged, 1, 3_000);
    expect(r.relayCandidates).toBe(0);
    expect(r.opened).toBe(false);
  }, 60_000);
});
