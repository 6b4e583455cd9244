/**
 * The NATS engine's session registry and inboxes against the direct-message contract, on a real
 * single-node nats-server; each case gets its own prefix (its own bucket and inbox stream).
 */
import { afterAll, beforeAll } from 'vitest';
import { createNatsInbox } from '../../gateway/bus/nats/inbox.ts';
import { createSessionRegistry } from '../../gateway/bus/nats/sessions.ts';
import { createLogger } from '../../gateway/log.ts';
import { startNatsServer, type NatsServer } from '../support/nats-server.ts';
import { runDirectContract } from './direct.contract.ts';

let server: NatsServer;
let n = 0;

beforeAll(async () => {
  server = await startNatsServer();
});

afterAll(async () => {
  await server?.cleanup();
});

runDirectContract('nats', async (inboxSize) => {
  const nats = { servers: [server.url], prefix: `dmc${process.pid}_${++n}` };
  const log = createLogger('silent');
  const sessions = await createSessionRegistry({ nats, ttlMs: 60_000, nodeId: `dmc-${n}`, log });
  const inbox = await createNatsInbox({ nats, ttlMs: 60_000, nodeId: `dmc-${n}`, log, inboxSize });
  return { sessions, inbox, cleanup: async () => (await sessions.close(), await inbox.close()) };
});
