/** Builds the Bus engine and the session store named in the config. */
import type { GatewayConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import { createSessionRegistry } from '../session/registry.ts';
import { createSessionStore, type SessionStore } from '../session/sessions.ts';
import type { Bus, BusStatus } from './bus.ts';
import { historyFor, namespaceAges, widestHistory } from '../policy/namespaces.ts';
import { createMemoryBus } from './memory.ts';
import { createNatsBus, type NatsBusOptions, type NatsCredentials } from './nats/index.ts';

export async function createBus(config: GatewayConfig, log: Logger, onStatus?: (s: BusStatus) => void): Promise<Bus> {
  const { bus } = config;
  if (bus.engine === 'memory') {
    return createMemoryBus({ history: bus.history, maxTopics: bus.maxTopics, historyFor: (topic) => historyFor(topic, config) });
  }
  return createNatsBus({ ...natsOptionsOf(config, log), ...(onStatus ? { onStatus } : {}) });
}

/** Sessions live where the bus does: in this process, or in the NATS KV registry of the cluster. */
export async function createSessions(config: GatewayConfig, log: Logger): Promise<SessionStore> {
  if (config.bus.engine === 'memory') return createSessionStore(config.session.ttlMs);
  return createSessionRegistry({ nats: natsOptionsOf(config, log), ttlMs: config.session.ttlMs, nodeId: config.nodeId, log });
}

function natsOptionsOf(config: GatewayConfig, log: Logger): NatsBusOptions {
  const { nats } = config.bus;
  return {
    servers: nats.servers,
    credentials: credentialsOf(nats),
    prefix: nats.prefix,
    replicas: nats.replicas,
    // One stream for every namespace: it keeps the widest window, reads apply each topic's own.
    history: widestHistory(config),
    historyFor: (topic) => historyFor(topic, config),
    namespaces: namespaceAges(config),
    name: config.nodeId,
    logger: log,
    keeper: { enabled: nats.keeper },
    readTimeoutMs: nats.readTimeoutMs,
    publishTimeoutMs: nats.publishTimeoutMs,
  };
}

function credentialsOf(n: GatewayConfig['bus']['nats']): NatsCredentials | undefined {
  if (n.credsFile) return { credsFile: n.credsFile };
  if (n.token) return { token: n.token };
  if (n.user !== undefined) return { user: n.user, pass: n.pass ?? '' };
  return undefined;
}
