/**
 * The `rpc` frame: the call runs in the background (a slow service delays no other frame) and
 * its answer goes back with the call's id. A call of a connection that closes is aborted: its
 * timer is freed and whatever the service answers later is dropped.
 */
import { ErrorCode, type RpcFrame } from '../../protocol/index.ts';
import type { GatewayContext } from '../context.ts';
import { outcomeLabel, type RpcOutcome } from '../rpc/outcome.ts';
import type { Connection } from './connection.ts';
import { refuse } from './refuse.ts';

/**
 * Calls one connection may have in flight: the rate limit bounds how fast they start, this how
 * many sockets or inboxes a client can hold open on services that are slow to answer.
 */
export const MAX_RPC_IN_FLIGHT = 64;

const CLIENT_MISTAKES = new Set<number>([ErrorCode.UnknownMethod, ErrorCode.Unauthorized, ErrorCode.Forbidden, ErrorCode.BadRequest]);

export function rpc(ctx: GatewayContext, conn: Connection, { id, method, data, timeout }: RpcFrame): void {
  if ((conn.rpcCalls?.size ?? 0) >= MAX_RPC_IN_FLIGHT) {
    ctx.metrics.rpcCall('limited');
    return conn.sendError(ErrorCode.LimitExceeded, `at most ${MAX_RPC_IN_FLIGHT} calls in flight per connection: wait for answers`, id);
  }
  const abort = new AbortController();
  (conn.rpcCalls ??= new Set()).add(abort);
  const caller = { identity: conn.identity, session: conn.session?.id ?? '' };
  ctx.rpc
    .call(caller, { method, data, timeout, signal: abort.signal })
    .catch((e: Error): RpcOutcome => {
      ctx.log.error('rpc failed', { method, error: e.message });
      return { ok: false, code: ErrorCode.Internal, message: 'internal error' };
    })
    .then((outcome) => {
      conn.rpcCalls?.delete(abort);
      ctx.metrics.rpcCall(abort.signal.aborted ? 'abandoned' : outcomeLabel(outcome));
      if (abort.signal.aborted) return;
      if (outcome.ok) return conn.send({ t: 'rpc', id, data: outcome.data });
      // Denials, unknown methods and bad data are the client's mistakes (they count toward
      // ws.maxErrors); a service's failure is not.
      if (CLIENT_MISTAKES.has(outcome.code)) return refuse(ctx, conn, outcome.code, outcome.message, id);
      conn.send({ t: 'error', id, code: outcome.code, message: outcome.message, ...(outcome.data === undefined ? {} : { data: outcome.data }) });
    })
    .catch((e: Error) => ctx.log.error('rpc answer failed', { method, error: e.message }));
}
