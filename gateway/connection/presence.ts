/**
 * The `presence` request: a topic's members (or count) across the gateways, read once without
 * subscribing. Same read checks as `sub` (no subscription token: a topic that needs one cannot be
 * read this way); 2009 when the topic's namespace has presence off.
 */
import { ErrorCode, type PresenceRequestFrame } from '../../protocol/index.ts';
import type { GatewayContext } from '../context.ts';
import type { Connection } from './connection.ts';
import { refuse } from './refuse.ts';
import { authorizeRead } from './topics.ts';

export async function readPresence(ctx: GatewayContext, conn: Connection, { id, topic }: PresenceRequestFrame): Promise<void> {
  if (ctx.presence.mode(topic) === false) return refuse(ctx, conn, ErrorCode.PresenceOff, `presence is off for the namespace of ${topic}`, id, topic);
  const decision = await authorizeRead(ctx, conn, topic, undefined);
  if (conn.state !== 'open') return;
  if (!decision.ok) return refuse(ctx, conn, decision.code, decision.message, id, topic);
  try {
    const r = await ctx.presence.read(topic);
    conn.send({ t: 'presence', id, topic, ...r });
  } catch (e) {
    ctx.log.warn('presence read failed', { topic, error: (e as Error).message });
    conn.sendError(ErrorCode.Unavailable, 'presence unavailable, retry later', id, topic);
  }
}
