/** What a connection holds beyond its socket, given back once when the socket is gone. */
import { CloseCode } from '../../protocol/index.ts';
import type { GatewayContext } from '../context.ts';
import type { Connection } from './connection.ts';

/** Frees the connection's interest, RPC calls in flight, expiry timer, per-user limits and session. */
export function releaseConnection(ctx: GatewayContext, conn: Connection): void {
  ctx.presence.socketGone(conn); // before `subs` is cleared: its presence topics wait for a resume
  for (const [topic, rec] of conn.subs) {
    if (rec.state !== 'authorizing') ctx.interest.remove(topic);
    if (rec.alias !== undefined) ctx.aliases.release(topic);
  }
  conn.subs.clear();
  conn.pending = null;
  conn.direct?.close();
  conn.direct = null;
  for (const call of conn.rpcCalls ?? []) call.abort();
  conn.rpcCalls = null;
  if (conn.expiryTimer) clearTimeout(conn.expiryTimer);
  conn.expiryTimer = null;
  if (conn.identity.user !== null && conn.userRate) ctx.policy.limits.removeUser(conn.identity.user, conn);
  if (conn.session) {
    if (conn.slow)
      conn.session.previousClose = {
        code: CloseCode.SlowConsumer,
        reason: 'slow consumer: the outbound buffer passed its limit; resume from your last position',
      };
    ctx.sessions.detach(conn.session, conn);
  }
}
