/** Builds the engine named in the config: its bus and its session store (bus.ts `Engine`). */
import type { GatewayConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import { historyFor, namespaceAges, widestHistory } from '../policy/namespaces.ts';
import type { BusStatus, Engine } from './bus.ts';
import { createMemoryEngine } from './memory/index.ts';
import { createNatsEngine, type NatsBusOptions, type NatsCredentials } from './nats/index.ts';

export async function createEngine(config: GatewayConfig, log: Logger, onStatus?: (s: BusStatus) => void): Promise<Engine> {
  const { bus, session } = config;
  if (bus.engine === 'memory') {
    return createMemoryEngine(
      { history: bus.history, maxTopics: bus.maxTopics, historyFor: (topic) => historyFor(topic, config) },
      { ttlMs: session.ttlMs, inboxSize: config.direct.inboxSize },
    );
  }
  return createNatsEngine(
    { ...natsOptionsOf(config, log), ...(onStatus ? { onStatus } : {}) },
    {
      ttlMs: session.ttlMs,
      nodeId: config.nodeId,
      log,
      inboxSize: config.direct.inboxSize,
    },
  );
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
