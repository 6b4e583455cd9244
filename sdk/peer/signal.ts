/**
 * What peer channels say to each other through the gateway: direct messages whose data is
 * `{"$peer": signal}`. The client's `direct` event never shows these to the app.
 *
 *   open    the opener asks for a channel (`ch`: its id, chosen by the opener)
 *   accept  / reject   the other side's answer
 *   offer / answer / ice   WebRTC session descriptions and candidates
 *   data    a message carried by the relay (`n`: its number, `d`: the data)
 *   ack     every message up to `n` arrived (sent over the relay when there is no data channel)
 *   close   the channel is closed
 */
import { isPeerSignal, PEER_SIGNAL_KEY, PEER_SIGNAL_OPS as OPS } from '../../protocol/peer-signal.ts';

export type Signal =
  | { ch: string; op: 'open'; label?: string }
  | { ch: string; op: 'accept' }
  | { ch: string; op: 'reject'; reason?: string }
  | { ch: string; op: 'offer' | 'answer'; sdp: string }
  | { ch: string; op: 'ice'; candidate: RTCIceCandidateInit | null }
  | { ch: string; op: 'data'; n: number; d: unknown }
  | { ch: string; op: 'ack'; n: number }
  | { ch: string; op: 'close'; reason?: string };

/** The signal a direct message carries, or undefined when it is an ordinary one (or malformed). */
export function signalOf(data: unknown): Signal | undefined {
  if (!isPeerSignal(data)) return undefined;
  const s = (data as Record<string, unknown>)[PEER_SIGNAL_KEY] as Record<string, unknown> | null;
  if (typeof s !== 'object' || s === null || typeof s.ch !== 'string' || s.ch.length === 0 || s.ch.length > 64 || !OPS.has(s.op as string)) return undefined;
  if ((s.op === 'data' || s.op === 'ack') && !(Number.isSafeInteger(s.n) && (s.n as number) >= 0)) return undefined;
  if ((s.op === 'offer' || s.op === 'answer') && typeof s.sdp !== 'string') return undefined;
  return s as unknown as Signal;
}

export function wrap(s: Signal): Record<string, unknown> {
  return { [PEER_SIGNAL_KEY]: s };
}
