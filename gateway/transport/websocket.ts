/**
 * The `/ws` route: upgrade with encoding negotiation, then bytes -> validated frame -> handler.
 * Invalid frames get an error frame; a connection that keeps sending them is closed (4503).
 */
import type { TemplatedApp, WebSocketBehavior } from 'uWebSockets.js';
import {
  CloseCode, ErrorCode, codecFor, negotiateEncoding, subprotocolFor,
} from '../../protocol/index.ts';
import { decodeClientFrame } from '../../protocol/validate.ts';
import { Connection, type SocketData } from '../connection/connection.ts';
import { handleFrame, releaseConnection } from '../connection/handlers.ts';
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
  const behavior: WebSocketBehavior<SocketData> = {
    compression: uws.DISABLED,
    // Frames up to twice the limit are read and answered with 1003; uWS cuts larger ones unread.
    maxPayloadLength: cfg.maxFrameBytes * 2,
    maxBackpressure: cfg.maxBackpressureBytes,
    // Past the limit uWS drops the message for this socket and calls `dropped`, where we end the
    // socket with 4001: a slow consumer is cut off and resumes from its last position, so it never
    // silently misses messages, and nobody else waits for it.
    closeOnBackpressureLimit: false,
    idleTimeout: cfg.idleTimeoutSec,
    sendPingsAutomatically: true,

    upgrade(res, req, context) {
      const offered = req.getHeader('sec-websocket-protocol');
      const encoding = negotiateEncoding(offered);
      if (!encoding) {
        res.writeStatus('400 Bad Request').writeHeader('content-type', 'application/json').end(JSON.stringify({
          error: { code: ErrorCode.BadRequest, message: 'unsupported subprotocol: offer symphonic.v1.msgpack or symphonic.v1.json' },
        }));
        return;
      }
      const ip = Buffer.from(res.getRemoteAddressAsText()).toString();
      res.upgrade<SocketData>(
        { conn: new Connection(codecFor(encoding), ip, Date.now()) },
        req.getHeader('sec-websocket-key'),
        offered.trim() ? subprotocolFor(encoding) : '',
        req.getHeader('sec-websocket-extensions'),
        context,
      );
    },

    open(ws) {
      const conn = ws.getUserData().conn;
      conn.ws = ws;
      open.add(conn);
      ws.subscribe(nativeTopic(conn.codec.encoding, HEARTBEAT_TOPIC));
    },

    message(ws, message, isBinary) {
      const conn = ws.getUserData().conn;
      const result = message.byteLength > cfg.maxFrameBytes
        ? { ok: false as const, code: ErrorCode.FrameTooLarge, message: `frame larger than ${cfg.maxFrameBytes} bytes` }
        : conn.codec.binary && !isBinary
          ? { ok: false as const, code: ErrorCode.BadFrame, message: 'text frame on a binary (msgpack) connection' }
          : decodeClientFrame(conn.codec.encoding, message);
      if (result.ok) return handleFrame(ctx, conn, result.frame);
      conn.sendError(result.code, result.message, 'id' in result ? result.id : undefined);
      if (++conn.errors > cfg.maxErrors) conn.close(CloseCode.TooManyErrors, 'too many invalid frames');
    },

    dropped(ws) {
      ws.getUserData().conn.close(CloseCode.SlowConsumer, 'slow consumer: resume from your last position');
    },

    close(ws) {
      const conn = ws.getUserData().conn;
      conn.transition('close');
      conn.ws = null;
      open.delete(conn);
      releaseConnection(ctx, conn);
    },
  };
  app.ws<SocketData>(cfg.path, behavior);
  return { open };
}
