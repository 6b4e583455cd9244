/**
 * The token through the client: getToken on connect and after expiry, in-band refresh, a failing
 * hook.
 */
import { describe, expect, it, vi } from 'vitest';
import { CloseCode } from '../../protocol/codes.ts';
import { SymphonicError } from '../../sdk/index.ts';
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
    const c = make({ getToken: async () => { if (fail) throw new Error('auth server down'); return 'ok'; }, reconnect: { min: 10, max: 10 } });
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
