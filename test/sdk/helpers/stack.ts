/**
 * Real gateways for the SDK integration tests, on either Bus engine: `memory` (each gateway its own
 * embedded bus) or `nats` (one real nats-server per stack; gateways given the same prefix share
 * one bus, different prefixes are separate deployments on that server). Everything started is
 * stopped by `close()`: gateways first, then the server.
 */
import type { GatewayConfigInput } from '../../../gateway/config.ts';
import { startGateway, type RunningGateway } from '../../../gateway/server.ts';
import { startNatsServer, type NatsServer } from '../../support/nats-server.ts';

export type Engine = 'memory' | 'nats';
export const ENGINES: readonly Engine[] = ['memory', 'nats'];

export interface Stack {
  readonly engine: Engine;
  /** The nats-server's URL (nats engine only). */
  readonly natsUrl: string | undefined;
  /**
   * Starts a gateway on a random loopback port. With the nats engine, `prefix` names its
   * deployment (default 'main'): gateways with the same prefix share one bus.
   */
  gateway(config?: GatewayConfigInput, prefix?: string): Promise<RunningGateway>;
  close(): Promise<void>;
}

export async function startStack(engine: Engine): Promise<Stack> {
  const nats: NatsServer | undefined = engine === 'nats' ? await startNatsServer() : undefined;
  const gateways: RunningGateway[] = [];
  let n = 0;
  return {
    engine,
    natsUrl: nats?.url,
    async gateway(config = {}, prefix = 'main') {
      const bus = { ...config.bus, engine, ...(nats ? { nats: { servers: [nats.url], prefix, ...config.bus?.nats } } : {}) };
      const gw = await startGateway({ host: '127.0.0.1', port: 0, log: { level: 'warn' }, nodeId: `${engine}-gw${++n}`, ...config, bus });
      gateways.push(gw);
      return gw;
    },
    async close() {
      await Promise.allSettled(gateways.map((g) => g.close()));
      await nats?.cleanup();
    },
  };
}
