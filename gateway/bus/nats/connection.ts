/**
 * The engine's NATS connection: authentication, reconnect forever with exponential backoff and
 * full jitter (so a fleet of gateways does not stampede a restarted server), fast dead-link
 * detection, and the connection's status events turned into three callbacks.
 */
import { connect as natsConnect, type ConnectionOptions, type NatsConnection } from 'nats';
import { backoffDelay } from '../../../nats-kit/backoff.ts';
import { authOptions, STAY_CONNECTED } from '../../../nats-kit/connect.ts';
import type { ResolvedNatsOptions } from './options.ts';

export interface ConnectionEvents {
  onDisconnect(): void;
  onReconnect(): void;
  onError(error: Error): void;
}

export function connectionOptions(o: ResolvedNatsOptions, reconnectDelay: () => number): ConnectionOptions {
  return {
    servers: o.servers,
    name: o.name,
    ...authOptions(o.credentials),
    ...STAY_CONNECTED,
    reconnectDelayHandler: reconnectDelay,
    // One attempt over every server: start() retries it within its own deadline.
    timeout: 5_000,
    // nats.js otherwise captures a stack (`new Error()`) with every request, for its timeout's
    // trace: ~1.5 KB of garbage per KV write, several per connecting session. Our errors are
    // logged by message; askUntil names the request.
    noAsyncTraces: true,
  };
}

export interface BusConnection {
  readonly nc: NatsConnection;
  close(): Promise<void>;
}

/**
 * Connects (one attempt over every server) and follows the connection's status. The reconnect
 * delay grows 100 ms -> 5 s with full jitter and resets once a reconnect succeeds.
 */
export async function openConnection(
  o: ResolvedNatsOptions,
  events: ConnectionEvents,
  connect: (opts: ConnectionOptions) => Promise<NatsConnection> = natsConnect,
): Promise<BusConnection> {
  let attempt = 0;
  const nc = await connect(connectionOptions(o, () => backoffDelay(attempt++, 100, 5_000)));
  let closing = false;
  void (async () => {
    for await (const s of nc.status()) {
      if (closing) break;
      if (s.type === 'disconnect') events.onDisconnect();
      else if (s.type === 'reconnect') {
        attempt = 0;
        events.onReconnect();
      } else if (s.type === 'error') events.onError(new Error(String(s.data)));
    }
  })().catch((e: unknown) => events.onError(e as Error));
  return {
    nc,
    async close() {
      closing = true;
      if (!nc.isClosed()) await nc.close();
    },
  };
}
