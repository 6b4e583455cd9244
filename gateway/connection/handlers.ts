/**
 * What each client frame does: the dispatcher. The handshake is in ./handshake.ts, the topic
 * requests in ./topics.ts, token refresh and expiry in ./token.ts, session state in
 * ./session-state.ts. Replies to async work go through `conn.send`, which ignores closed sockets.
 * Every request passes its policy checks (gateway/policy/) on the ingress side; nothing is
 * checked per delivery.
 */
import { ErrorCode, type ClientFrame } from '../../protocol/index.ts';
import type { GatewayContext } from '../context.ts';
import type { Connection } from './connection.ts';
import { send } from './direct.ts';
import { hello } from './handshake.ts';
import { answerIce } from './ice.ts';
import { readPresence } from './presence.ts';
import { internalError } from './refuse.ts';
import { setSessionState } from './session-state.ts';
import { rpc } from './rpc.ts';
import { refresh } from './token.ts';
import { history, publish, subscribe, unsubscribe } from './topics.ts';

/** Frames a client may send while its `hello` token is being verified; later ones get 1004. */
const MAX_PENDING = 32;

export function handleFrame(ctx: GatewayContext, conn: Connection, frame: ClientFrame, bytes = 0): void {
  if (conn.state === 'closed' || conn.closing) return; // e.g. frames queued behind a hello that was refused
  if (conn.state === 'handshaking') {
    if (conn.authenticating && frame.t !== 'hello' && (conn.pending?.length ?? 0) < MAX_PENDING) return void (conn.pending ??= []).push({ frame, bytes });
    if (frame.t !== 'hello') return conn.sendError(ErrorCode.HandshakeRequired, 'send hello first', 'id' in frame ? frame.id : undefined);
  }
  switch (frame.t) {
    case 'hello':
      return hello(ctx, conn, frame, () => handlePending(ctx, conn));
    case 'sub':
      return void subscribe(ctx, conn, frame.id, frame.topic, frame.since, frame.token).catch(internalError(ctx, conn, frame));
    case 'unsub':
      return unsubscribe(ctx, conn, frame);
    case 'pub':
      return publish(ctx, conn, frame, bytes);
    case 'history':
      return void history(ctx, conn, frame).catch(internalError(ctx, conn, frame));
    case 'ping':
      return conn.send({ t: 'pong', ...(frame.id === undefined ? {} : { id: frame.id }) });
    case 'refresh':
      return void refresh(ctx, conn, frame).catch(internalError(ctx, conn, frame));
    case 'session':
      return setSessionState(ctx, conn, frame);
    case 'ice':
      return answerIce(ctx, conn, frame);
    case 'send':
      return send(ctx, conn, frame, bytes);
    case 'presence':
      return void readPresence(ctx, conn, frame).catch(internalError(ctx, conn, frame));
    case 'rpc':
      return rpc(ctx, conn, frame);
  }
}

/** Once `welcome` is sent: the frames that waited for the handshake, in order. */
function handlePending(ctx: GatewayContext, conn: Connection): void {
  const queued = conn.pending;
  conn.pending = null;
  for (const q of queued ?? []) handleFrame(ctx, conn, q.frame, q.bytes);
}
