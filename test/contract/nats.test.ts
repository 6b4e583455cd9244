/**
 * The NATS/JetStream engine against the shared Bus contract, on a real single-node nats-server.
 * Every bus gets its own prefix (its own stream and KV bucket): deployments sharing one server.
 */
import { afterAll, beforeAll } from 'vitest';
import { createNatsBus } from '../../gateway/bus/nats/index.ts';
import { startNatsServer, type NatsServer } from '../support/nats-server.ts';
import { runBusContract } from './bus.contract.ts';

let server: NatsServer;
let n = 0;

beforeAll(async () => {
  server = await startNatsServer();
});

afterAll(async () => {
  await server?.cleanup();
});

runBusContract('nats', async (options) => {
  const bus = createNatsBus({
    servers: server.url,
    prefix: `contract${process.pid}_${++n}`,
    history: options?.history ?? {},
    ...(options?.historyFor ? { historyFor: options.historyFor } : {}),
    name: `contract-${n}`,
  });
  return { bus, cleanup: () => bus.close() };
});
