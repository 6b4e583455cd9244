/** What a client gets for its peer connections: the configured servers, TURN with fresh credentials. */
import type { GatewayConfig } from '../config.ts';
import { turnCredentials, type IceServer } from './credentials.ts';

export interface IceAnswer {
  readonly servers: readonly IceServer[];
  /** When the TURN credentials expire (seconds since the epoch); absent when none were issued. */
  readonly expires?: number;
}

/**
 * `user` null: an anonymous connection, which gets TURN only when `ice.turn.clients` is
 * "anyone" (a relay costs the operator bandwidth); `session` names it in the credentials then.
 */
export function iceServersFor(config: GatewayConfig, user: string | null, session: string, nowMs = Date.now()): IceAnswer {
  const servers: IceServer[] = config.ice.servers.map((s) => ({ urls: s.urls }));
  const turn = config.ice.turn;
  if (!turn.secret || turn.urls.length === 0 || (user === null && turn.clients !== 'anyone')) return { servers };
  const c = turnCredentials(turn.secret, user ?? session, turn.ttlSec, nowMs);
  servers.push({ urls: turn.urls, username: c.username, credential: c.credential });
  return { servers, expires: c.expires };
}
