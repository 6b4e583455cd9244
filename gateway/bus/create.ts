/** Builds the Bus engine named in the config. */
import type { GatewayConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Bus, BusStatus } from './bus.ts';
import { createMemoryBus } from './memory.ts';
import { createNatsBus, type NatsCredentials } from './nats/index.ts';

export async function createBus(config: GatewayConfig, log: Logger, onStatus?: (s: BusStatus) => void): Promise<Bus> {
  const { bus } = config;
  if (bus.engine === 'memory') return createMemoryBus({ history: bus.history, maxTopics: bus.maxTopics });
  const { nats } = bus;
  return createNatsBus({
    servers: nats.servers,
    credentials: credentialsOf(nats),
    prefix: nats.prefix,
    replicas: nats.replicas,
    history: bus.history,
    name: config.nodeId,
    logger: log,
    ...(onStatus ? { onStatus } : {}),
  });
}

function credentialsOf(n: GatewayConfig['bus']['nats']): NatsCredentials | undefined {
  if (n.credsFile) return { credsFile: n.credsFile };
  if (n.token) return { token: n.token };
  if (n.user !== undefined) return { user: n.user, pass: n.pass ?? '' };
  return undefined;
}
