/**
 * The connection's state machine, as one pure function. The client holds one `state` field and
 * changes it only through `nextConnectionState`; every change is announced as a
 * `{ oldState, newState, code, reason }` event.
 *
 *   disconnected  not started, or waiting for the network (browser offline)
 *   connecting    opening a socket, handshaking, or waiting out a reconnect backoff
 *   connected     `welcome` received; requests flow
 *   closed        the app closed the client or the server sent a terminal close code
 */
export type ConnectionState = 'disconnected' | 'connecting' | 'connected' | 'closed';

export type ConnectionEvent =
  /** The app called connect() (or reconnect()). */
  | { type: 'connect' }
  /** The handshake completed. */
  | { type: 'welcome' }
  /** The socket dropped, failed to open, or went silent: reconnect with backoff. */
  | { type: 'lost' }
  /** The browser reports no network: stop trying until it is back. */
  | { type: 'offline' }
  /** The network is back (only dispatched once the app has called connect()). */
  | { type: 'online' }
  /** The app called close(), or the server closed with a terminal code: do not reconnect. */
  | { type: 'close' };

/**
 * The state after `event`, or null when the event does not apply in `state` (ignored). The same
 * state back means "handled": e.g. `lost` while connecting schedules another attempt.
 */
export function nextConnectionState(state: ConnectionState, event: ConnectionEvent): ConnectionState | null {
  switch (event.type) {
    case 'connect':
      return state === 'disconnected' || state === 'closed' ? 'connecting' : null;
    case 'welcome':
      return state === 'connecting' ? 'connected' : null;
    case 'lost':
      return state === 'connected' || state === 'connecting' ? 'connecting' : null;
    case 'offline':
      return state === 'connected' || state === 'connecting' ? 'disconnected' : null;
    case 'online':
      return state === 'disconnected' ? 'connecting' : null;
    case 'close':
      return state === 'closed' ? null : 'closed';
  }
}

export interface StateChange<S extends string> {
  oldState: S;
  newState: S;
  /** Close or error code that caused the change (0 when the app caused it). */
  code: number;
  reason: string;
}
