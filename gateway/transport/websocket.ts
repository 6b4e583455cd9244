/**
 * The `/ws` route: upgrade (Origin and per-IP checks, encoding negotiation), then per frame:
 * rate limit -> bytes -> validated frame -> handler. Invalid frames get an error frame; a
 * connection that keeps sending them is closed (4503); one that keeps flooding past the rate
 * limit is closed (4006).
 *
 * Slow consumers: past `maxBackpressure` bytes buffered for a socket, uWS drops the message for
 * it, and with `closeOnBackpressureLimit` it shuts the socket down and closes it in the same
 * pass of the event loop. Nothing after the dropped message is ever written, so the client
 * reads a gap-free prefix and then sees the connection end (1006: there is no room left for a
 * close frame); it resumes with `sub.since` and recovers the rest. On resume the `welcome`
 * carries `previousClose: {code: 4001}`. The `dropped` handler only marks the connection:
 * calling end()/close() from inside it crashes uWS (it runs inside the pub/sub drain loop).
 */
import type { HttpRequest, HttpResponse, TemplatedApp, WebSocketBehavior } from 'uWebSockets.js';
import { CloseCode, ErrorCode, codecFor, negotiateEncoding, subprotocolFor, type ServerFrame } from '../../protocol/index.ts';
import { decodeClientFrame, requestIdOf } from '../../protocol/validate.ts';
import { Connection, type SocketData } from '../connection/connection.ts';
import { handleFrame } from '../connection/handlers.ts';
import { releaseConnection } from '../connection/release.ts';
import type { GatewayContext } from '../context.ts';
import { HEARTBEAT_TOPIC, nativeTopic } from '../fanout.ts';
import type { UWS } from '../native.ts';

export interface SocketRegistry {
  /** Every open connection (for shutdown, handshake timeouts and tests). */
  readonly open: Set<Connection>;
}

export function mountWebSocket(uws: UWS, app: TemplatedApp, ctx: GatewayContext): SocketRegistry {
  const open = new Set<Connection>();
  const { ws: cfg } = ctx.config;
  const { policy } = ctx;
  const ipHeader = ctx.config.limits.clientIpHeader;

  const refuseUpgrade = (res: HttpResponse, status: string, code: ErrorCode, message: string) => {
    res.cork(() => {
      res
        .writeStatus(status)
        .writeHeader('content-type', 'application/json')
        .end(JSON.stringify({ error: { code, message } }));
    });
  };

  const observe = (conn: Connection, f: ServerFrame) => observeFrame(ctx, conn, f);

  const behavior: WebSocketBehavior<SocketData> = {
    compression: uws.DISABLED,
    // Frames up to twice the limit are read and answered with 1003; uWS cuts larger ones unread.
    maxPayloadLength: cfg.maxFrameBytes * 2,
    maxBackpressure: cfg.maxBackpressureBytes,
    // Past the limit uWS drops the message and closes the socket: a slow consumer is cut off at a
    // clean point and resumes from its position; it never silently misses messages, nobody waits.
    closeOnBackpressureLimit: true,
    idleTimeout: cfg.idleTimeoutSec,
    sendPingsAutomatically: true,

    upgrade(res: HttpResponse, req: HttpRequest, context) {
      // Draining: the load balancer should be sending clients elsewhere; tell any that still come.
      if (ctx.drain.draining) return refuseUpgrade(res, '503 Service Unavailable', ErrorCode.Unavailable, 'this gateway is draining: connect to another one');
      const origin = req.getHeader('origin');
      if (!policy.origins.allowed(origin)) {
        return refuseUpgrade(res, '403 Forbidden', ErrorCode.Forbidden, `origin ${JSON.stringify(origin.slice(0, 100))} is not allowed`);
      }
      const ip = clientIp(res, req, ipHeader);
      if (!policy.limits.ipHasRoom(ip)) {
        return refuseUpgrade(
          res,
          '429 Too Many Requests',
          ErrorCode.TooManyConnections,
          `at most ${ctx.config.limits.maxConnectionsPerIp} connections per client address`,
        );
      }
      const offered = req.getHeader('sec-websocket-protocol');
      const encoding = negotiateEncoding(offered);
      if (!encoding) {
        return refuseUpgrade(res, '400 Bad Request', ErrorCode.BadRequest, 'unsupported subprotocol: offer symphonic.v1.msgpack or symphonic.v1.json');
      }
      const conn = new Connection(codecFor(encoding), ip, Date.now());
      conn.rate = policy.connectionBucket();
      res.upgrade<SocketData>(
        { conn },
        req.getHeader('sec-websocket-key'),
        offered.trim() ? subprotocolFor(encoding) : '',
        req.getHeader('sec-websocket-extensions'),
        context,
      );
    },

    open(ws) {
      const conn = ws.getUserData().conn;
      conn.ws = ws;
      conn.observe = observe;
      open.add(conn);
      policy.limits.addIp(conn.ip);
      ws.subscribe(nativeTopic(conn.codec.encoding, HEARTBEAT_TOPIC));
    },

    message(ws, message, isBinary) {
      const conn = ws.getUserData().conn;
      if (conn.closing) return;
      const now = Date.now();
      if (!conn.rate.take(now)) return rateLimited(conn, message);
      if (conn.userRate && !conn.userRate.take(now)) {
        conn.rate.refund();
        return rateLimited(conn, message);
      }
      ctx.metrics.clientFrames++;
      ctx.metrics.bytesIn += message.byteLength;
      const result =
        message.byteLength > cfg.maxFrameBytes
          ? { ok: false as const, code: ErrorCode.FrameTooLarge, message: `frame larger than ${cfg.maxFrameBytes} bytes`, id: requestId(conn, message) }
          : conn.codec.binary && !isBinary
            ? { ok: false as const, code: ErrorCode.BadFrame, message: 'text frame on a binary (msgpack) connection' }
            : decodeClientFrame(conn.codec.encoding, message);
      if (!result.ok) {
        ctx.metrics.invalidFrames++;
        conn.sendError(result.code, result.message, 'id' in result ? result.id : undefined);
        if (++conn.errors > cfg.maxErrors) conn.close(CloseCode.TooManyErrors, 'too many invalid frames');
        return;
      }
      const f = result.frame;
      if (f.t === 'pub' && f.id !== undefined) (conn.pubsInFlight ??= new Map()).set(f.id, performance.now());
      else if (f.t === 'hello' && f.session) conn.offeredSession = true;
      try {
        handleFrame(ctx, conn, f, message.byteLength);
      } catch (e) {
        // A bug must cost one connection, never the process.
        ctx.log.error('frame handler failed', { t: result.frame.t, error: (e as Error).message });
        conn.close(CloseCode.InternalError, 'internal error');
      }
    },

    dropped(ws) {
      // Only mark it: uWS is closing the socket (closeOnBackpressureLimit); see the header comment.
      const conn = ws.getUserData().conn;
      if (!conn.slow) ctx.metrics.slowConsumers++;
      conn.slow = true;
    },

    close(ws, code) {
      const conn = ws.getUserData().conn;
      conn.transition('close');
      conn.ws = null;
      open.delete(conn);
      policy.limits.removeIp(conn.ip);
      if (conn.slow) ctx.log.info('slow consumer disconnected', { ip: conn.ip, user: conn.identity.user, subs: conn.subs.size, code });
      releaseConnection(ctx, conn);
    },
  };

  /** A frame over the rate limit: error 4000 (echoing its id when cheaply readable), or close 4006 when it keeps on. */
  function rateLimited(conn: Connection, message: ArrayBuffer): void {
    // The budget starts full when made: made at the first violation, it is what it would have been.
    if (!(conn.violations ??= policy.violationBudget()).take()) return conn.close(CloseCode.RateLimited, 'kept sending past the rate limit');
    conn.sendError(ErrorCode.RateLimited, 'rate limit exceeded: slow down', message.byteLength <= 1024 ? requestId(conn, message) : undefined);
  }

  app.ws<SocketData>(cfg.path, behavior);
  return { open };
}

/** The request id of a raw frame, if it decodes and has a valid one (for errors that answer it). */
function requestId(conn: Connection, message: ArrayBuffer): number | undefined {
  try {
    return requestIdOf(conn.codec.decode(message));
  } catch {
    return undefined;
  }
}

/** The client's address: the socket's, or the last entry of a configured proxy header. */
function clientIp(res: HttpResponse, req: HttpRequest, header: string): string {
  if (header) {
    const v = req.getHeader(header);
    const last = v.split(',').pop()?.trim();
    if (last) return last.slice(0, 64);
  }
  return Buffer.from(res.getRemoteAddressAsText()).toString();
}

/** Metrics from what a connection answers: rejections by code, resumes by outcome, publish to ack. */
function observeFrame(ctx: GatewayContext, conn: Connection, f: ServerFrame): void {
  if (f.t === 'error') ctx.metrics.rejected(f.code);
  else if (f.t === 'subscribed') {
    if (f.wasRecovering) ctx.metrics.resumed(f.recovered);
  } else if (f.t === 'welcome') {
    if (conn.offeredSession) ctx.metrics.sessionResume(f.resumed);
  }
  if ((f.t === 'ack' || f.t === 'error') && f.id !== undefined) {
    const t0 = conn.pubsInFlight?.get(f.id);
    if (t0 !== undefined) {
      conn.pubsInFlight!.delete(f.id);
      ctx.metrics.publishSeconds((performance.now() - t0) / 1000, 'ws', f.t === 'ack');
    }
  }
}
