/**
 * A peer channel's state machine, as one pure function (like connection-state.ts).
 *
 *   connecting  asked (or accepted) and looking for a path; messages sent now wait
 *   p2p         a WebRTC data channel carries the messages
 *   relayed     the gateway carries them, as direct messages (no route, ICE failed, WebRTC
 *               unavailable, or no data channel within the connect timeout)
 *   closed      either side closed it, or the other side refused it
 *
 * A relayed channel goes back to p2p if the data channel opens later; a p2p channel whose data
 * channel fails falls back to relayed. Both switches keep every message, in order, once
 * (reliable.ts).
 */
export type PeerState = 'connecting' | 'p2p' | 'relayed' | 'closed';

export type PeerEvent =
  /** The WebRTC data channel is open. */
  | { type: 'p2p-open' }
  /** The WebRTC path failed or never came: ICE failure, data channel closed, timeout, no WebRTC. */
  | { type: 'p2p-failed'; reason: string }
  /** This side or the other closed the channel, or the other side refused it. */
  | { type: 'close'; reason: string };

/** The state after `event`, or null when the event does not apply in `state` (ignored). */
export function nextPeerState(state: PeerState, event: PeerEvent): PeerState | null {
  if (state === 'closed') return null;
  switch (event.type) {
    case 'p2p-open':
      return state === 'p2p' ? null : 'p2p';
    case 'p2p-failed':
      return state === 'relayed' ? null : 'relayed';
    case 'close':
      return 'closed';
  }
}
