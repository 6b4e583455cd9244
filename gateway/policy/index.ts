/**
 * The policy pipeline's parts, built once from config (server.ts) and shared by the WebSocket
 * transport, the frame handlers and the HTTP API through the gateway context:
 *   origin.ts (upgrade) -> limits.ts (per-IP, per-user counts) -> auth.ts (hello, refresh,
 *   subscription tokens) -> rate-limit.ts (every frame) -> permissions.ts over namespaces.ts
 *   (sub, history, pub) -> payload.ts + schema.ts (pub data) -> bus.
 */
import { ConfigError, type GatewayConfig } from '../config.ts';
import { createApiKeys, type ApiKeys } from './api-keys.ts';
import { createAuthenticator, type Authenticator } from './auth.ts';
import { ConnectionLimits } from './limits.ts';
import { createNamespaces, type Namespaces } from './namespaces.ts';
import { createOriginPolicy, type OriginPolicy } from './origin.ts';
import { bucket, type Bucket } from './rate-limit.ts';

export interface Policy<C = unknown> {
  readonly auth: Authenticator;
  readonly namespaces: Namespaces;
  readonly origins: OriginPolicy;
  readonly apiKeys: ApiKeys;
  readonly limits: ConnectionLimits<C>;
  /** A fresh per-connection frame-rate bucket. */
  connectionBucket(): Bucket;
  /** A fresh per-connection budget of rate-limit violations (refills one per second). */
  violationBudget(): Bucket;
}

export async function createPolicy<C>(config: GatewayConfig): Promise<Policy<C>> {
  const { auth, limits } = config;
  const authenticator = await createAuthenticator({
    anonymous: auth.anonymous,
    secrets: [...auth.secrets, ...(auth.secret ? [auth.secret] : [])],
    publicKeys: auth.publicKeys,
    jwksFile: auth.jwksFile,
    algorithms: auth.algorithms,
    issuer: auth.issuer,
    audience: auth.audience,
    clockToleranceSec: auth.clockToleranceSec,
    forwardClaims: config.rpc.claims,
  }).catch((e: Error) => {
    throw new ConfigError(`invalid config:\n  ${e.message}`);
  });
  if (!auth.anonymous && !authenticator.enabled) {
    throw new ConfigError('auth.anonymous is false but no key is configured (auth.secret(s), auth.publicKeys or auth.jwksFile): nobody could connect');
  }
  return {
    auth: authenticator,
    namespaces: createNamespaces(config),
    origins: originPolicyOf(config),
    apiKeys: createApiKeys(config.api.keys),
    limits: new ConnectionLimits<C>(limits),
    connectionBucket: () => bucket(limits.connRatePerSec, limits.connBurst),
    violationBudget: () => bucket(1, limits.maxRateViolations),
  };
}

/** The Origin allow-list; an entry that is not an origin stops the start, naming it. */
function originPolicyOf(config: GatewayConfig): OriginPolicy {
  try {
    return createOriginPolicy(config.ws.allowedOrigins, config.ws.requireOrigin);
  } catch (e) {
    throw new ConfigError(`invalid config:\n  ws.allowedOrigins: ${(e as Error).message}`);
  }
}

export { historyFor, widestHistory } from './namespaces.ts';
