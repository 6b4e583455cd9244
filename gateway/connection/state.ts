/**
 * Connection lifecycle on the gateway, as a pure transition function:
 *   handshaking --hello--> open --close--> closed;  handshaking --close--> closed
 * Anything else is not a legal transition (null) and the caller answers with an error.
 */
export type ConnState = 'handshaking' | 'open' | 'closed';
export type ConnEvent = 'hello' | 'close';

export function nextConnState(state: ConnState, event: ConnEvent): ConnState | null {
  if (event === 'close') return state === 'closed' ? null : 'closed';
  return state === 'handshaking' ? 'open' : null;
}

/**
 * A subscription of one connection: `authorizing` while its subscription token is verified
 * (no interest taken yet), `subscribing` until its `subscribed` reply is sent, then `subscribed`.
 */
export type SubState = 'authorizing' | 'subscribing' | 'subscribed';
