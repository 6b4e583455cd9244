/**
 * SDK against a real gateway: the token is refreshed in band before it expires (no reconnect),
 * and the session's app state is written and comes back when the session resumes.
 */
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { SymphonicClient } from '../../sdk/index.ts';
import { useGateway } from '../support/gateway.ts';
import { SECRET, hs256, inSeconds } from '../security/support/tokens.ts';

const gw = await useGateway({ auth: { anonymous: false, secret: SECRET, clockToleranceSec: 0 } });

function waitFor(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = () => {
      if (check()) return resolve();
      if (Date.now() - started > timeoutMs) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 20);
    };
    tick();
  });
}

describe('SDK auth and session state', () => {
  it('refreshes a short-lived token in band and keeps the connection past the old expiry', async () => {
    const reasons: string[] = [];
    const firstExp = inSeconds(3);
    const c = new SymphonicClient(gw.url, {
      WebSocket,
      getToken: async ({ reason }) => {
        reasons.push(reason);
        return hs256({ sub: 'alice', exp: reason === 'connect' ? firstExp : inSeconds(600) });
      },
    });
    const states: string[] = [];
    c.on('state', ({ newState }) => states.push(newState));
    c.connect();
    await c.ready(5000);
    await waitFor(() => reasons.includes('refresh'), 'the scheduled refresh');
    // Past the first token's expiry: a gateway that did not take the refresh would have closed with 4005.
    await waitFor(() => Date.now() > firstExp * 1000 + 1500, 'the first expiry to pass');
    expect(await c.ping(5000)).toBeGreaterThanOrEqual(0);
    expect(states).toEqual(['connecting', 'connected']);
    c.close();
  });

  it('stores session state and gets it back on resume', async () => {
    const token = await hs256({ sub: 'bob', exp: inSeconds(600) });
    const c = new SymphonicClient(gw.url, { WebSocket, token, reconnect: { min: 10, max: 50 } });
    c.connect();
    await c.ready(5000);
    await c.setSessionState({ step: 3, draft: 'hello' });
    const session = c.session!.id;
    const reconnected = new Promise<{ resumed: boolean }>((resolve) => c.on('connected', resolve));
    gw.dropAllSockets();
    expect((await reconnected).resumed).toBe(true);
    expect(c.session!.id).toBe(session);
    expect(c.sessionState).toEqual({ step: 3, draft: 'hello' });
    c.close();
  });
});
