/**
 * A hello the gateway is still answering when `ws.handshakeTimeoutMs` passes (its session store,
 * NATS KV, slow as in a resume storm) gets its welcome: the handshake timeout closes only sockets
 * that sent no hello. Real nats-server; the registry's KV writes (publishes to `$KV.<bucket>.<key>`) are held back on
 * the way out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'nats';
import { CloseCode } from '../../protocol/index.ts';
import { createNatsEngine } from '../../gateway/bus/nats/index.ts';
import { createLogger } from '../../gateway/log.ts';
import { startGateway, type RunningGateway } from '../../gateway/server.ts';
import { startNatsServer, type NatsServer } from '../support/nats-server.ts';
import { connectRaw } from '../support/raw-client.ts';

const HANDSHAKE_TIMEOUT_MS = 300;
/** How long session writes are held back after the hello: well past the handshake timeout and the 1 s maintenance tick. */
const WRITE_DELAY_MS = 2500;
/** Session writes wait until then before they are sent (0: not held). */
let holdUntil = 0;
const PREFIX = `slowreg${process.pid}`;

let nats: NatsServer;
let gw: RunningGateway;

beforeAll(async () => {
  nats = await startNatsServer();
  const slowWrites = async (opts: Parameters<typeof connect>[0]) => {
    const c = await connect(opts);
    const publish = c.publish.bind(c);
    c.publish = (subject, data, o) => {
      const wait = holdUntil - Date.now();
      if (!subject.startsWith(`$KV.${PREFIX}_sessions.`) || wait <= 0) return publish(subject, data, o);
      setTimeout(() => {
        if (!c.isClosed()) publish(subject, data, o);
      }, wait);
    };
    return c;
  };
  const log = createLogger('silent');
  const engine = await createNatsEngine(
    { servers: [nats.url], prefix: PREFIX, name: 'slow-a', logger: log, connect: slowWrites, readTimeoutMs: 10_000, publishTimeoutMs: 10_000 },
    { ttlMs: 60_000, nodeId: 'slow-a', log },
  );
  gw = await startGateway(
    {
      host: '127.0.0.1',
      port: 0,
      nodeId: 'slow-a',
      log: { level: 'warn' },
      ws: { handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS },
      bus: { engine: 'nats', nats: { servers: [nats.url], prefix: PREFIX } },
      session: { ttlMs: 60_000 },
    },
    { engine },
  );
});

async function recordOf(id: string) {
  const nc = await connect({ servers: nats.url });
  try {
    const kv = await nc.jetstream().views.kv(`${PREFIX}_sessions`);
    return { entry: await kv.get(id) };
  } finally {
    await nc.close();
  }
}

afterAll(async () => {
  await gw?.close();
  await nats?.cleanup();
});

describe('handshake timeout with a slow session store', () => {
  it('answers a hello with welcome however long the session store takes, past the handshake timeout', async () => {
    const c = await connectRaw(gw.url);
    const opened = Date.now();
    holdUntil = opened + WRITE_DELAY_MS;
    c.send({ t: 'hello', v: 1 });
    const outcome = await Promise.race([c.next((f) => f.t === 'welcome', 15_000).then((f) => f.t), c.closed.then((x) => `closed ${x.code} ${x.reason}`)]);
    expect(outcome).toBe('welcome');
    // It did wait for the store: the timeout had long passed when the welcome came.
    expect(Date.now() - opened).toBeGreaterThanOrEqual(WRITE_DELAY_MS - 100);
    // ...and the session was written (a resume on another gateway would find it).
    const { entry } = await recordOf((c.frames.find((f) => f.t === 'welcome') as { session: string }).session);
    expect(entry?.operation).toBe('PUT');
    c.close();
  });

  it('still closes a socket that sends no hello (4002)', async () => {
    const c = await connectRaw(gw.url);
    expect((await c.closed).code).toBe(CloseCode.HandshakeTimeout);
  });
});
