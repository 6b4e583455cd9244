/**
 * Peer-channel signalling policy. The SDK's peer channels (sdk/peer/) signal, and relay their
 * messages when WebRTC cannot, as direct messages whose data is `{"$peer": …}`. Those get rules
 * of their own on top of the direct-message ones: a client may signal only to a session it can
 * discover (present in a presence topic it is subscribed to, unless `peer.reach` is "anyone"),
 * only to a session (not a user: a channel joins two sessions), within `peer.maxSignalBytes`, at
 * most `peer.ratePerSec`. Pure decisions, evaluated once per `send` frame.
 */
import { ErrorCode, type Recipient } from '../../protocol/index.ts';
import { PEER_SIGNAL_KEY, PEER_SIGNAL_OPS as OPS } from '../../protocol/peer-signal.ts';
import type { Decision } from './permissions.ts';

export { isPeerSignal } from '../../protocol/peer-signal.ts';

/** The signal's operation (for the metrics), or 'other' when it names none the SDK sends. */
export function signalOp(data: unknown): string {
  const op = ((data as Record<string, unknown>)[PEER_SIGNAL_KEY] as { op?: unknown } | null)?.op;
  return typeof op === 'string' && OPS.has(op) ? op : 'other';
}

export interface SignalContext {
  readonly reach: 'present' | 'anyone';
  readonly maxSignalBytes: number;
  /** The signal's size as the sender encoded it. */
  readonly bytes: number;
  /** Presence topics the sender is subscribed to. */
  readonly topics: Iterable<string>;
  /** Whether a session is a member of a topic (gateway/presence/ `present`). */
  present(topic: string, session: string): boolean;
}

const ALLOW: Decision = { ok: true };

export function canSignal(to: Recipient, c: SignalContext): Decision {
  if (!('session' in to)) return { ok: false, code: ErrorCode.BadRequest, message: 'peer signals go to a session (to.session), not to a user' };
  if (c.bytes > c.maxSignalBytes) return { ok: false, code: ErrorCode.PayloadTooLarge, message: `peer signal larger than ${c.maxSignalBytes} bytes` };
  if (c.reach === 'anyone') return ALLOW;
  for (const topic of c.topics) if (c.present(topic, to.session)) return ALLOW;
  return {
    ok: false,
    code: ErrorCode.Forbidden,
    message: 'peer signals go only to sessions present in a presence topic this connection is subscribed to',
  };
}
