/** How a long-lived NATS client connects: who it is, and staying connected. */
import { readFileSync } from 'node:fs';
import { credsAuthenticator, type ConnectionOptions } from 'nats';

export type NatsCredentials =
  | { readonly user: string; readonly pass: string }
  | { readonly token: string }
  /** Path of a NATS `.creds` file (JWT + nkey seed), e.g. from `nsc`. */
  | { readonly credsFile: string }
  /** The contents of a `.creds` file. */
  | { readonly creds: string | Uint8Array };

export function authOptions(c: NatsCredentials | undefined): Partial<ConnectionOptions> {
  if (!c) return {};
  if ('token' in c) return { token: c.token };
  if ('user' in c) return { user: c.user, pass: c.pass };
  const creds = 'credsFile' in c ? new Uint8Array(readFileSync(c.credsFile)) : typeof c.creds === 'string' ? new TextEncoder().encode(c.creds) : c.creds;
  return { authenticator: credsAuthenticator(creds) };
}

/**
 * Reconnect forever once connected; fail the first connect fast (the caller decides when to try
 * again); notice a silent dead link within ~15 s instead of the client default of minutes. No
 * async stack traces: nats.js would capture a stack (`new Error()`) twice per request, for every
 * JetStream publish and KV write (5% of the publish path's profile, ~1.5 KB of garbage per KV
 * write); our errors are logged by message and name the request.
 */
export const STAY_CONNECTED = {
  reconnect: true,
  maxReconnectAttempts: -1,
  waitOnFirstConnect: false,
  pingInterval: 5_000,
  maxPingOut: 3,
  noAsyncTraces: true,
} as const satisfies Partial<ConnectionOptions>;
