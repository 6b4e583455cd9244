/** The `ice` frame: STUN/TURN servers for the client's peer connections (gateway/ice/). */
import type { IceFrame } from '../../protocol/index.ts';
import type { GatewayContext } from '../context.ts';
import { iceServersFor } from '../ice/servers.ts';
import type { Connection } from './connection.ts';

export function answerIce(ctx: GatewayContext, conn: Connection, { id }: IceFrame): void {
  const a = iceServersFor(ctx.config, conn.identity.user, conn.session!.id);
  conn.send({ t: 'ice', id, servers: a.servers.map((s) => ({ ...s, urls: [...s.urls] })), ...(a.expires === undefined ? {} : { expires: a.expires }) });
}
