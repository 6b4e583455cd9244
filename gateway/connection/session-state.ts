/** The `session` frame: the session's app-defined state, persisted with the session for resume. */
import { ErrorCode, type SessionFrame } from '../../protocol/index.ts';
import type { GatewayContext } from '../context.ts';
import type { Connection } from './connection.ts';
import { refuse } from './refuse.ts';

/** Replaces the session's state (bounded by `session.maxStateBytes`). */
export function setSessionState(ctx: GatewayContext, conn: Connection, { id, state }: SessionFrame): void {
  const size = Buffer.byteLength(JSON.stringify(state) ?? '');
  if (size > ctx.config.session.maxStateBytes) {
    return refuse(ctx, conn, ErrorCode.PayloadTooLarge, `session state larger than ${ctx.config.session.maxStateBytes} bytes`, id);
  }
  const session = conn.session!;
  session.state = state === null ? undefined : state;
  ctx.sessions.changed(session);
  conn.send({ t: 'session', id });
}
