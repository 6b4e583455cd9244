/** Builds the Bus engine named in the config. */
import type { GatewayConfig } from '../config.ts';
import type { Bus } from './bus.ts';
import { createMemoryBus } from './memory.ts';

export async function createBus(config: GatewayConfig): Promise<Bus> {
  const { bus } = config;
  if (bus.engine === 'memory') return createMemoryBus({ history: bus.history, maxTopics: bus.maxTopics });
  throw new Error(`bus engine "${bus.engine}" is not available in this build`);
}
