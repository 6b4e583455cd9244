/**
 * A client's `send` (docs/protocol.md section 16): who may send (`direct.clients`), size, the
 * peer-signal rules for `$peer` data (gateway/policy/peer.ts), then gateway/direct/send.ts.
 */
import { ErrorCode, type SendFrame } from '../../protocol/index.ts';
import type { GatewayContext } from '../context.ts';
import { directTooLarge, sendDirect } from '../direct/send.ts';
import { canSignal, isPeerSignal, signalOp } from '../policy/peer.ts';
import { bucket } from '../policy/rate-limit.ts';
import type { Connection } from './connection.ts';
import { refuse } from './refuse.ts';

/** A peer signal: discoverable recipient, size, and the per-connection signal rate. Null: allowed. */
function signalDenied(ctx: GatewayContext, conn: Connection, frame: SendFrame, bytes: number): { code: ErrorCode; message: string } | null {
  const { peer } = ctx.config;
  // The frame's size bounds the signal's; measured exactly only when that bound is over the limit.
  const size = bytes <= peer.maxSignalBytes ? bytes : encodedSize(conn.codec.encode(frame.data as object));
  const decision = canSignal(frame.to, {
    reach: peer.reach,
    maxSignalBytes: peer.maxSignalBytes,
    bytes: size,
    topics: conn.subs.keys(),
    present: (topic, session) => ctx.presence.present(topic, session),
  });
  if (!decision.ok) return decision;
  if (peer.ratePerSec > 0) {
    conn.signalRate ??= bucket(peer.ratePerSec, peer.burst);
    if (!conn.signalRate.take()) return { code: ErrorCode.RateLimited, message: `at most ${peer.ratePerSec} peer signals per second` };
  }
  return null;
}

const encodedSize = (e: Uint8Array | string) => (typeof e === 'string' ? Buffer.byteLength(e) : e.byteLength);

export function send(ctx: GatewayContext, conn: Connection, { id, to, data }: SendFrame, bytes: number): void {
  const who = ctx.config.direct.clients;
  if (who === 'none') return refuse(ctx, conn, ErrorCode.Forbidden, 'clients may not send direct messages here (direct.clients is "none")', id);
  if (who === 'authenticated' && conn.identity.user === null) {
    return refuse(ctx, conn, ErrorCode.Unauthorized, 'sending direct messages needs a token (direct.clients is "authenticated")', id);
  }
  const large = directTooLarge(ctx, data, bytes, (d) => conn.codec.encode(d as object));
  if (large) return refuse(ctx, conn, ErrorCode.PayloadTooLarge, large, id);
  const signal = isPeerSignal(data);
  if (signal) {
    const denied = signalDenied(ctx, conn, { t: 'send', to, data, ...(id === undefined ? {} : { id }) }, bytes);
    if (denied) return refuse(ctx, conn, denied.code, denied.message, id);
  }
  const session = conn.session!;
  const from = { session: session.id, ...(conn.identity.user === null ? {} : { user: conn.identity.user }) };
  void sendDirect(ctx, to, data, from).then((r) => {
    if (!r.ok) return conn.sendError(r.code, r.message, id);
    if (signal) ctx.metrics.peerSignal(signalOp(data));
    if (id !== undefined) conn.send({ t: 'sent', id, sessions: r.sessions });
  });
}
