/**
 * The handshake: `hello` (version, token or anonymous, per-user room), the session attach and the
 * `welcome`, and on a resume with `hello.restore` the session's subscriptions brought back.
 * Frames that arrive meanwhile wait in `conn.pending`; `welcomed` tells the dispatcher to run them.
 */
import { CloseCode, ErrorCode, PROTOCOL_VERSION, type HelloFrame, type Position } from '../../protocol/index.ts';
import type { GatewayContext } from '../context.ts';
import { ANONYMOUS, type Identity } from '../policy/auth.ts';
import type { Connection } from './connection.ts';
import { InboxDelivery } from './inbox-delivery.ts';
import { internalError } from './refuse.ts';
import { scheduleExpiry } from './token.ts';
import { presenceInfo } from '../presence/info.ts';
import { subscribe } from './topics.ts';

export function hello(ctx: GatewayContext, conn: Connection, frame: HelloFrame, welcomed: () => void): void {
  if (frame.v !== PROTOCOL_VERSION) {
    conn.sendError(ErrorCode.UnsupportedVersion, `protocol version ${frame.v} is not supported (server speaks ${PROTOCOL_VERSION})`);
    return conn.close(CloseCode.BadProtocol, 'unsupported protocol version');
  }
  if (conn.state !== 'handshaking' || conn.authenticating) return conn.sendError(ErrorCode.AlreadyHandshaken, 'hello already received');
  if (frame.token === undefined) {
    if (!ctx.policy.auth.anonymous) {
      conn.sendError(ErrorCode.Unauthorized, 'this gateway requires a token (hello.token)');
      return conn.close(CloseCode.Unauthorized, 'token required');
    }
    return welcome(ctx, conn, frame, ANONYMOUS, welcomed);
  }
  conn.authenticating = true;
  ctx.policy.auth
    .identity(frame.token)
    .then((r) => {
      conn.authenticating = false;
      if (conn.state !== 'handshaking' || conn.closing) return;
      if (!r.ok) {
        conn.sendError(r.code, r.message);
        return conn.close(r.code === ErrorCode.TokenExpired ? CloseCode.TokenExpired : CloseCode.Unauthorized, r.message);
      }
      welcome(ctx, conn, frame, r.value, welcomed);
    })
    .catch((e: Error) => {
      ctx.log.error('hello failed', { error: e.message });
      conn.close(CloseCode.InternalError, 'internal error');
    });
}

function welcome(ctx: GatewayContext, conn: Connection, frame: HelloFrame, identity: Identity, welcomed: () => void): void {
  const { limits } = ctx.policy;
  const info = presenceInfo(identity.info, frame.info, ctx.config.presence.maxInfoBytes);
  if (!info.ok) {
    conn.sendError(ErrorCode.PayloadTooLarge, info.message);
    return conn.close(CloseCode.BadProtocol, 'presence info too large');
  }
  conn.presenceInfo = info.value;
  if (identity.user !== null) {
    if (!limits.userHasRoom(identity.user)) {
      conn.sendError(ErrorCode.TooManyConnections, `at most ${ctx.config.limits.maxConnectionsPerUser} connections per user`);
      return conn.close(CloseCode.TooManyConnections, 'too many connections for this user');
    }
    conn.userRate = limits.addUser(identity.user, conn);
  }
  conn.identity = identity;
  // The session store may be remote (NATS KV): frames that arrive meanwhile wait in `pending`.
  conn.authenticating = true;
  ctx.sessions
    .attach(frame.session, conn, identity.user)
    .then(async ({ session, resumed }) => {
      // Listening before reading: a message appended meanwhile is either read or waits as live.
      const direct = new InboxDelivery(ctx, conn, session.id);
      // A new session's inbox is empty: no read (connect storms stay cheap), only its subscription confirmed.
      const backlog = resumed ? await direct.backlog(frame.inbox) : await direct.fresh();
      conn.authenticating = false;
      if (conn.state !== 'handshaking' || conn.closing) {
        direct.close();
        return ctx.sessions.detach(session, conn);
      }
      conn.direct = direct;
      conn.transition('hello');
      scheduleExpiry(ctx, conn);
      conn.session = session;
      // Compact msg frames are msgpack arrays: a JSON connection keeps the plain frames.
      conn.compact = frame.compact === true && conn.codec.binary;
      const note = session.previousClose;
      session.previousClose = undefined;
      conn.send({
        t: 'welcome',
        v: PROTOCOL_VERSION,
        session: session.id,
        key: session.key,
        resumed,
        heartbeat: ctx.config.ws.heartbeatMs,
        node: ctx.config.nodeId,
        ...(identity.user === null ? {} : { user: identity.user }),
        ...(identity.exp === null ? {} : { exp: identity.exp }),
        ...(note ? { previousClose: note } : {}),
        ...(conn.compact ? { compact: true as const } : {}),
        ...(resumed ? { topics: [...session.topics] } : {}),
        ...(resumed && session.state !== undefined ? { state: session.state } : {}),
        ...(backlog.lost ? { inboxLost: true as const } : {}),
      });
      direct.begin(backlog.messages);
      if (resumed && frame.restore) restoreSubscriptions(ctx, conn, frame.restore.since ?? {});
      welcomed();
    })
    .catch((e: Error) => {
      ctx.log.error('session attach failed', { error: e.message });
      conn.close(CloseCode.InternalError, 'internal error');
    });
}

/**
 * `hello.restore` on a resumed session: every topic of the session is subscribed again as if the
 * client had sent `sub` (same checks), from its position in `since` when given, else fresh. The
 * topics are reserved before this returns, so a `sub` the client sent anyway is "already subscribed".
 */
function restoreSubscriptions(ctx: GatewayContext, conn: Connection, since: Record<string, Position>): void {
  for (const topic of [...conn.session!.topics]) {
    const position = Object.hasOwn(since, topic) ? since[topic] : undefined;
    void subscribe(ctx, conn, undefined, topic, position, undefined).catch(internalError(ctx, conn, { t: 'sub', topic }));
  }
}
