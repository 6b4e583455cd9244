/**
 * SymphonicClient: one WebSocket to a gateway, kept alive across drops (and moved to the next of
 * several gateway URLs after a failure on one). It owns the connection
 * state machine (./connection-state.ts), the handshake and session resume, heartbeat watchdog,
 * reconnect backoff, request/reply bookkeeping, and routes topic frames to Subscriptions.
 */
import { CloseCode, ErrorCode, isTerminalClose } from '../protocol/codes.ts';
import type { AckFrame, ErrorFrame, HistoryResultFrame, MessageKind, MsgFrame, Position, SubscribedFrame, WelcomeFrame } from '../protocol/frames.ts';
import { topicError } from '../protocol/topic.ts';
import type { Encoding } from '../protocol/version.ts';
import { backoffDelay, DEFAULT_BACKOFF, shutdownDelay, type BackoffOptions } from './backoff.ts';
import { clientCodecFor, type ClientCodec } from './codec.ts';
import { nextConnectionState, type ConnectionEvent, type ConnectionState, type StateChange } from './connection-state.ts';
import { Emitter } from './emitter.ts';
import { helloFrame } from './hello.ts';
import { ClientErrorCode, ConnectionClosedError, SymphonicError, TimeoutError } from './errors.ts';
import { isOffline, watchNetwork } from './network.ts';
import { Requests } from './requests.ts';
import { errorFromFrame, Subscription, type SubscribeOptions, type SubscriptionHost } from './subscription.ts';
import { TokenKeeper, type GetToken } from './token.ts';
import { defaultWebSocket, openSocket, type SocketLike, type WebSocketConstructor } from './transport.ts';
import type { HistoryResult, Message, PublishAck, SessionInfo } from './types.ts';
import { Watchdog } from './watchdog.ts';

export interface ClientOptions {
  /** WebSocket class; defaults to `globalThis.WebSocket`. In Node 20 pass `ws`'s: `{ WebSocket: (await import('ws')).WebSocket }`. */
  WebSocket?: WebSocketConstructor;
  /** Wire encoding: 'msgpack' (default, binary) or 'json' (text, easier to debug). */
  encoding?: Encoding;
  /** A fixed auth token sent in `hello`. */
  token?: string;
  /**
   * Auth hook: returns a token. Called before the first connect, after the server says the token
   * expired (close 4005 or error 3002), and by refreshToken(). Overrides `token`.
   */
  getToken?: GetToken;
  /** Resume a session persisted from an earlier client (`client.session`). */
  session?: SessionInfo;
  reconnect?: Partial<BackoffOptions> & {
    /** Give up (state 'closed') after this many failed attempts in a row; default unlimited. */
    maxAttempts?: number;
    /** After a ServerShutdown close, the first reconnect is spread over this window, ms (default 5000). */
    shutdownSpread?: number;
  };
  /** Request timeout (publish, history, subscribe), ms; default 10000. */
  timeout?: number;
  /** No `welcome` this long after the socket opened: drop and retry, ms; default 10000. */
  handshakeTimeout?: number;
  /** Messages a subscription buffers while (re)subscribing before it gives up and resyncs; default 10000. */
  maxBuffer?: number;
  /** Requests (publish, history) queued while connecting; past it they reject; default 1000. */
  maxQueued?: number;
  /** Sent as `client` in hello, for the server's logs. */
  name?: string;
  /** Listen to the browser's online/offline events when present; default true. */
  networkEvents?: boolean;
  /**
   * On resume, have the server re-subscribe the session's topics from the positions sent in
   * `hello` (`hello.restore`): the subscriptions are back right after `welcome`, with no `sub`
   * round trip. Default true; false sends a `sub` with `since` per topic instead.
   */
  restore?: boolean;
}

export interface ConnectedInfo {
  /** The gateway URL this connection went to. */
  url: string;
  session: string;
  resumed: boolean;
  node: string;
  heartbeat: number;
}

export interface ClientEvents {
  state: StateChange<ConnectionState>;
  connected: ConnectedInfo;
  /** Errors not tied to a request: frames the SDK cannot decode, server errors without an id, token hook failures. */
  error: SymphonicError;
}

export interface PublishOptions {
  kind?: MessageKind;
  timeout?: number;
}

export interface HistoryOptions {
  /** Messages after this sequence (absent: from the oldest retained). */
  since?: number;
  /** At most this many (1-1000, default 100). */
  limit?: number;
  timeout?: number;
}

export class SymphonicClient extends Emitter<ClientEvents> {
  /** Every gateway URL this client may use, in order of preference. */
  readonly urls: readonly string[];
  /** Index in `urls` of the gateway in use (or tried next). */
  private urlIndex = 0;
  private _state: ConnectionState = 'disconnected';
  private readonly opts: ClientOptions;
  private readonly codec: ClientCodec;
  private readonly backoffOpts: BackoffOptions;
  private readonly requests: Requests;
  private readonly subs = new Map<string, Subscription<any, any>>();
  private socket: SocketLike | null = null;
  /** Bumped whenever the current socket is abandoned: events from older sockets are ignored. */
  private socketGen = 0;
  private welcomed = false;
  /** The last `hello` asked the server to restore the session's subscriptions. */
  private restoreAsked = false;

  private attempts = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private handshakeTimer: ReturnType<typeof setTimeout> | undefined;
  private _sessionState: unknown;
  private readonly watchdog = new Watchdog((idle) => this.drop(CloseCode.IdleTimeout, `no frame from the server for ${idle} ms`));
  /** Stops listening to the browser's online/offline events; null when not listening. */
  private unwatchNetwork: (() => void) | null = null;
  private readonly tokens: TokenKeeper;
  private _session: SessionInfo | undefined;
  private _node: string | undefined;

  /**
   * `url`: a gateway's WebSocket URL, or several (e.g. one per gateway or region): the client uses
   * the first, and after a failure on one (drop, refused or failed socket, handshake timeout,
   * silent link, server shutdown) tries the next on its next attempt, wrapping around.
   */
  constructor(url: string | readonly string[], options: ClientOptions = {}) {
    super();
    const urls = typeof url === 'string' ? [url] : [...url];
    if (urls.length === 0 || urls.some((u) => typeof u !== 'string' || u === '')) throw new TypeError('SymphonicClient needs a gateway URL (or a non-empty list of them)');
    this.urls = urls;
    this.opts = options;
    this.codec = clientCodecFor(options.encoding ?? 'msgpack');
    this.backoffOpts = { min: options.reconnect?.min ?? DEFAULT_BACKOFF.min, max: options.reconnect?.max ?? DEFAULT_BACKOFF.max };
    this.requests = new Requests((frame) => this.sendFrame(frame), options.maxQueued ?? 1000);
    this.tokens = new TokenKeeper(options.token, options.getToken, {
      sendInBand: (token) => (this.welcomed ? this.request<{ exp?: number }>({ t: 'refresh', token }) : null),
      error: (err) => this.emit('error', err),
    });
    this._session = options.session;
  }

  /** The gateway URL in use (while connecting: the one being tried or tried next). */
  get url(): string {
    return this.urls[this.urlIndex]!;
  }
  /** disconnected | connecting | connected | closed */
  get state(): ConnectionState {
    return this._state;
  }
  /** The session to resume with (persist it to resume across page loads). */
  get session(): SessionInfo | undefined {
    return this._session;
  }
  /** The gateway node currently serving this client. */
  get node(): string | undefined {
    return this._node;
  }

  /** Starts connecting (and keeps reconnecting until close()). Await `ready()` to know when it is up. */
  connect(): void {
    if (!this.dispatch({ type: 'connect' }, 0, 'connect called')) return;
    this.attempts = 0;
    this.listenNetwork(true);
    if (isOffline()) this.goOffline();
    else this.openNow();
  }

  /** Closes the socket and stops reconnecting; pending requests reject with ConnectionClosedError. */
  close(): void {
    if (this._state === 'closed') return;
    this.shutdown(CloseCode.Normal, 'closed by the client');
  }

  /** Drops the current socket and reconnects at once (resuming the session and every subscription). */
  reconnect(): void {
    if (this._state === 'disconnected' || this._state === 'closed') return this.connect();
    this.abandonSocket(0, 'reconnect requested');
    this.dispatch({ type: 'lost' }, 0, 'reconnect requested');
    this.openNow();
  }

  /** Resolves once connected; rejects on timeout or if the client closes first. */
  ready(timeoutMs = this.opts.timeout ?? 10_000): Promise<void> {
    if (this._state === 'connected') return Promise.resolve();
    if (this._state === 'closed') return Promise.reject(new ConnectionClosedError('client is closed'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new TimeoutError(`not connected after ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.on('state', ({ newState, code, reason }) => {
        if (newState !== 'connected' && newState !== 'closed') return;
        off();
        clearTimeout(timer);
        if (newState === 'connected') resolve();
        else reject(new ConnectionClosedError(`client closed: ${reason}`, code));
      });
    });
  }

  /**
   * Subscribes to a topic and returns its live Subscription (already started). Types flow from the
   * optional schemas: `subscribe('t', { schema: BoardSchema })` types `sub.state`.
   */
  subscribe<S = unknown, E = unknown>(topic: string, options: SubscribeOptions<S, E> = {}): Subscription<S, E> {
    const err = topicError(topic);
    if (err) throw new SymphonicError(ErrorCode.BadTopic, err, topic);
    if (this.subs.has(topic)) throw new SymphonicError(ErrorCode.AlreadySubscribed, `already subscribed to ${topic}; use getSubscription()`, topic);
    const sub = new Subscription<S, E>(this.host, topic, options);
    sub.subscribe();
    return sub;
  }

  getSubscription(topic: string): Subscription<any, any> | undefined {
    return this.subs.get(topic);
  }

  subscriptions(): Subscription<any, any>[] {
    return [...this.subs.values()];
  }

  /** Publishes and resolves with the ack `{ seq, epoch }`; rejects with a SymphonicError (`.code`). */
  async publish(topic: string, data: unknown, options: PublishOptions = {}): Promise<PublishAck> {
    const err = topicError(topic);
    if (err) throw new SymphonicError(ErrorCode.BadTopic, err, topic);
    const ack = await this.request<AckFrame>({ t: 'pub', topic, kind: options.kind ?? 'event', data }, options.timeout);
    return { seq: ack.seq, epoch: ack.epoch };
  }

  /** Retained messages of a topic after `since`, oldest first. */
  async history(topic: string, options: HistoryOptions = {}): Promise<HistoryResult> {
    const frame: Record<string, unknown> = { t: 'history', topic, limit: options.limit ?? 100 };
    if (options.since !== undefined) frame.since = options.since;
    const r = await this.request<HistoryResultFrame>(frame, options.timeout);
    const messages = r.messages.map((m) => ({ topic, seq: m.seq, prev: m.prev, ts: m.ts, kind: m.kind, data: m.data }) as Message);
    return { topic, epoch: r.epoch, seq: r.seq, messages, complete: r.complete };
  }

  /** Round trip to the gateway, ms. */
  async ping(timeout?: number): Promise<number> {
    const t0 = Date.now();
    await this.request({ t: 'ping' }, timeout);
    return Date.now() - t0;
  }

  /**
   * Asks `getToken` for a fresh token and hands it to the gateway in band (`refresh`), without
   * reconnecting; it is also used for later handshakes. Called by itself before the token's `exp`.
   */
  refreshToken(): Promise<void> {
    return this.tokens.refresh();
  }

  /** The session's app-defined state: restored from the gateway on resume, set with `setSessionState`. */
  get sessionState(): unknown {
    return this._sessionState;
  }

  /** Stores small app-defined state with the session (on the gateway, or the cluster's registry). */
  async setSessionState(state: unknown, timeout?: number): Promise<void> {
    await this.request({ t: 'session', state: state ?? null }, timeout);
    this._sessionState = state ?? undefined;
  }

  // ---- requests ---------------------------------------------------------------------------------

  private request<F>(frame: Record<string, unknown>, timeout = this.opts.timeout ?? 10_000): Promise<F> {
    if (this._state === 'closed' || (this._state === 'disconnected' && !this.unwatchNetwork)) {
      return Promise.reject(new ConnectionClosedError(`client is ${this._state}; call connect() first`));
    }
    return this.requests.request<F>(frame, timeout, this.welcomed);
  }

  /** What subscriptions see of the client. */
  private readonly host: SubscriptionHost = ((c: SymphonicClient): SubscriptionHost => ({
    get connected() {
      return c.welcomed;
    },
    get requestTimeout() {
      return c.opts.timeout ?? 10_000;
    },
    get maxBuffer() {
      return c.opts.maxBuffer ?? 10_000;
    },
    get backoff() {
      return c.backoffOpts;
    },
    call: (frame, reply, fail) => c.requests.call(frame, c.opts.timeout ?? 10_000, reply, fail),
    attach: (sub) => {
      const existing = c.subs.get(sub.topic);
      if (existing && existing !== sub) throw new SymphonicError(ErrorCode.AlreadySubscribed, `already subscribed to ${sub.topic}`, sub.topic);
      c.subs.set(sub.topic, sub);
    },
    detach: (sub) => {
      if (c.subs.get(sub.topic) === sub) c.subs.delete(sub.topic);
    },
  }))(this);

  // ---- socket lifecycle -------------------------------------------------------------------------

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
        this.emit('error', new SymphonicError(ErrorCode.Unauthorized, `getToken failed: ${(e as Error)?.message ?? e}`));
        return this.retryLater(0, 'getToken failed');
      }
      if (gen !== this.socketGen || this._state !== 'connecting') return;
    }
    const Ctor = this.opts.WebSocket ?? defaultWebSocket();
    if (!Ctor) {
      const err = new SymphonicError(ClientErrorCode.NoTransport, 'no WebSocket available: in Node 20 pass { WebSocket } from the "ws" package');
      this.emit('error', err);
      return this.shutdown(0, err.message);
    }
    let socket: SocketLike;
    try {
      socket = openSocket(Ctor, this.url, this.codec.subprotocol);
    } catch (e) {
      this.emit('error', new SymphonicError(ErrorCode.BadRequest, `cannot open ${this.url}: ${(e as Error)?.message ?? e}`));
      this.nextUrl();
      return this.retryLater(0, 'socket constructor failed');
    }
    this.socket = socket;
    this.welcomed = false;
    socket.onopen = () => gen === this.socketGen && this.onOpen(token);
    socket.onmessage = (ev) => gen === this.socketGen && this.onData(ev.data);
    socket.onclose = (ev) => gen === this.socketGen && this.onSocketClosed(ev.code, ev.reason || 'socket closed');
    socket.onerror = noop; // a close event follows every error
  }

  private onOpen(token: string | undefined): void {
    const active = [...this.subs.values()].filter((sub) => sub.status !== 'unsubscribed');
    const hello = helloFrame({
      token,
      session: this._session,
      subscriptions: active.map((sub) => ({ topic: sub.topic, position: sub.position })),
      restore: this.opts.restore !== false,
      name: this.opts.name,
    });
    this.restoreAsked = hello.restore;
    this.sendFrame(hello.frame);
    const limit = this.opts.handshakeTimeout ?? 10_000;
    this.handshakeTimer = setTimeout(() => this.drop(CloseCode.HandshakeTimeout, `no welcome within ${limit} ms`), limit);
  }

  private onData(data: unknown): void {
    this.watchdog.touch();
    let frame: { t?: unknown; id?: unknown };
    try {
      frame = this.codec.decode(data) as typeof frame;
    } catch (e) {
      this.emit('error', new SymphonicError(ErrorCode.BadFrame, `undecodable frame from the server: ${(e as Error)?.message ?? e}`));
      return;
    }
    if (typeof frame !== 'object' || frame === null) return;
    switch (frame.t) {
      case 'welcome':
        return this.onWelcome(frame as WelcomeFrame);
      case 'hb':
        return;
      case 'msg': {
        const m = frame as MsgFrame;
        this.subs.get(m.topic)?._message(m);
        return;
      }
      case 'error': {
        const e = frame as ErrorFrame;
        if (e.code === ErrorCode.TokenExpired) this.tokens.expired();
        if (e.id === undefined && e.topic !== undefined) {
          if (this.subs.get(e.topic)?._restoreFailed(errorFromFrame(e))) return;
          // A restore overtaken by the app's own unsubscribe: nothing the app needs to hear.
          if (e.code === ErrorCode.NotSubscribed && !this.subs.has(e.topic)) return;
        }
        if (e.id === undefined || !this.requests.fail(e.id, errorFromFrame(e))) this.emit('error', errorFromFrame(e));
        return;
      }
      case 'subscribed':
        if (typeof frame.id === 'number') return void this.requests.reply(frame.id, frame as { t: string });
        return this.onRestored(frame as SubscribedFrame);
      default:
        if (typeof frame.id === 'number') this.requests.reply(frame.id, frame as { t: string });
    }
  }

  private onWelcome(w: WelcomeFrame): void {
    if (this.welcomed) return;
    this.clearTimer('handshakeTimer');
    this.welcomed = true;
    this._session = { id: w.session, key: w.key };
    this._node = w.node;
    if (w.resumed && w.state !== undefined) this._sessionState = w.state;
    if (!w.resumed) this._sessionState = undefined;
    this.tokens.schedule(w.exp);
    this.watchdog.start(w.heartbeat);
    this.attempts = 0;
    this.dispatch({ type: 'welcome' }, 0, w.resumed ? 'session resumed' : 'new session');
    this.emit('connected', { url: this.url, session: w.session, resumed: w.resumed, node: w.node, heartbeat: w.heartbeat });
    // Restored by the server: the session's topics (those this client subscribed to before).
    const restored = this.restoreAsked && w.resumed ? new Set(w.topics ?? []) : new Set<string>();
    for (const sub of [...this.subs.values()]) {
      if (restored.has(sub.topic) && sub.status !== 'unsubscribed') sub._awaitRestore();
      else sub._connected();
    }
    this.requests.flush();
  }

  /** A `subscribed` without `id`: a subscription the server restored (`hello.restore`). */
  private onRestored(f: SubscribedFrame): void {
    const sub = this.subs.get(f.topic);
    if (sub) return void sub._restored(f); // false: it has moved on (resubscribing itself)
    // Unsubscribed while offline: the server holds it for this socket, so let it go.
    this.requests.call({ t: 'unsub', topic: f.topic }, this.opts.timeout ?? 10_000, noop, noop);
  }

  private onSocketClosed(code: number, reason: string): void {
    this.abandonSocket(code, reason);
    if (this._state === 'closed') return;
    if (isTerminalClose(code)) return this.shutdown(code, reason);
    if (code === CloseCode.TokenExpired) this.tokens.expired();
    // Someone else resumed our session: taking it back would make the two fight; start a fresh one.
    if (code === CloseCode.SessionTakenOver) this._session = undefined;
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
    this.urlIndex = (this.urlIndex + 1) % this.urls.length;
  }

  private retryLater(code: number, reason: string): void {
    if (!this.dispatch({ type: 'lost' }, code, reason)) return;
    const max = this.opts.reconnect?.maxAttempts ?? Infinity;
    if (this.attempts >= max) return this.shutdown(code, `gave up after ${this.attempts} reconnect attempts: ${reason}`);
    const attempt = this.attempts++;
    const delay = code === CloseCode.ServerShutdown
      ? shutdownDelay(attempt, this.backoffOpts, this.opts.reconnect?.shutdownSpread ?? 5_000)
      : backoffDelay(attempt, this.backoffOpts);
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
    this.welcomed = false;
    this.clearTimer('handshakeTimer');
    this.tokens.cancel();
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
    for (const sub of [...this.subs.values()]) sub._disconnected(code, reason);
    this.requests.failInFlight(new ConnectionClosedError(`connection closed before the reply: ${reason}`, code));
  }

  private shutdown(code: number, reason: string): void {
    this.abandonSocket(code, reason);
    this.clearTimer('reconnectTimer');
    this.listenNetwork(false);
    this.dispatch({ type: 'close' }, code, reason);
    this.requests.failQueued(new ConnectionClosedError(`client closed: ${reason}`, code));
  }

  private goOffline(): void {
    if (this._state !== 'connected' && this._state !== 'connecting') return;
    this.abandonSocket(0, 'network offline');
    this.clearTimer('reconnectTimer');
    this.dispatch({ type: 'offline' }, 0, 'network offline');
  }

  // ---- helpers ----------------------------------------------------------------------------------

  /** Sends on the current socket. Throws (a SymphonicError) only when the frame cannot be encoded. */
  private sendFrame(frame: object): boolean {
    if (!this.socket) return false;
    let bytes: Uint8Array | string;
    try {
      bytes = this.codec.encode(frame);
    } catch (e) {
      throw new SymphonicError(ErrorCode.InvalidFrame, `cannot encode the ${(frame as { t?: string }).t} frame: ${(e as Error)?.message ?? e}`, (frame as { topic?: string }).topic);
    }
    try {
      this.socket.send(bytes);
      return true;
    } catch {
      return false; // the socket is closing: its close event follows and fails what waits on it
    }
  }

  private dispatch(event: ConnectionEvent, code: number, reason: string): boolean {
    const next = nextConnectionState(this._state, event);
    if (next === null) return false;
    if (next !== this._state) {
      const oldState = this._state;
      this._state = next;
      this.emit('state', { oldState, newState: next, code, reason });
    }
    return true;
  }

  private listenNetwork(on: boolean): void {
    if (!on) {
      this.unwatchNetwork?.();
      this.unwatchNetwork = null;
    } else if (!this.unwatchNetwork && this.opts.networkEvents !== false) {
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

// Position is re-exported for convenience of `since` options.
export type { Position };
