/**
 * ICE servers for clients' peer connections (STUN/TURN), with short-lived TURN credentials.
 *
 * TURN credentials follow the "TURN REST API" scheme that coturn implements with
 * `use-auth-secret` / `static-auth-secret`: username `<expiry unix seconds>:<name>`, password
 * base64(HMAC-SHA1(secret, username)). The TURN server checks the HMAC and the expiry itself, so
 * the gateway and coturn share one secret and no password ever reaches a browser for long.
 */
import { createHmac } from 'node:crypto';

export interface IceServer {
  readonly urls: readonly string[];
  readonly username?: string;
  readonly credential?: string;
}

export interface TurnCredentials {
  readonly username: string;
  readonly credential: string;
  /** Seconds since the Unix epoch. */
  readonly expires: number;
}

/** `name` is who the credentials are for (shown in coturn's logs): the user, else the session. */
export function turnCredentials(secret: string, name: string, ttlSec: number, nowMs = Date.now()): TurnCredentials {
  const expires = Math.floor(nowMs / 1000) + ttlSec;
  // A colon separates the expiry from the name in coturn's parser: keep the name free of them.
  const username = `${expires}:${name.replace(/:/g, '_')}`;
  const credential = createHmac('sha1', secret).update(username).digest('base64');
  return { username, credential, expires };
}
