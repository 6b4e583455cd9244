/**
 * Drain and readiness (gateway/drain.ts, /readyz, POST /api/drain): readiness turns false at the
 * drain's start, new upgrades are refused with 503, connected clients are closed with 4000 spread
 * over the window (not all at once), and `drained` resolves when the last one is gone. /readyz is
 * 503 while the NATS connection is down and 200 again once it is back.
 */
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { closeOffset } from '../../gateway/drain.ts';
import { startGateway } from '../../gateway/server.ts';
import { startNatsServer } from '../support/nats-server.ts';
import { connectHello } from '../support/raw-client.ts';

const ADMIN = 'drain-admin-key-0123456789';

async function readyz(httpUrl: string): Promise<{ status: number; body: { ready: boolean; reason?: string } }> {
  const r = await fetch(`${httpUrl}/readyz`);
  return { status: r.status, body: (await r.json()) as { ready: boolean; reason?: string } };
}

/** The HTTP status a WebSocket upgrade gets (101 when it is accepted). */
function upgradeStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['symphonic.v1.json']);
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('error', (e) => reject(e));
  });
}

describe('drain', () => {
  it('spreads the closes evenly over the first 80% of the window', () => {
    expect([0, 1, 2, 3].map((k) => closeOffset(k, 4, 10_000))).toEqual([0, 2000, 4000, 6000]);
    expect(closeOffset(0, 1, 10_000)).toBe(0);
  });

  it('readiness false, upgrades refused, clients closed with 4000 over the window, then drained', async () => {
    const gw = await startGateway({ host: '127.0.0.1', port: 0, log: { level: 'warn' }, api: { keys: [{ key: ADMIN, scopes: ['admin'] }] } });
    try {
      expect(await readyz(gw.httpUrl)).toMatchObject({ status: 200, body: { ready: true } });
      const clients = await Promise.all(Array.from({ length: 10 }, () => connectHello(gw.url, 'json')));
      const closes = clients.map(({ c }) => c.closed.then((e) => ({ ...e, at: Date.now() })));
      const t0 = Date.now();
      const r = await fetch(`${gw.httpUrl}/api/drain`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN}` },
        body: JSON.stringify({ windowMs: 3000 }),
      });
      expect(r.status).toBe(202);
      expect(await r.json()).toMatchObject({ draining: true, windowMs: 3000, connections: 10 });
      expect(await readyz(gw.httpUrl)).toEqual({ status: 503, body: expect.objectContaining({ ready: false, reason: 'draining' }) });
      expect(await upgradeStatus(gw.url)).toBe(503);
      const closed = await Promise.all(closes);
      await gw.drained;
      expect(closed.map((e) => e.code)).toEqual(closed.map(() => 4000));
      expect(closed[0]!.reason).toMatch(/draining/);
      // Spread out, not all at once: the last close comes about 80% of the window after the first.
      const at = closed.map((e) => e.at - t0).sort((a, b) => a - b);
      expect(at.at(-1)! - at[0]!).toBeGreaterThan(1200);
      expect(gw.connections()).toBe(0);
    } finally {
      await gw.close();
    }
  });

  it('POST /api/drain needs the admin scope', async () => {
    const gw = await startGateway({ host: '127.0.0.1', port: 0, log: { level: 'warn' }, api: { keys: ['publish-only-key-0123'] } });
    try {
      const r = await fetch(`${gw.httpUrl}/api/drain`, { method: 'POST', headers: { authorization: 'Bearer publish-only-key-0123' } });
      expect(r.status).toBe(403);
      expect(await readyz(gw.httpUrl)).toMatchObject({ status: 200 });
    } finally {
      await gw.close();
    }
  });
});

describe('readiness with NATS', () => {
  it('/readyz is 503 while the NATS connection is down and 200 once it is back', async () => {
    const nats = await startNatsServer();
    const gw = await startGateway({
      host: '127.0.0.1',
      port: 0,
      log: { level: 'silent' },
      bus: { engine: 'nats', nats: { servers: [nats.url], prefix: `rz${process.pid}` } },
    });
    try {
      expect(await readyz(gw.httpUrl)).toMatchObject({ status: 200, body: { ready: true } });
      await nats.stop('SIGKILL');
      await expect.poll(async () => (await readyz(gw.httpUrl)).status, { timeout: 15_000, interval: 100 }).toBe(503);
      expect((await readyz(gw.httpUrl)).body.reason).toMatch(/^bus /);
      await nats.restart();
      await expect.poll(async () => (await readyz(gw.httpUrl)).status, { timeout: 20_000, interval: 100 }).toBe(200);
    } finally {
      await gw.close();
      await nats.cleanup();
    }
  }, 60_000);
});
