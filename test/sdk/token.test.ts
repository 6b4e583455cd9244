/**
 * The token (sdk/token.ts): getToken on connect and after expiry, in-band refresh, a failing hook;
 * through the client against the fake server, and the keeper's refresh schedule on its own.
 */
import { describe, expect, it, vi } from 'vitest';
import { CloseCode, ErrorCode } from '../../protocol/codes.ts';
import type { SymphonicError } from '../../sdk/index.ts';
import { TokenKeeper, type GetToken } from '../../sdk/token.ts';
import { make, server, useFakeServer } from './helpers/client-harness.ts';

useFakeServer();

describe('auth', () => {
  it('getToken is called on connect and again after TokenExpired; the token is reused otherwise', async () => {
    let n = 0;
    const reasons: string[] = [];
    const c = make({ getToken: async ({ reason }) => (reasons.push(reason), `t${++n}`), reconnect: { min: 10, max: 10 } });
    c.connect();
    await vi.advanceTimersByTimeAsync(0);
    server.accept();
    expect(server.last.sent[0]).toMatchObject({ token: 't1' });
    server.last.serverClose(1006);
    await vi.advanceTimersByTimeAsync(10);
    server.accept();
    expect(server.last.sent[0]).toMatchObject({ token: 't1' });
    server.last.serverClose(CloseCode.TokenExpired, 'expired');
    await vi.advanceTimersByTimeAsync(10);
    server.accept();
    expect(server.last.sent[0]).toMatchObject({ token: 't2' });
    expect(reasons).toEqual(['connect', 'expired']);
    // Refresh is in band: the new token goes to the gateway in a `refresh` frame.
    const refreshed = c.refreshToken();
    await vi.advanceTimersByTimeAsync(0);
    const req = server.last.lastOf('refresh');
    expect(req).toMatchObject({ token: 't3' });
    server.last.deliver({ t: 'refreshed', id: req.id });
    await refreshed;
    expect(reasons).toEqual(['connect', 'expired', 'refresh']);
    c.reconnect();
    await vi.advanceTimersByTimeAsync(0);
    server.last.open();
    expect(server.last.sent[0]).toMatchObject({ token: 't3' });
  });

  it('a failing getToken is reported and retried with backoff', async () => {
    let fail = true;
    const c = make({
      getToken: async () => {
        if (fail) throw new Error('auth server down');
        return 'ok';
      },
      reconnect: { min: 10, max: 10 },
    });
    const errors: SymphonicError[] = [];
    c.on('error', (e) => errors.push(e));
    c.connect();
    await vi.advanceTimersByTimeAsync(0);
    expect(errors[0]?.message).toMatch(/auth server down/);
    expect(server.sockets.length).toBe(0);
    fail = false;
    await vi.advanceTimersByTimeAsync(10);
    server.accept();
    expect(server.last.sent[0]).toMatchObject({ token: 'ok' });
  });
});

describe('TokenKeeper', () => {
  const inSec = (s: number) => Math.floor(Date.now() / 1000) + s;
  function keeper(getToken: GetToken | undefined, connected = true) {
    const sent: string[] = [];
    const errors: SymphonicError[] = [];
    /** The reply's exp, seconds from when it is sent. */
    let expIn: number | undefined;
    const k = new TokenKeeper('fixed', getToken, {
      sendInBand: (token) => (connected ? (sent.push(token), Promise.resolve(expIn === undefined ? {} : { exp: inSec(expIn) })) : null),
      error: (e) => errors.push(e),
    });
    return { k, sent, errors, replyExpIn: (s: number) => (expIn = s) };
  }

  it('a fixed token is never stale; with getToken it is until fetched, and again once expired', async () => {
    const fixed = keeper(undefined).k;
    fixed.expired();
    expect([fixed.stale, fixed.current]).toEqual([false, 'fixed']);
    const reasons: string[] = [];
    const { k } = keeper(({ reason }) => (reasons.push(reason), `t${reasons.length}`));
    expect(k.stale).toBe(true);
    await expect(k.fetch()).resolves.toBe('t1');
    expect([k.stale, k.current]).toEqual([false, 't1']);
    k.expired();
    await k.fetch();
    expect(reasons).toEqual(['connect', 'expired']);
  });

  it("refreshes at the earlier of halfway to exp and 30 s before it, then again from the reply's exp", async () => {
    vi.setSystemTime(1_700_000_000_000);
    const { k, sent, replyExpIn } = keeper(() => 'fresh');
    replyExpIn(40);
    k.schedule(inSec(600));
    await vi.advanceTimersByTimeAsync(299_999); // halfway: 300 s
    expect(sent).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(sent).toEqual(['fresh']);
    await vi.advanceTimersByTimeAsync(9_999); // 40 s left: 30 s before it
    expect(sent).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(sent).toHaveLength(2);
    k.cancel();
  });

  it('not connected: the new token is kept for the next hello, nothing is sent', async () => {
    const { k, sent } = keeper(() => 'fresh', false);
    await k.refresh();
    expect([sent, k.current, k.stale]).toEqual([[], 'fresh', false]);
  });

  it('cancel() stops a scheduled refresh; a failing one is reported as a SymphonicError', async () => {
    const calls: string[] = [];
    const { k, errors } = keeper(({ reason }) => {
      calls.push(reason);
      throw new Error('auth server down');
    });
    k.schedule(inSec(100));
    k.cancel();
    await vi.advanceTimersByTimeAsync(100_000);
    expect(calls).toEqual([]);
    k.schedule(inSec(100));
    await vi.advanceTimersByTimeAsync(70_000);
    expect(calls).toEqual(['refresh']);
    expect(errors.map((e) => [e.code, e.message])).toEqual([[ErrorCode.Unauthorized, 'token refresh failed: auth server down']]);
  });
});
