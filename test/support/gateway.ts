/** Starts a real gateway on a random loopback port for one test file. */
import { afterAll } from 'vitest';
import type { GatewayConfigInput } from '../../gateway/config.ts';
import { startGateway, type RunningGateway } from '../../gateway/server.ts';

export async function useGateway(config: GatewayConfigInput = {}): Promise<RunningGateway> {
  const gw = await startGateway({ host: '127.0.0.1', port: 0, log: { level: 'warn' }, ...config });
  afterAll(() => gw.close());
  return gw;
}
