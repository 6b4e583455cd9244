/**
 * The socket lifecycle: one WebSocket at a time to one of the gateway URLs, kept up until the app
 * closes the client. It opens sockets (asking for a token first when one is due), sends `hello`,
 * times the handshake out, watches the heartbeat, and after a drop reconnects with backoff,
 * moving to the next URL after a failure on one; it follows the browser's online/offline events.
 * It owns the connection state (./connection-state.ts) and knows nothing of subscriptions or
 * requests: the client hears about frames, drops and closes through `ConnectionHooks`.
 */
import { CloseCode, ErrorCode, isTerminalClose } from '../protocol/codes.ts';
import { backoffDelay, shutdownDelay, type BackoffOptions } from './backoff.ts';
import type { ClientCodec } from './codec.ts';
import { nextConnectionState, type ConnectionEvent, type ConnectionState, type StateChange } from './connection-state.ts';
import { ClientErrorCode, SymphonicError } from './errors.ts';
import { isOffline, watchNetwork } from './network.ts';
import type { TokenKeeper } from './token.ts';
import { defaultWebSocket, openSocket, type SocketLike, type WebSocketConstructor } from './transport.ts';
import { Watchdog } from './watchdog.ts';

export interface ConnectionOptions {
  urls: readonly string[];
  codec: ClientCodec;
  backoff: BackoffOptions;
  WebSocket: WebSocketConstructor | undefined;
  /** Give up (state 'closed') after this many failed attempts in a row. */
  maxAttempts: number;
  /** After a ServerShutdown close, the first reconnect is spread over this window, ms. */
  shutdownSpread: number;
  /** No `welcome` this long after the socket opened: drop and retry, ms. */
  handshakeTimeout: number;
  networkEvents: boolean;
}

export interface ConnectionHooks {
  /** The `hello` for a socket that just opened, carrying `token`. */
  hello(token: string | undefined): object;
  /** A decoded frame from the server. */
  frame(frame: { t?: unknown; id?: unknown }): void;
  /** The socket in use is gone (dropped, abandoned or closed): what depended on it fails. */
  lost(code: number, reason: string): void;
  /** The client closed (close(), a terminal close code, or it gave up): what waited for a connection fails. */
  closed(code: number, reason: string): void;
  state(change: StateChange<ConnectionState>): void;
  /** Errors not tied to a request. */
  error(err: SymphonicError): void;
}

export class Connection {
  private _state: ConnectionState = 'disconnected';
  /** Index in `urls` of the gateway in use (or tried next). */
  private urlIndex = 0;
  private socket: SocketLike | null = null;
  /** Bumped whenever the current socket is abandoned: events from older sockets are ignored. */
  private socketGen = 0;
  private attempts = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private handshakeTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly watchdog = new Watchdog((idle) => this.drop(CloseCode.IdleTimeout, `no frame from the server for ${idle} ms`));
  /** Stops listening to the browser's online/offline events; null when not listening. */
  private unwatchNetwork: (() => void) | null = null;

  constructor(
    private readonly opts: ConnectionOptions,
    private readonly tokens: TokenKeeper,
    private readonly hooks: ConnectionHooks,
  ) {}

  get state(): ConnectionState {
    return this._state;
  }

  /**
   * `welcome` received on the socket in use: requests flow. The state machine says `connected`
   * from the welcome until the drop is announced; the socket is let go first, so whatever runs
   * while a dropped socket is torn down already sees it down.
   */
  get connected(): boolean {
    return this._state === 'connected' && this.socket !== null;
  }

  /** Nothing will connect without the app: not started, closed, or offline without listening for `online`. */
  get stopped(): boolean {
    return this._state === 'closed' || (this._state === 'disconnected' && !this.unwatchNetwork);
  }

  /** The gateway URL in use (while connecting: the one being tried or tried next). */
  get url(): string {
    return this.opts.urls[this.urlIndex]!;
  }

  connect(): void {
    if (!this.dispatch({ type: 'connect' }, 0, 'connect called')) return;
    this.attempts = 0;
    this.listenNetwork(true);
    if (isOffline()) this.goOffline();
    else this.openNow();
  }

  close(): void {
    if (this._state === 'closed') return;
    this.shutdown(CloseCode.Normal, 'closed by the client');
  }

  /** Drops the socket and reconnects at once, to the same URL (not a failure of the gateway). */
  reconnect(): void {
    if (this._state === 'disconnected' || this._state === 'closed') return this.connect();
    this.abandonSocket(0, 'reconnect requested');
    this.dispatch({ type: 'lost' }, 0, 'reconnect requested');
    this.openNow();
  }

  /** The handshake completed: the heartbeat watch starts and the backoff resets. */
  welcomed(heartbeat: number, reason: string): void {
    this.clearTimer('handshakeTimer');
    this.watchdog.start(heartbeat);
    this.attempts = 0;
    this.dispatch({ type: 'welcome' }, 0, reason);
  }

  /** Sends on the current socket. Throws (a SymphonicError) only when the frame cannot be encoded. */
  send(frame: object): boolean {
    if (!this.socket) return false;
    let bytes: Uint8Array | string;
    try {
      bytes = this.opts.codec.encode(frame);
    } catch (e) {
      throw new SymphonicError(
        ErrorCode.InvalidFrame,
        `cannot encode the ${(frame as { t?: string }).t} frame: ${(e as Error)?.message ?? e}`,
        (frame as { topic?: string }).topic,
      );
    }
    try {
      this.socket.send(bytes);
      return true;
    } catch {
      return false; // the socket is closing: its close event follows and fails what waits on it
    }
  }

  // ---- opening ----------------------------------------------------------------------------------

  private openNow(): void {
    this.clearTimer('reconnectTimer');
    void this.open();
  }

  private async open(): Promise<void> {
    const gen = ++this.socketGen;
    let token = this.tokens.current;
    if (this.tokens.stale) {
      try {
        token = await this.tokens.fetch();
      } catch (e) {
        if (gen !== this.socketGen) return;
        this.hooks.error(new SymphonicError(ErrorCode.Unauthorized, `getToken failed: ${(e as Error)?.message ?? e}`));
        return this.retryLater(0, 'getToken failed');
      }
      if (gen !== this.socketGen || this._state !== 'connecting') return;
    }
    const Ctor = this.opts.WebSocket ?? defaultWebSocket();
    if (!Ctor) {
      const err = new SymphonicError(ClientErrorCode.NoTransport, 'no WebSocket available: in Node 20 pass { WebSocket } from the "ws" package');
      this.hooks.error(err);
      return this.shutdown(0, err.message);
    }
    let socket: SocketLike;
    try {
      socket = openSocket(Ctor, this.url, this.opts.codec.subprotocol);
    } catch (e) {
      this.hooks.error(new SymphonicError(ErrorCode.BadRequest, `cannot open ${this.url}: ${(e as Error)?.message ?? e}`));
      this.nextUrl();
      return this.retryLater(0, 'socket constructor failed');
    }
    this.socket = socket;
    socket.onopen = () => gen === this.socketGen && this.onOpen(token);
    socket.onmessage = (ev) => gen === this.socketGen && this.onData(ev.data);
    socket.onclose = (ev) => gen === this.socketGen && this.onSocketClosed(ev.code, ev.reason || 'socket closed');
    socket.onerror = noop; // a close event follows every error
  }

  private onOpen(token: string | undefined): void {
    this.send(this.hooks.hello(token));
    const limit = this.opts.handshakeTimeout;
    this.handshakeTimer = setTimeout(() => this.drop(CloseCode.HandshakeTimeout, `no welcome within ${limit} ms`), limit);
  }

  private onData(data: unknown): void {
    this.watchdog.touch();
    let frame: { t?: unknown; id?: unknown };
    try {
      frame = this.opts.codec.decode(data) as typeof frame;
    } catch (e) {
      this.hooks.error(new SymphonicError(ErrorCode.BadFrame, `undecodable frame from the server: ${(e as Error)?.message ?? e}`));
      return;
    }
    if (typeof frame !== 'object' || frame === null) return;
    this.hooks.frame(frame);
  }

  // ---- losing it --------------------------------------------------------------------------------

  private onSocketClosed(code: number, reason: string): void {
    this.abandonSocket(code, reason);
    if (this._state === 'closed') return;
    if (isTerminalClose(code)) return this.shutdown(code, reason);
    if (code === CloseCode.TokenExpired) this.tokens.expired();
    this.nextUrl();
    this.retryLater(code, reason);
  }

  /** Abandons a socket that is (or must be treated as) dead, and reconnects. */
  private drop(code: number, reason: string): void {
    if (!this.socket) return;
    this.abandonSocket(code, reason);
    this.nextUrl();
    this.retryLater(code, reason);
  }

  /** After a failure on the current gateway, the next attempt goes to the next URL (round robin). */
  private nextUrl(): void {
    this.urlIndex = (this.urlIndex + 1) % this.opts.urls.length;
  }

  private retryLater(code: number, reason: string): void {
    if (!this.dispatch({ type: 'lost' }, code, reason)) return;
    if (this.attempts >= this.opts.maxAttempts) return this.shutdown(code, `gave up after ${this.attempts} reconnect attempts: ${reason}`);
    const attempt = this.attempts++;
    const delay =
      code === CloseCode.ServerShutdown ? shutdownDelay(attempt, this.opts.backoff, this.opts.shutdownSpread) : backoffDelay(attempt, this.opts.backoff);
    this.clearTimer('reconnectTimer');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this._state === 'connecting') void this.open();
    }, delay);
  }

  /** Detaches from the current socket (closing it) and fails what depended on it. */
  private abandonSocket(code: number, reason: string): void {
    const socket = this.socket;
    this.socket = null;
    this.socketGen++;
    this.clearTimer('handshakeTimer');
    this.watchdog.stop();
    if (socket) {
      socket.onopen = socket.onmessage = socket.onclose = null;
      socket.onerror = noop;
      try {
        socket.close(code >= 4000 && code < 5000 ? code : CloseCode.Normal, reason.slice(0, 100));
      } catch {
        // already closed
      }
    }
    this.hooks.lost(code, reason);
  }

  private shutdown(code: number, reason: string): void {
    this.abandonSocket(code, reason);
    this.clearTimer('reconnectTimer');
    this.listenNetwork(false);
    this.dispatch({ type: 'close' }, code, reason);
    this.hooks.closed(code, reason);
  }

  private goOffline(): void {
    if (this._state !== 'connected' && this._state !== 'connecting') return;
    this.abandonSocket(0, 'network offline');
    this.clearTimer('reconnectTimer');
    this.dispatch({ type: 'offline' }, 0, 'network offline');
  }

  // ---- helpers ----------------------------------------------------------------------------------

  private dispatch(event: ConnectionEvent, code: number, reason: string): boolean {
    const next = nextConnectionState(this._state, event);
    if (next === null) return false;
    if (next !== this._state) {
      const oldState = this._state;
      this._state = next;
      this.hooks.state({ oldState, newState: next, code, reason });
    }
    return true;
  }

  private listenNetwork(on: boolean): void {
    if (!on) {
      this.unwatchNetwork?.();
      this.unwatchNetwork = null;
    } else if (!this.unwatchNetwork && this.opts.networkEvents) {
      this.unwatchNetwork = watchNetwork(
        () => this.dispatch({ type: 'online' }, 0, 'network online') && this.openNow(),
        () => this.goOffline(),
      );
    }
  }

  private clearTimer(name: 'reconnectTimer' | 'handshakeTimer'): void {
    const t = this[name];
    if (t !== undefined) clearTimeout(t);
    this[name] = undefined;
  }
}

function noop(): void {}
