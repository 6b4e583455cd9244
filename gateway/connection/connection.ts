/**
 * One client socket's server-side state. Sends go through `send`, which is safe to call from
 * async continuations: it does nothing once the socket is closed and corks the write so uWS
 * sends it in one syscall.
 */
import type { WebSocket } from 'uWebSockets.js';
import { CloseCode, type Codec, type ClientFrame, type ErrorCode, type ServerFrame } from '../../protocol/index.ts';
import { ANONYMOUS, type Identity } from '../policy/auth.ts';
import { UNLIMITED, type Bucket } from '../policy/rate-limit.ts';
import type { Session } from '../bus/sessions.ts';
import { SmallMap } from '../small.ts';
import type { InboxDelivery } from './inbox-delivery.ts';
import { nextConnState, type ConnEvent, type ConnState, type SubState } from './state.ts';

export interface SocketData {
  conn: Connection;
}

export class Connection {
  state: ConnState = 'handshaking';
  session: Session | null = null;
  /** Subscriptions by topic; a record's identity tells a pending subscribe whether it is still current. */
  /** `alias`: the topic's alias, held while a compact connection subscribes (gateway/aliases.ts). */
  readonly subs = new SmallMap<string, { state: SubState; alias?: number | undefined }>();
  errors = 0;
  /** Peer-signal bucket (`peer.ratePerSec`), made at the first signal; null: none yet. */
  signalRate: Bucket | null = null;
  /** Direct messages to the session, from its inbox (inbox-delivery.ts); set with `welcome`. */
  direct: InboxDelivery | null = null;
  ws: WebSocket<SocketData> | null = null;

  /** Who this is: anonymous until a `hello` token verifies; replaced by `refresh`. */
  identity: Identity = ANONYMOUS;
  /** A `hello` is being answered (its token verified, its session attached): frames that arrive meanwhile wait in `pending`. */
  authenticating = false;
  /** Made at the first frame that has to wait (most connections never have one). */
  pending: { frame: ClientFrame; bytes: number }[] | null = null;
  /** Frame-rate buckets: this connection's and (when authenticated) its user's, shared. */
  rate: Bucket = UNLIMITED;
  userRate: Bucket | null = null;
  /** Rate-limit violations left before the connection is closed with 4006; made at the first violation. */
  violations: Bucket | null = null;
  expiryTimer: ReturnType<typeof setTimeout> | null = null;
  /** `close` was called: ignore further frames. */
  closing = false;
  /** uWS dropped a message for this socket (buffer past maxBackpressure) and is closing it. */
  slow = false;
  /** `hello.compact` granted: `msg` frames come as short arrays naming topics by alias (msgpack only). */
  compact = false;
  /** The `hello` offered a session to resume (for metrics: resumed or replaced). */
  offeredSession = false;
  /**
   * When each `pub` with an id arrived (performance.now()), until its ack or error goes out. Made at
   * the first such `pub`: per-connection Maps and Sets cost ~200 bytes each even when empty.
   */
  pubsInFlight: Map<number, number> | null = null;
  /** What this session shows on presence topics: the token's `info` claim, else `hello.info` (bounded at hello). */
  presenceInfo: unknown = undefined;
  /** RPC calls in flight: aborted when the connection is released (their answers are dropped). Made at the first call. */
  rpcCalls: Set<AbortController> | null = null;
  /** Told of every frame this connection sends (metrics: rejections, resumes, publish latency); one function for all connections. */
  observe: ((conn: Connection, frame: ServerFrame) => void) | null = null;

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
    if (!ws || this.state === 'closed' || this.closing) return;
    const bytes = this.codec.encode(frame);
    ws.cork(() => ws.send(bytes, this.codec.binary));
    this.observe?.(this, frame);
  }

  /** Several frames in one corked write (one syscall). */
  sendAll(frames: readonly ServerFrame[]): void {
    const ws = this.ws;
    if (!ws || this.state === 'closed' || this.closing) return;
    const { codec } = this;
    ws.cork(() => {
      for (const f of frames) ws.send(codec.encode(f), codec.binary);
    });
    if (this.observe) for (const f of frames) this.observe(this, f);
  }

  sendError(code: ErrorCode, message: string, id?: number, topic?: string): void {
    this.send({ t: 'error', code, message, ...(id === undefined ? {} : { id }), ...(topic === undefined ? {} : { topic }) });
  }

  /** The session store calls this when the same session is resumed on another socket. */
  takeOver(): void {
    this.close(CloseCode.SessionTakenOver, 'session resumed on another connection');
  }

  /**
   * Closes with an application close code; the `close` handler then cleans up. Idempotent, and
   * never called from uWS's `dropped` handler (ending a socket there crashes uWS).
   */
  close(code: number, reason: string): void {
    const ws = this.ws;
    if (!ws || this.state === 'closed' || this.closing) return;
    this.closing = true;
    ws.cork(() => ws.end(code, reason));
  }
}
