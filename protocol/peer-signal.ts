/**
 * Peer-channel signalling rides on direct messages: a `send` whose data is an object with this key
 * (`{"$peer": …}`) is a signal of the SDK's peer channels (sdk/peer/). The gateway applies its
 * signalling rules to such messages (gateway/policy/peer.ts); the client hands them to its
 * `signal` event instead of `direct`. Zod-free: the browser SDK uses it.
 */
export const PEER_SIGNAL_KEY = '$peer';

export function isPeerSignal(data: unknown): boolean {
  return typeof data === 'object' && data !== null && !Array.isArray(data) && PEER_SIGNAL_KEY in data;
}

/** The operations the SDK's signals carry (sdk/peer/signal.ts says what each means). */
export const PEER_SIGNAL_OPS: ReadonlySet<string> = new Set(['open', 'accept', 'reject', 'offer', 'answer', 'ice', 'data', 'ack', 'close']);
