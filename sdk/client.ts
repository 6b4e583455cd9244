/**
 * SymphonicClient, the public API: one WebSocket to a gateway, kept alive across drops (and moved
 * to the next of several gateway URLs after a failure on one). The parts each do one job: the
 * socket lifecycle (./connection.ts: connect, reconnect, heartbeat, close), the token
 * (./token.ts), the `hello` (./hello.ts), requests (./requests.ts) and subscriptions
 * (./subscription.ts); the client wires them together, handles `welcome` and routes the server's
 * frames to subscriptions and pending requests.
 */
import { CloseCode, ErrorCode } from '../protocol/codes.ts';
import type {
  AckFrame,
  DirectFrame,
  ErrorFrame,
  HistoryResultFrame,
  MessageKind,
  MsgFrame,
  Position,
  PresenceFrame,
  RpcResultFrame,
  SubscribedFrame,
  WelcomeFrame,
} from '../protocol/frames.ts';
import { topicError } from '../protocol/topic.ts';
import type { Encoding } from '../protocol/version.ts';
import { DEFAULT_BACKOFF, type BackoffOptions } from './backoff.ts';
import { clientCodecFor } from './codec.ts';
import { Connection } from './connection.ts';
import { isPeerSignal } from '../protocol/peer-signal.ts';
import { checkRecipient, InboxPosition, type DirectMessage, type Recipient } from './direct.ts';
import type { ConnectionState, StateChange } from './connection-state.ts';
import { Emitter } from './emitter.ts';
import { ConnectionClosedError, SequenceConflictError, SymphonicError, TimeoutError } from './errors.ts';
import { helloFrame } from './hello.ts';
import type { PresenceSnapshot } from './presence.ts';
import { Requests } from './requests.ts';
import { errorFromFrame, Subscription, type SubscribeOptions, type SubscriptionHost } from './subscription.ts';
import { TokenKeeper, type GetToken } from './token.ts';
import type { WebSocketConstructor } from './transport.ts';
import type { HistoryResult, Message, PublishAck, SessionInfo } from './types.ts';

export interface ClientOptions {
  /** WebSocket class; defaults to `globalThis.WebSocket`. In Node 20 pass `ws`'s: `{ WebSocket: (await import('ws')).WebSocket }`. */
  WebSocket?: WebSocketConstructor;
  /** Wire encoding: 'msgpack' (default, binary) or 'json' (text, easier to debug). */
  encoding?: Encoding;
  /**
   * msgpack only: ask for compact `msg` frames (a short array naming the topic by alias: about 20
   * bytes around each message's data instead of 60). Default true; the messages the app sees are the same.
   */
  compact?: boolean;
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
  /**
   * No `welcome` this long after the socket opened: drop and retry, ms; default 20000. Longer than
   * the server's handshake timeout (10 s): the server answers every `hello` it got, and in a mass
   * reconnect its session store may take seconds; dropping then would only queue the client again.
   */
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
  /** What this client shows on presence topics (`hello.info`, small JSON); a token's `info` claim takes precedence. */
  info?: unknown;
}

export interface ConnectedInfo {
  /** The gateway URL this connection went to. */
  url: string;
  session: string;
  resumed: boolean;
  node: string;
  heartbeat: number;
  /** On a resume: direct messages sent meanwhile were dropped before it (inbox overflow). */
  inboxLost?: boolean;
}

export interface ClientEvents {
  state: StateChange<ConnectionState>;
  connected: ConnectedInfo;
  /** Errors not tied to a request: frames the SDK cannot decode, server errors without an id, token hook failures. */
  error: SymphonicError;
  /** A direct message to this session or its user (`send`), each once, in order. */
  direct: DirectMessage;
  /** A direct message whose data has a `$peer` key: peer-channel signalling (sdk/peer/), not on `direct`. */
  signal: DirectMessage;
}

export interface PublishOptions {
  kind?: MessageKind;
  timeout?: number;
  /**
   * Conditional publish: stored only if the topic's last sequence is still this (0: no message
   * yet); else it rejects with SequenceConflictError (`current`) and nothing is stored.
   */
  expect?: number;
}

export interface UpdateOptions {
  /** Attempts before giving up with the last SequenceConflictError; default 20. */
  attempts?: number;
  /** Per publish, ms; default the client's request timeout. */
  timeout?: number;
}

/** What `iceServers()` answers. */
export interface IceServers {
  readonly servers: ReadonlyArray<{ urls: string[]; username?: string; credential?: string }>;
  /** When the TURN credentials expire (seconds since the epoch); absent when none were issued. */
  readonly expires?: number;
}

export interface HistoryOptions {
  /** Messages after this sequence (absent: from the oldest retained). */
  since?: number;
  /** At most this many (1-1000, default 100). */
  limit?: number;
  timeout?: number;
}

const KINDS = ['event', 'set', 'patch'] as const;
/** Compact messages held for a `subscribed` not yet received; past it a subscription sees a gap and resyncs. */
const MAX_UNALIASED = 10_000;
export interface RpcOptions {
  /** Wait at most this long (ms, 1-300000; default the client's `timeout`); the method's configured timeout still caps it. */
  timeout?: number;
}

/** How much longer than an RPC's timeout the SDK waits, so the gateway's 5002 (not a local timeout) ends a late call. */
const RPC_GRACE_MS = 1000;

export class SymphonicClient extends Emitter<ClientEvents> {
  /** Every gateway URL this client may use, in order of preference. */
  readonly urls: readonly string[];
  private readonly opts: ClientOptions;
  private readonly backoffOpts: BackoffOptions;
  private readonly conn: Connection;
  private readonly tokens: TokenKeeper;
  private readonly requests: Requests;
  private readonly subs = new Map<string, Subscription<any, any>>();
  /** The last `hello` asked the server to restore the session's subscriptions. */
  private restoreAsked = false;
  private _sessionState: unknown;
  /** Compact connections: alias -> topic, from `subscribed` frames. */
  private readonly aliases = new Map<number, string>();
  /** Compact messages whose alias no `subscribed` has named yet. */
  private unaliased: unknown[][] = [];
  private _session: SessionInfo | undefined;
  private _node: string | undefined;
  private readonly inbox = new InboxPosition();

  /**
   * `url`: a gateway's WebSocket URL, or several (e.g. one per gateway or region): the client uses
   * the first, and after a failure on one (drop, refused or failed socket, handshake timeout,
   * silent link, server shutdown) tries the next on its next attempt, wrapping around.
   */
  constructor(url: string | readonly string[], options: ClientOptions = {}) {
    super();
    const urls = typeof url === 'string' ? [url] : [...url];
    if (urls.length === 0 || urls.some((u) => typeof u !== 'string' || u === ''))
      throw new TypeError('SymphonicClient needs a gateway URL (or a non-empty list of them)');
    this.urls = urls;
    this.opts = options;
    this.backoffOpts = { min: options.reconnect?.min ?? DEFAULT_BACKOFF.min, max: options.reconnect?.max ?? DEFAULT_BACKOFF.max };
    this.requests = new Requests((frame) => this.conn.send(frame), options.maxQueued ?? 1000);
    this._session = options.session;
    this.tokens = new TokenKeeper(options.token, options.getToken, {
      sendInBand: (token) => (this.conn.connected ? this.request<{ exp?: number }>({ t: 'refresh', token }) : null),
      error: (err) => this.emit('error', err),
    });
    this.conn = new Connection(
      {
        urls,
        codec: clientCodecFor(options.encoding ?? 'msgpack'),
        backoff: this.backoffOpts,
        WebSocket: options.WebSocket,
        maxAttempts: options.reconnect?.maxAttempts ?? Infinity,
        shutdownSpread: options.reconnect?.shutdownSpread ?? 5_000,
        handshakeTimeout: options.handshakeTimeout ?? 20_000,
        networkEvents: options.networkEvents !== false,
      },
      this.tokens,
      {
        hello: (token) => this.hello(token),
        frame: (frame) => this.onFrame(frame),
        lost: (code, reason) => this.onLost(code, reason),
        closed: (code, reason) => this.requests.failQueued(new ConnectionClosedError(`client closed: ${reason}`, code)),
        state: (change) => this.emit('state', change),
        error: (err) => this.emit('error', err),
      },
    );
  }

  /** The gateway URL in use (while connecting: the one being tried or tried next). */
  get url(): string {
    return this.conn.url;
  }
  /** disconnected | connecting | connected | closed */
  get state(): ConnectionState {
    return this.conn.state;
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
    this.conn.connect();
  }

  /** Closes the socket and stops reconnecting; pending requests reject with ConnectionClosedError. */
  close(): void {
    this.conn.close();
  }

  /** Drops the current socket and reconnects at once (resuming the session and every subscription). */
  reconnect(): void {
    this.conn.reconnect();
  }

  /** Resolves once connected; rejects on timeout or if the client closes first. */
  ready(timeoutMs = this.opts.timeout ?? 10_000): Promise<void> {
    if (this.state === 'connected') return Promise.resolve();
    if (this.state === 'closed') return Promise.reject(new ConnectionClosedError('client is closed'));
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

  /** A topic's presence read once, without subscribing (the topic's namespace must have presence on: else 2009). */
  async presence(topic: string, options: { timeout?: number } = {}): Promise<PresenceSnapshot> {
    const err = topicError(topic);
    if (err) throw new SymphonicError(ErrorCode.BadTopic, err, topic);
    const r = await this.request<PresenceFrame>({ t: 'presence', topic }, options.timeout);
    return { count: r.count, ...(r.members ? { members: r.members } : {}) };
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
    const frame = { t: 'pub', topic, kind: options.kind ?? 'event', data, ...(options.expect === undefined ? {} : { expect: options.expect }) };
    const ack = await this.request<AckFrame>(frame, options.timeout);
    return { seq: ack.seq, epoch: ack.epoch };
  }

  /**
   * Changes a topic's shared state safely when several clients write at once (optimistic
   * concurrency): reads the state and its position from the topic's subscription (subscribing
   * first if needed), publishes `change(state)` as a `set` expected at that position, and on a
   * conflict waits for the newer state and tries again, with jittered backoff, at most `attempts`
   * times. Resolves with the ack of the write that was stored.
   */
  async update<S>(topic: string, change: (state: S | undefined) => S, options: UpdateOptions = {}): Promise<PublishAck> {
    const sub = (this.subs.get(topic) as Subscription<S, unknown> | undefined) ?? this.subscribe<S>(topic);
    const attempts = options.attempts ?? 20;
    for (let attempt = 1; ; attempt++) {
      await sub.ready(options.timeout);
      const seq = sub.position?.seq ?? 0;
      try {
        return await this.publish(topic, change(sub.state), {
          kind: 'set',
          expect: seq,
          ...(options.timeout === undefined ? {} : { timeout: options.timeout }),
        });
      } catch (e) {
        if (!(e instanceof SequenceConflictError) || attempt >= attempts) throw e;
        // The newer state arrives on the subscription; wait for it (bounded), then back off a little.
        await reachedSeq(sub, e.current, options.timeout ?? this.opts.timeout ?? 10_000);
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(100, 5 * 2 ** attempt)));
      }
    }
  }

  /** Retained messages of a topic after `since`, oldest first. */
  async history(topic: string, options: HistoryOptions = {}): Promise<HistoryResult> {
    const frame: Record<string, unknown> = { t: 'history', topic, limit: options.limit ?? 100 };
    if (options.since !== undefined) frame.since = options.since;
    const r = await this.request<HistoryResultFrame>(frame, options.timeout);
    const messages = r.messages.map((m) => ({ topic, seq: m.seq, prev: m.prev, ts: m.ts, kind: m.kind, data: m.data }) as Message);
    return { topic, epoch: r.epoch, seq: r.seq, messages, complete: r.complete };
  }

  /**
   * Calls a backend service (docs/sdk.md "RPC") and resolves to its answer. Rejects with a
   * SymphonicError whose `code` says why: 2011 no such method, 3000/3001 not allowed, 2012
   * (a ServiceError with the service's `data`), 4005 answer too large, 5002 timeout, 5003 no
   * service running.
   */
  async rpc<T = unknown>(method: string, data?: unknown, options: RpcOptions = {}): Promise<T> {
    const timeout = Math.min(Math.max(1, Math.round(options.timeout ?? this.opts.timeout ?? 10_000)), 300_000);
    const r = await this.request<RpcResultFrame>({ t: 'rpc', method, data: data ?? null, timeout }, timeout + RPC_GRACE_MS);
    return r.data as T;
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

  /**
   * STUN/TURN servers for WebRTC peer connections, as the gateway hands them out: pass `servers`
   * as RTCPeerConnection's `iceServers`. TURN credentials expire at `expires` (seconds since the
   * epoch): ask again for peer connections opened later.
   */
  async iceServers(timeout?: number): Promise<IceServers> {
    const r = await this.request<{ servers: IceServers['servers']; expires?: number }>({ t: 'ice' }, timeout);
    return { servers: r.servers, ...(r.expires === undefined ? {} : { expires: r.expires }) };
  }

  /**
   * A direct message to a session (`{session}`) or to every session of a user (`{user}`), on any
   * gateway; resolves with how many sessions it was stored for. Rejects with 2010 when there is
   * nobody, 3000/3001 when this client may not send (`direct.clients`), 4002 when too large.
   */
  async send(to: Recipient, data: unknown, timeout?: number): Promise<number> {
    const r = await this.request<{ sessions: number }>({ t: 'send', to: checkRecipient(to), data: data ?? null }, timeout);
    return r.sessions;
  }

  // ---- requests ---------------------------------------------------------------------------------

  private request<F>(frame: Record<string, unknown>, timeout = this.opts.timeout ?? 10_000): Promise<F> {
    if (this.conn.stopped) return Promise.reject(new ConnectionClosedError(`client is ${this.state}; call connect() first`));
    return this.requests.request<F>(frame, timeout, this.conn.connected);
  }

  /** What subscriptions see of the client. */
  private readonly host: SubscriptionHost = ((c: SymphonicClient): SubscriptionHost => ({
    get connected() {
      return c.conn.connected;
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

  // ---- the connection's hooks -------------------------------------------------------------------

  private hello(token: string | undefined): object {
    const active = [...this.subs.values()].filter((sub) => sub.status !== 'unsubscribed');
    const hello = helloFrame({
      token,
      session: this._session,
      subscriptions: active.map((sub) => ({ topic: sub.topic, position: sub.position })),
      restore: this.opts.restore !== false,
      name: this.opts.name,
      info: this.opts.info,
      compact: this.opts.compact !== false && (this.opts.encoding ?? 'msgpack') === 'msgpack',
      inbox: this.inbox.position,
    });
    this.restoreAsked = hello.restore;
    return hello.frame;
  }

  private onFrame(frame: { t?: unknown; id?: unknown }): void {
    if (Array.isArray(frame)) return this.onCompact(frame);
    switch (frame.t) {
      case 'welcome':
        return this.onWelcome(frame as WelcomeFrame);
      case 'hb':
        return;
      case 'dm': {
        const m = this.inbox.accept(frame as DirectFrame);
        if (m) this.emit(isPeerSignal(m.data) ? 'signal' : 'direct', m);
        return;
      }
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
        if (typeof (frame as SubscribedFrame).alias === 'number') this.alias((frame as SubscribedFrame).alias!, (frame as SubscribedFrame).topic);
        if (typeof frame.id === 'number') return void this.requests.reply(frame.id, frame as { t: string });
        return this.onRestored(frame as SubscribedFrame);
      case 'presence':
        if (typeof frame.id === 'number') return void this.requests.reply(frame.id, frame as { t: string });
        return void this.subs.get((frame as PresenceFrame).topic)?.presence._apply(frame as PresenceFrame);
      default:
        if (typeof frame.id === 'number') this.requests.reply(frame.id, frame as { t: string });
    }
  }

  /** A compact `msg`: [1, alias, seq, seq - prev, kind code, data, ts] (docs/protocol.md section 7). */
  private onCompact(f: unknown[]): void {
    if (f[0] !== 1) return;
    const topic = this.aliases.get(f[1] as number);
    if (topic === undefined) {
      // Messages may come before their `subscribed` (which names the alias): held until it does.
      if (this.unaliased.length < MAX_UNALIASED) this.unaliased.push(f);
      return;
    }
    const seq = f[2] as number;
    const m = { t: 'msg', topic, seq, prev: seq - (f[3] as number), kind: KINDS[f[4] as number] ?? 'event', data: f[5], ts: f[6] as number } as MsgFrame;
    this.subs.get(topic)?._message(m);
  }

  /** A `subscribed` named an alias: first the messages that came before it, as if in their place. */
  private alias(alias: number, topic: string): void {
    this.aliases.set(alias, topic);
    if (this.unaliased.length === 0) return;
    const held = this.unaliased;
    this.unaliased = [];
    for (const f of held) this.onCompact(f);
  }

  private onWelcome(w: WelcomeFrame): void {
    if (this.conn.connected) return;
    // Aliases belong to the connection's gateway.
    this.aliases.clear();
    this.unaliased = [];
    this._session = { id: w.session, key: w.key };
    this._node = w.node;
    if (w.resumed && w.state !== undefined) this._sessionState = w.state;
    if (!w.resumed) this._sessionState = undefined;
    if (!w.resumed) this.inbox.reset();
    this.tokens.schedule(w.exp);
    this.conn.welcomed(w.heartbeat, w.resumed ? 'session resumed' : 'new session');
    this.emit('connected', {
      url: this.url,
      session: w.session,
      resumed: w.resumed,
      node: w.node,
      heartbeat: w.heartbeat,
      ...(w.inboxLost ? { inboxLost: true } : {}),
    });
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

  /** The socket in use is gone: subscriptions wait for the next one, requests on it fail. */
  private onLost(code: number, reason: string): void {
    this.tokens.cancel();
    for (const sub of [...this.subs.values()]) sub._disconnected(code, reason);
    this.requests.failInFlight(new ConnectionClosedError(`connection closed before the reply: ${reason}`, code));
    // Someone else resumed our session: taking it back would make the two fight; start a fresh one.
    if (code === CloseCode.SessionTakenOver) this._session = undefined;
  }
}

function noop(): void {}

// Position is re-exported for convenience of `since` options.
export type { Position };

/** Resolves once the subscription has applied `seq` (or after `timeoutMs`: the caller re-reads anyway). */
function reachedSeq(sub: Subscription<any, any>, seq: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    if ((sub.position?.seq ?? 0) >= seq) return resolve();
    const done = () => {
      clearTimeout(timer);
      off();
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    const off = sub.on('change', () => {
      if ((sub.position?.seq ?? 0) >= seq) done();
    });
  });
}
