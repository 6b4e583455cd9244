/**
 * One client socket's server-side state. Sends go through `send`, which is safe to call from
 * async continuations: it does nothing once the socket is closed and corks the write so uWS
 * sends it in one syscall.
 */
import type { WebSocket } from 'uWebSockets.js';
import { CloseCode, type Codec, type ErrorCode, type ServerFrame } from '../../protocol/index.ts';
import type { Session } from '../session/sessions.ts';
import { nextConnState, type ConnEvent, type ConnState, type SubState } from './state.ts';

export interface SocketData {
  conn: Connection;
}

export class Connection {
  state: ConnState = 'handshaking';
  session: Session | null = null;
  /** Subscriptions by topic; a record's identity tells a pending subscribe whether it is still current. */
  readonly subs = new Map<string, { state: SubState }>();
  errors = 0;
  ws: WebSocket<SocketData> | null = null;

  constructor(
    readonly codec: Codec,
    readonly ip: string,
    readonly openedAt: number,
  ) {}

  /** Applies a lifecycle event; false when it is not legal in the current state. */
  transition(event: ConnEvent): boolean {
    const next = nextConnState(this.state, event);
    if (next === null) return false;
    this.state = next;
    return true;
  }

  send(frame: ServerFrame): void {
    const ws = this.ws;
    if (!ws || this.state === 'closed') return;
    const bytes = this.codec.encode(frame);
    ws.cork(() => ws.send(bytes, this.codec.binary));
  }

  sendError(code: ErrorCode, message: string, id?: number, topic?: string): void {
    this.send({ t: 'error', code, message, ...(id === undefined ? {} : { id }), ...(topic === undefined ? {} : { topic }) });
  }

  /** The session store calls this when the same session is resumed on another socket. */
  takeOver(): void {
    this.close(CloseCode.SessionTakenOver, 'session resumed on another connection');
  }

  /** Closes with an application close code; the `close` handler then cleans up. */
  close(code: number, reason: string): void {
    const ws = this.ws;
    if (!ws || this.state === 'closed') return;
    ws.cork(() => ws.end(code, reason));
  }
}
