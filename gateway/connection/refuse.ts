/** How a request that does not go through is answered: a counted denial, or a logged internal error. */
import { CloseCode, ErrorCode } from '../../protocol/index.ts';
import type { GatewayContext } from '../context.ts';
import type { Connection } from './connection.ts';

/** Answers a denied request; denials count toward `ws.maxErrors` like invalid frames (4503). */
export function refuse(ctx: GatewayContext, conn: Connection, code: ErrorCode, message: string, id?: number, topic?: string): void {
  conn.sendError(code, message, id, topic);
  if (++conn.errors > ctx.config.ws.maxErrors) conn.close(CloseCode.TooManyErrors, 'too many invalid or denied requests');
}

/**
 * Last resort for a bug in an async handler: answer 5000 and log, never an unhandled rejection.
 * `request` is the client frame, or what stands for one (a subscription restored by `hello`).
 */
export function internalError(ctx: GatewayContext, conn: Connection, request: { t: string; id?: number | undefined; topic?: string }) {
  return (e: unknown) => {
    ctx.log.error('request failed', { t: request.t, topic: request.topic, error: (e as Error)?.message ?? String(e) });
    conn.sendError(ErrorCode.Internal, 'internal error', request.id, request.topic);
  };
}
