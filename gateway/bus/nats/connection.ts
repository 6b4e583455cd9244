/**
 * The engine's NATS connection: authentication, reconnect forever with exponential backoff and
 * full jitter (so a fleet of gateways does not stampede a restarted server), fast dead-link
 * detection, and the connection's status events turned into three callbacks.
 */
import { readFileSync } from 'node:fs';
import { connect as natsConnect, credsAuthenticator, type ConnectionOptions, type NatsConnection } from 'nats';
import type { ResolvedNatsOptions } from './options.ts';

export interface ConnectionEvents {
  onDisconnect(): void;
  onReconnect(): void;
  onError(error: Error): void;
}

/** Full jitter: uniform in [0, min(cap, base * 2^attempt)]. Pure, so it is unit-tested. */
export function backoffDelay(attempt: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

export function connectionOptions(o: ResolvedNatsOptions, reconnectDelay: () => number): ConnectionOptions {
  const auth: Partial<ConnectionOptions> = {};
  const c = o.credentials;
  if (c && 'token' in c) auth.token = c.token;
  else if (c && 'user' in c) Object.assign(auth, { user: c.user, pass: c.pass });
  else if (c && 'credsFile' in c) auth.authenticator = credsAuthenticator(new Uint8Array(readFileSync(c.credsFile)));
  return {
    servers: o.servers,
    name: o.name,
    ...auth,
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectDelayHandler: reconnectDelay,
    // Fail the first connect fast: start() retries it within its own deadline.
    waitOnFirstConnect: false,
    timeout: 5_000,
    // A silent dead link is noticed within ~15 s instead of the client default of minutes.
    pingInterval: 5_000,
    maxPingOut: 3,
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
