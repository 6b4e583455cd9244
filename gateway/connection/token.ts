/**
 * The connection's token over time: it is closed (4005) once the token has expired, unless a
 * `refresh` frame brought a new token for the same user in band.
 */
import { CloseCode, ErrorCode, type RefreshFrame } from '../../protocol/index.ts';
import type { GatewayContext } from '../context.ts';
import type { Connection } from './connection.ts';
import { refuse } from './refuse.ts';

/** Closes the connection (4005) once its token has expired and was not refreshed. */
export function scheduleExpiry(ctx: GatewayContext, conn: Connection): void {
  if (conn.expiryTimer) clearTimeout(conn.expiryTimer);
  conn.expiryTimer = null;
  const exp = conn.identity.exp;
  if (exp === null) return;
  const due = (exp + ctx.policy.auth.clockToleranceSec) * 1000;
  conn.expiryTimer = setTimeout(
    () => {
      conn.expiryTimer = null;
      if (conn.state !== 'open') return;
      if (Date.now() < due) return scheduleExpiry(ctx, conn); // timers cap at ~24.8 days
      conn.sendError(ErrorCode.TokenExpired, 'token expired: send refresh before exp, or reconnect with a new token');
      conn.close(CloseCode.TokenExpired, 'token expired');
    },
    Math.min(Math.max(0, due - Date.now()), 2 ** 31 - 1),
  );
  conn.expiryTimer.unref?.();
}

export async function refresh(ctx: GatewayContext, conn: Connection, { id, token }: RefreshFrame): Promise<void> {
  const r = await ctx.policy.auth.identity(token);
  if (conn.state !== 'open') return;
  if (!r.ok) return refuse(ctx, conn, r.code, r.message, id);
  if (r.value.user !== conn.identity.user) {
    return refuse(
      ctx,
      conn,
      ErrorCode.Forbidden,
      conn.identity.user === null ? 'an anonymous connection cannot take a token in band: reconnect with it in hello' : 'the new token is for another user',
      id,
    );
  }
  conn.identity = r.value;
  scheduleExpiry(ctx, conn);
  conn.send({ t: 'refreshed', id, ...(r.value.exp === null ? {} : { exp: r.value.exp }) });
}
