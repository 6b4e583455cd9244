/** A client's `send` (docs/protocol.md section 16): who may send (`direct.clients`), size, then gateway/direct/send.ts. */
import { ErrorCode, type SendFrame } from '../../protocol/index.ts';
import type { GatewayContext } from '../context.ts';
import { directTooLarge, sendDirect } from '../direct/send.ts';
import type { Connection } from './connection.ts';
import { refuse } from './refuse.ts';

export function send(ctx: GatewayContext, conn: Connection, { id, to, data }: SendFrame, bytes: number): void {
  const who = ctx.config.direct.clients;
  if (who === 'none') return refuse(ctx, conn, ErrorCode.Forbidden, 'clients may not send direct messages here (direct.clients is "none")', id);
  if (who === 'authenticated' && conn.identity.user === null) {
    return refuse(ctx, conn, ErrorCode.Unauthorized, 'sending direct messages needs a token (direct.clients is "authenticated")', id);
  }
  const large = directTooLarge(ctx, data, bytes, (d) => conn.codec.encode(d as object));
  if (large) return refuse(ctx, conn, ErrorCode.PayloadTooLarge, large, id);
  const session = conn.session!;
  const from = { session: session.id, ...(conn.identity.user === null ? {} : { user: conn.identity.user }) };
  void sendDirect(ctx, to, data, from).then((r) => {
    if (!r.ok) return conn.sendError(r.code, r.message, id);
    if (id !== undefined) conn.send({ t: 'sent', id, sessions: r.sessions });
  });
}
