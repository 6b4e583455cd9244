/**
 * A subscription: one topic's live state on this client. It drives its own state machine
 * (./subscription-state.ts), keeps its position and document in a TopicLog (./topic-log.ts), and
 * talks to the server only through the small `SubscriptionHost` the client gives it.
 */
import { ErrorCode } from '../protocol/codes.ts';
import type { ErrorFrame, Position, Publication, SubscribedFrame } from '../protocol/frames.ts';
import { backoffDelay, type BackoffOptions } from './backoff.ts';
import type { StateChange } from './connection-state.ts';
import { Emitter } from './emitter.ts';
import { ClientErrorCode, SequenceConflictError, ServiceError, SymphonicError, TimeoutError, ValidationError } from './errors.ts';
import { Presence } from './presence.ts';
import { type Schema, validate } from './schema.ts';
import { nextSubscriptionStatus, type SubscriptionEvent, type SubscriptionStatus } from './subscription-state.ts';
import { TopicLog } from './topic-log.ts';
import type { Message } from './types.ts';

/** What a subscription needs from its client. */
export interface SubscriptionHost {
  readonly connected: boolean;
  readonly requestTimeout: number;
  readonly maxBuffer: number;
  readonly backoff: BackoffOptions;
  /** Sends a request (connected only); exactly one of the callbacks runs, unless the socket drops first. */
  call(frame: { t: 'sub' | 'unsub'; topic: string; since?: Position }, reply: (frame: { t: string }) => void, fail: (err: SymphonicError) => void): void;
  attach(sub: Subscription<any, any>): void;
  detach(sub: Subscription<any, any>): void;
}

export interface SubscribedInfo<S> {
  /** The subscribe asked to resume from a position. */
  wasRecovering: boolean;
  /** Every message since that position was replayed; false after a resume means messages were lost and `state` is a fresh snapshot. */
  recovered: boolean;
  position: Position;
  state: S | undefined;
}

export interface Change<S> {
  state: S | undefined;
  seq: number;
  /** 'snapshot': replaced by the server's snapshot; 'message': a set/patch was applied. */
  cause: 'snapshot' | 'message';
}

export interface SubscriptionEvents<S, E> {
  status: StateChange<SubscriptionStatus>;
  subscribed: SubscribedInfo<S>;
  message: Message<S, E>;
  change: Change<S>;
  error: SymphonicError;
}

export interface SubscribeOptions<S = unknown, E = unknown> {
  /** Validates (and types) the topic's state document after every snapshot, set and patch. */
  schema?: Schema<S>;
  /** Validates (and types) the data of `event` messages; failing ones are not delivered. */
  events?: Schema<E>;
  /** Start from a known position (e.g. persisted by the app) instead of a fresh snapshot. */
  since?: Position;
  /** The document at `since`, when resuming a stateful topic from a persisted position. */
  initialState?: S;
  onMessage?: (message: Message<S, E>) => void;
  onChange?: (change: Change<S>) => void;
  onSubscribed?: (info: SubscribedInfo<S>) => void;
  onStatus?: (change: StateChange<SubscriptionStatus>) => void;
  onError?: (error: SymphonicError) => void;
}

export class Subscription<S = unknown, E = unknown> extends Emitter<SubscriptionEvents<S, E>> {
  readonly topic: string;
  /** Who is on the topic, when its namespace has presence on (filled after `subscribed`). */
  readonly presence = new Presence();
  private _status: SubscriptionStatus = 'unsubscribed';
  private _recovered = false;
  private _wasRecovering = false;
  private validState: S | undefined;
  private readonly log: TopicLog;
  /** Bumped on every request and drop: replies to an older one are stale. */
  private generation = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private retries = 0;
  private brokenStreak = 0;
  private lastFailure: SymphonicError | undefined;
  /** The generation whose server-side restore (`hello.restore`) is awaited; 0: none. */
  private restoring = 0;

  constructor(
    private readonly host: SubscriptionHost,
    topic: string,
    private readonly options: SubscribeOptions<S, E> = {},
  ) {
    super();
    this.topic = topic;
    const start = options.since ? { position: options.since, state: options.initialState } : undefined;
    this.log = new TopicLog(
      { message: (pub, state) => this.onApplied(pub, state), snapshot: (state, seq) => this.onSnapshot(state, seq) },
      host.maxBuffer,
      start,
    );
    if (start) this.validState = options.initialState;
    if (options.onMessage) this.on('message', options.onMessage);
    if (options.onChange) this.on('change', options.onChange);
    if (options.onSubscribed) this.on('subscribed', options.onSubscribed);
    if (options.onStatus) this.on('status', options.onStatus);
    if (options.onError) this.on('error', options.onError);
  }

  get status(): SubscriptionStatus {
    return this._status;
  }
  /** The topic's state document (validated by `schema` when given); undefined until the first snapshot. */
  get state(): S | undefined {
    return this.validState;
  }
  /** The last applied position; undefined until the first `subscribed`. */
  get position(): Position | undefined {
    return this.log.position;
  }
  /** After the last (re)subscribe: every missed message was replayed. */
  get recovered(): boolean {
    return this._recovered;
  }
  /** After the last (re)subscribe: it resumed from a position. */
  get wasRecovering(): boolean {
    return this._wasRecovering;
  }

  /** Starts (or restarts, resuming from the last position) the subscription. */
  subscribe(): void {
    if (this._status !== 'unsubscribed') return;
    this.host.attach(this);
    this.lastFailure = undefined;
    this.transition({ type: 'subscribe' });
    this.sendSub();
  }

  unsubscribe(): void {
    if (!this.transition({ type: 'unsubscribe' })) return;
    const wasLive = this.host.connected;
    this.presence._reset();
    this.stop();
    this.host.detach(this);
    if (wasLive) this.host.call({ t: 'unsub', topic: this.topic }, noop, noop);
  }

  /** Resolves once subscribed; rejects on timeout or if the subscription ends first. */
  ready(timeoutMs = this.host.requestTimeout): Promise<void> {
    if (this._status === 'subscribed') return Promise.resolve();
    if (this._status === 'unsubscribed')
      return Promise.reject(this.lastFailure ?? new SymphonicError(ClientErrorCode.Unsubscribed, `not subscribed to ${this.topic}`, this.topic));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new TimeoutError(`subscribe to ${this.topic} not ready after ${timeoutMs} ms`, this.topic));
      }, timeoutMs);
      const off = this.on('status', ({ newState }) => {
        if (newState !== 'subscribed' && newState !== 'unsubscribed') return;
        off();
        clearTimeout(timer);
        if (newState === 'subscribed') resolve();
        else reject(this.lastFailure ?? new SymphonicError(ClientErrorCode.Unsubscribed, `unsubscribed from ${this.topic}`, this.topic));
      });
    });
  }

  // ---- driven by the client ---------------------------------------------------------------------

  /** @internal The connection is up (welcome received). */
  _connected(): void {
    if (this._status !== 'unsubscribed') this.sendSub();
  }

  /**
   * @internal The resumed session's server restores this topic (`hello.restore`): wait for its
   * `subscribed` without `id`. If none comes within the request timeout, resubscribe.
   */
  _awaitRestore(): void {
    if (this._status === 'unsubscribed') return;
    this.clearRetry();
    this.log.startBuffering();
    const gen = (this.restoring = ++this.generation);
    this.retryTimer = setTimeout(() => {
      if (this.restoring !== gen || gen !== this.generation) return;
      this.restoring = 0;
      this.resync();
    }, this.host.requestTimeout);
  }

  /** @internal The server's `subscribed` (no `id`) for a restored subscription; false if none was awaited. */
  _restored(frame: SubscribedFrame): boolean {
    if (this.restoring === 0 || this.restoring !== this.generation) return false;
    this.restoring = 0;
    this.clearRetry();
    this.onSubscribed(frame);
    return true;
  }

  /** @internal The server refused a restored subscription (an error naming the topic, no `id`). */
  _restoreFailed(err: SymphonicError): boolean {
    if (this.restoring === 0 || this.restoring !== this.generation) return false;
    this.restoring = 0;
    this.clearRetry();
    this.onSubError(err, false);
    return true;
  }

  /** @internal The connection dropped or closed. */
  _disconnected(code: number, reason: string): void {
    this.generation++;
    this.restoring = 0;
    this.clearRetry();
    this.log.reset();
    this.transition({ type: 'lost' }, code, reason);
  }

  /** @internal A `msg` frame for this topic. */
  _message(pub: Publication): void {
    if (this._status === 'unsubscribed') return;
    if (this.log.receive(pub) === 'gap') {
      this.transition({ type: 'gap' }, 0, `gap: message ${pub.seq} follows ${pub.prev}, last seen ${this.log.seq}`);
      this.resync();
    }
  }

  // ---- protocol ---------------------------------------------------------------------------------

  private sendSub(): void {
    this.clearRetry();
    if (!this.host.connected) return;
    this.log.startBuffering();
    const gen = ++this.generation;
    const since = this.log.position;
    this.host.call(
      since ? { t: 'sub', topic: this.topic, since } : { t: 'sub', topic: this.topic },
      (frame) => gen === this.generation && frame.t === 'subscribed' && this.onSubscribed(frame as SubscribedFrame),
      (err) => gen === this.generation && this.onSubError(err, false),
    );
  }

  /** Repairs a gap (or takes over a subscription the server already holds): unsub, then sub from the last position. */
  private resync(): void {
    this.clearRetry();
    if (!this.host.connected) return; // the next connection resubscribes from the position anyway
    this.log.startBuffering();
    const gen = ++this.generation;
    this.host.call(
      { t: 'unsub', topic: this.topic },
      () => gen === this.generation && this.sendSub(),
      (err) => gen === this.generation && (err.code === ErrorCode.NotSubscribed ? this.sendSub() : this.onSubError(err, true)),
    );
  }

  private onSubscribed(frame: SubscribedFrame): void {
    const result = this.log.subscribed(frame);
    if (result.gap) {
      // The replay (or what was buffered) does not continue the chain. Twice in a row means the
      // position cannot be repaired: drop it and take a fresh snapshot.
      if (++this.brokenStreak >= 2) this.log.epoch = undefined;
      this.resync();
      return;
    }
    this.brokenStreak = 0;
    this.retries = 0;
    this._wasRecovering = frame.wasRecovering;
    this._recovered = frame.wasRecovering ? result.recovered : frame.recovered;
    this.transition({ type: 'subscribed' });
    this.emit('subscribed', { wasRecovering: this._wasRecovering, recovered: this._recovered, position: this.log.position!, state: this.validState });
  }

  private onSubError(err: SymphonicError, afterResync: boolean): void {
    if (err.code === ClientErrorCode.ConnectionClosed) return; // the reconnect resubscribes
    if (err.code === ErrorCode.AlreadySubscribed && !afterResync) return this.resync();
    this.emit('error', err);
    if (err.retryable || err.code === ErrorCode.AlreadySubscribed) {
      const delay = backoffDelay(this.retries++, this.host.backoff);
      this.retryTimer = setTimeout(() => (err.code === ErrorCode.AlreadySubscribed ? this.resync() : this.sendSub()), delay);
      return;
    }
    this.lastFailure = err;
    this.transition({ type: 'unsubscribe' }, err.code, err.message);
    this.stop();
    this.host.detach(this);
  }

  // ---- applying ---------------------------------------------------------------------------------

  private onSnapshot(state: unknown, seq: number): void {
    if (this.acceptState(state)) this.emit('change', { state: this.validState, seq, cause: 'snapshot' });
  }

  private onApplied(pub: Publication, state: unknown): void {
    if (pub.kind === 'event') {
      const checked = validate(this.options.events, pub.data);
      if (!checked.ok) return this.invalid(`event ${pub.seq} on ${this.topic} failed its schema`, checked.error);
      this.emit('message', { topic: this.topic, seq: pub.seq, prev: pub.prev, ts: pub.ts, kind: 'event', data: checked.value });
      return;
    }
    const valid = this.acceptState(state);
    this.emit('message', { topic: this.topic, seq: pub.seq, prev: pub.prev, ts: pub.ts, kind: pub.kind, data: pub.data } as Message<S, E>);
    if (valid) this.emit('change', { state: this.validState, seq: pub.seq, cause: 'message' });
  }

  /** Validates a new document; on failure the last valid one stays visible and an error is emitted. */
  private acceptState(state: unknown): boolean {
    if (state === undefined || !this.options.schema) {
      this.validState = state as S | undefined;
      return true;
    }
    const checked = validate(this.options.schema, state);
    if (checked.ok) {
      this.validState = checked.value;
      return true;
    }
    this.invalid(`state of ${this.topic} at ${this.log.seq} failed its schema`, checked.error);
    return false;
  }

  private invalid(message: string, cause: unknown): void {
    this.emit('error', new ValidationError(message, this.topic, cause));
  }

  // ---- helpers ----------------------------------------------------------------------------------

  private stop(): void {
    this.generation++;
    this.clearRetry();
    this.log.reset();
  }

  private clearRetry(): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private transition(event: SubscriptionEvent, code = 0, reason = ''): boolean {
    const next = nextSubscriptionStatus(this._status, event);
    if (next === null) return false;
    if (next !== this._status) {
      const oldState = this._status;
      this._status = next;
      this.emit('status', { oldState, newState: next, code, reason });
    }
    return true;
  }
}

function noop(): void {}

/** @internal Turns an `error` frame into the SymphonicError a request rejects with. */
export function errorFromFrame(frame: ErrorFrame): SymphonicError {
  if (frame.code === ErrorCode.SequenceConflict && typeof frame.seq === 'number') return new SequenceConflictError(frame.message, frame.topic, frame.seq);
  if (frame.code === ErrorCode.ServiceError) return new ServiceError(frame.message, frame.data);
  return new SymphonicError(frame.code, frame.message, frame.topic);
}
