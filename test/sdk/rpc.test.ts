/** `client.rpc` against the fake server: the frame it sends, the answer, ServiceError, and its timeouts. */
import { describe, expect, it, vi } from 'vitest';
import { ErrorCode } from '../../protocol/codes.ts';
import { ServiceError, SymphonicError, TimeoutError } from '../../sdk/index.ts';
import { connected, useFakeServer } from './helpers/client-harness.ts';

useFakeServer();

describe('client.rpc', () => {
  it('sends method, data and timeout, and resolves with the answer', async () => {
    const { c, s } = connected();
    const p = c.rpc('orders.create', { sku: 'a' }, { timeout: 2500 });
    const f = s.lastOf('rpc');
    expect(f).toMatchObject({ t: 'rpc', method: 'orders.create', data: { sku: 'a' }, timeout: 2500 });
    s.deliver({ t: 'rpc', id: f.id, data: { order: 'o-1' } });
    await expect(p).resolves.toEqual({ order: 'o-1' });
  });

  it('sends null for no data and the client timeout by default', () => {
    const { c, s } = connected({ timeout: 4000 });
    void c.rpc('a.b').catch(() => {});
    expect(s.lastOf('rpc')).toMatchObject({ method: 'a.b', data: null, timeout: 4000 });
  });

  it('rejects a service error as ServiceError with its data, others as SymphonicError with the code', async () => {
    const { c, s } = connected();
    const p1 = c.rpc('pay.card', {});
    s.deliver({ t: 'error', id: s.lastOf('rpc').id, code: ErrorCode.ServiceError, message: 'card declined', data: { retry: false } });
    const e1 = await p1.catch((e) => e);
    expect(e1).toBeInstanceOf(ServiceError);
    expect(e1).toMatchObject({ code: 2012, message: 'card declined', data: { retry: false } });
    const p2 = c.rpc('pay.card', {});
    s.deliver({ t: 'error', id: s.lastOf('rpc').id, code: ErrorCode.ServiceTimeout, message: 'late' });
    const e2 = await p2.catch((e) => e);
    expect(e2).toBeInstanceOf(SymphonicError);
    expect(e2).toMatchObject({ code: ErrorCode.ServiceTimeout, retryable: true });
  });

  it("waits a second longer than its timeout (the gateway's 5002 comes first), then gives up itself", async () => {
    const { c } = connected();
    const caught = c.rpc('slow.one', null, { timeout: 500 }).catch((e) => e);
    await vi.advanceTimersByTimeAsync(1499);
    let settled = false;
    void caught.then(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await caught).toBeInstanceOf(TimeoutError);
  });
});
