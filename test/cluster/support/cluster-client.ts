/**
 * A protocol-level client of a gateway cluster, over the raw protocol client: a TopicView per
 * topic, and on a dropped socket it reconnects to the next gateway and resumes (`hello` with its
 * session, then `sub.since` per topic, or `hello.restore`).
 *
 * Waiting is always on events: the client bumps a shared `Changes` notifier, and
 * `changes.until(predicate)` re-checks the predicate on every change, with a timeout.
 */
import type WebSocket from 'ws';
import type { ServerFrame } from '../../../protocol/index.ts';
import type { Changes } from '../../support/changes.ts';
import { connectRaw, type RawClient } from '../../support/raw-client.ts';
import { backoff } from './backoff.ts';
import { TopicView } from './topic-view.ts';

type Welcome = Extract<ServerFrame, { t: 'welcome' }>;

export interface ReconnectRecord {
  readonly closedAt: number;
  readonly closeCode: number;
  readonly from: string;
  to?: string;
  connectedAt?: number;
  /** Every topic answered `subscribed` again. */
  resubscribedAt?: number;
  resumed?: boolean;
}

export interface ClusterClientOptions {
  /** Gateway WebSocket URLs in preference order; reconnects go to the next one in turn. */
  readonly urls: readonly string[];
  /** Reconnect and resume by itself when its socket drops (default true). */
  readonly autoReconnect?: boolean;
  /**
   * Resume with `hello.restore` (the server re-subscribes the session's topics from the positions
   * given; a topic it answers with an error is then subscribed with the client's own `sub`)
   * instead of `hello` followed by `sub` with `since` per topic. Default false.
   */
  readonly restore?: boolean;
  readonly changes: Changes;
}

let requestIds = 1;

/**
 * A client that does what docs/protocol.md asks of one: positions per topic, buffering during
 * `sub`, merge by seq, gap detection by prev, and on a dropped socket: reconnect to the next
 * gateway, `hello` with the last session, `sub` with `since` for every topic.
 */
export class ClusterClient {
  readonly views = new Map<string, TopicView>();
  readonly reconnects: ReconnectRecord[] = [];
  readonly welcomes: Welcome[] = [];
  /** Frames that fit nowhere (errors without a known request): any is a failure. */
  readonly stray: ServerFrame[] = [];
  raw: RawClient | undefined;
  /** `sub`s answered 5001 (Unavailable) and sent again. */
  unavailableRetries = 0;
  url = '';
  private urlIndex = 0;
  private readonly pendingSubs = new Map<number, string>();
  /** Topics the server is restoring (`hello.restore`): their `subscribed` / `error` come without `id`. */
  private readonly restoring = new Set<string>();
  /** Subscriptions restored by the server (`subscribed` without id), and restores it refused. */
  restored = 0;
  restoreErrors = 0;
  private intentional = false;
  private closedForGood = false;
  private session: { id: string; key: string } | undefined;
  private reconnecting: Promise<void> | undefined;

  /** Gateway URLs in preference order (a test may add one later, e.g. a gateway started meanwhile). */
  readonly urls: string[];

  constructor(
    readonly name: string,
    private readonly opts: ClusterClientOptions,
  ) {
    this.urls = [...opts.urls];
  }

  get connected(): boolean {
    return this.raw !== undefined && this.raw.ws.readyState === 1;
  }

  view(topic: string): TopicView {
    let v = this.views.get(topic);
    if (!v) {
      v = new TopicView(topic);
      this.views.set(topic, v);
    }
    return v;
  }

  /** Connects to `opts.urls[index]` (default the first) and completes the handshake. */
  async connect(index = this.urlIndex): Promise<void> {
    this.urlIndex = index % this.urls.length;
    const url = this.urls[this.urlIndex]!;
    const raw = await connectRaw(url, 'msgpack');
    this.intentional = false;
    this.raw = raw;
    this.url = url;
    let seen = 0;
    const onFrame = () => {
      // raw-client decodes each frame into raw.frames before this listener runs.
      for (; seen < raw.frames.length; seen++) this.onFrame(raw.frames[seen]!);
      this.opts.changes.bump();
    };
    raw.ws.on('message', onFrame);
    raw.ws.once('close', (code: number) => this.onClose(raw.ws, code));
    const restore = this.opts.restore && this.session ? this.restorePositions() : undefined;
    for (const topic of Object.keys(restore ?? {})) {
      this.restoring.add(topic);
      this.view(topic).startSubscribe();
    }
    raw.send({
      t: 'hello',
      v: 1,
      client: `cluster-test/${this.name}`,
      ...(this.session ? { session: this.session } : {}),
      ...(restore ? { restore: { since: restore } } : {}),
    });
    const welcome = await raw.next<Welcome>((f) => f.t === 'welcome', 15_000);
    this.welcomes.push(welcome);
    this.session = { id: welcome.session, key: welcome.key };
  }

  /**
   * After a `hello.restore`, the topics the server names (the session's, when it is resumed) come
   * back as `subscribed` without id; for any other topic nothing comes: subscribe as usual. Runs in
   * frame order, before the restored `subscribed` frames that follow the welcome.
   */
  private onWelcome(welcome: Welcome): void {
    const named = new Set(welcome.resumed ? (welcome.topics ?? []) : []);
    for (const topic of [...this.restoring]) {
      if (named.has(topic)) continue;
      this.restoring.delete(topic);
      this.view(topic).disconnected();
    }
  }

  /** Positions of every positioned topic, for `hello.restore`. */
  private restorePositions(): Record<string, { seq: number; epoch: string }> | undefined {
    const since: Record<string, { seq: number; epoch: string }> = {};
    for (const v of this.views.values()) {
      const p = v.since();
      if (p) since[v.topic] = p;
    }
    return Object.keys(since).length > 0 ? since : undefined;
  }

  /** Resolves once no restored subscription is outstanding (or the socket ended). */
  private async restored_(timeoutMs: number): Promise<void> {
    const raw = this.raw;
    await this.opts.changes.until(
      () => this.restoring.size === 0 || !raw || raw.ws.readyState > 1,
      timeoutMs,
      () => `${this.name}: restored ${[...this.restoring].join(', ')} on ${this.url}`,
    );
  }

  /**
   * Sends `sub` (with `since` when the topic has a position) for each topic; fails unless every one
   * is answered `subscribed`. A `sub` answered 5001 (Unavailable: "retry later", e.g. while NATS
   * elects a stream leader) is retried, bounded, as docs/protocol.md asks of a client.
   */
  async subscribe(topics: readonly string[], timeoutMs = 30_000): Promise<void> {
    let failed = await this.trySubscribe(topics, timeoutMs);
    for (let attempt = 0; attempt < 20 && failed.length > 0 && this.connected && failed.every(isUnavailable); attempt++) {
      this.unavailableRetries += failed.length;
      await backoff(attempt, 1000);
      failed = await this.trySubscribe(
        failed.map((v) => v.topic),
        timeoutMs,
      );
    }
    if (failed.length > 0) {
      throw new Error(
        `${this.name}: sub failed on ${this.url}: ${failed.map((v) => `${v.topic} ${JSON.stringify(v.lastError ?? 'socket closed')}`).join('; ')}`,
      );
    }
  }

  /** Sends the `sub`s and waits for their replies (or the socket's end); returns the topics not subscribed. */
  private async trySubscribe(topics: readonly string[], timeoutMs = 30_000): Promise<TopicView[]> {
    const raw = this.raw;
    if (!raw || raw.ws.readyState !== 1) return topics.map((t) => this.view(t));
    const views = topics.map((t) => this.view(t));
    for (const v of views) {
      const id = requestIds++;
      this.pendingSubs.set(id, v.topic);
      v.startSubscribe();
      const since = v.since();
      raw.send({ t: 'sub', id, topic: v.topic, ...(since ? { since } : {}) });
    }
    await this.opts.changes.until(
      () => views.every((v) => v.phase !== 'subscribing') || raw.ws.readyState > 1,
      timeoutMs,
      () =>
        `${this.name}: subscribed to ${views
          .filter((v) => v.phase === 'subscribing')
          .map((v) => v.topic)
          .join(', ')} on ${this.url}`,
    );
    return views.filter((v) => v.phase !== 'live' || this.raw !== raw);
  }

  /** Closes the socket on purpose (no reconnect); positions are kept for a later `resume`. */
  async goOffline(): Promise<void> {
    const raw = this.raw;
    if (!raw) return;
    this.intentional = true;
    raw.close();
    await raw.closed;
    for (const v of this.views.values()) v.disconnected();
  }

  /** Connects to `opts.urls[index]` and re-subscribes every known topic from its position. */
  async resume(index: number): Promise<void> {
    await this.connect(index);
    await this.subscribe([...this.views.keys()]);
  }

  async close(): Promise<void> {
    this.closedForGood = true;
    await this.goOffline();
    await this.reconnecting?.catch(() => {});
  }

  private onFrame(f: ServerFrame): void {
    if ((f.t === 'subscribed' || f.t === 'error') && f.id === undefined && f.topic !== undefined && this.restoring.delete(f.topic)) {
      if (f.t === 'subscribed') {
        this.restored++;
        this.view(f.topic).onSubscribed(f);
      } else {
        // Documented: a restore the server could not do is the client's to `sub` (reconnectLoop does).
        this.restoreErrors++;
        this.view(f.topic).onError(f);
      }
      return;
    }
    if (f.t === 'welcome') return this.onWelcome(f);
    if (f.t === 'msg') {
      const v = this.views.get(f.topic);
      if (v) v.onMsg(f);
      else this.stray.push(f);
    } else if (f.t === 'subscribed') {
      const topic = f.id === undefined ? undefined : this.pendingSubs.get(f.id);
      if (f.id !== undefined) this.pendingSubs.delete(f.id);
      if (topic === f.topic) this.view(topic).onSubscribed(f);
      else this.stray.push(f);
    } else if (f.t === 'error') {
      const topic = f.id === undefined ? undefined : this.pendingSubs.get(f.id);
      if (topic !== undefined) {
        this.pendingSubs.delete(f.id!);
        this.view(topic).onError(f);
      } else this.stray.push(f);
    }
    // welcome (awaited in connect), hb: nothing to do.
  }

  private onClose(ws: WebSocket, code: number): void {
    if (this.raw?.ws !== ws) return;
    for (const v of this.views.values()) v.disconnected();
    this.pendingSubs.clear();
    this.restoring.clear();
    this.opts.changes.bump();
    if (this.intentional || this.closedForGood || this.opts.autoReconnect === false) return;
    this.reconnects.push({ closedAt: Date.now(), closeCode: code, from: this.url });
    // A loop already running notices the dropped socket itself.
    this.reconnecting ??= this.reconnectLoop().finally(() => {
      this.reconnecting = undefined;
      this.opts.changes.bump();
    });
  }

  /**
   * Next gateway in turn until one takes the handshake, then `sub` with `since` for every topic;
   * topics refused (e.g. 5001 while the bus recovers) are retried. Bounded attempts with backoff.
   */
  private async reconnectLoop(): Promise<void> {
    const failures: string[] = [];
    for (let attempt = 0; attempt < 60 && !this.closedForGood; attempt++) {
      const record = this.reconnects.at(-1)!;
      if (!this.connected) {
        const index = (this.urlIndex + 1) % this.urls.length;
        try {
          await this.connect(index);
        } catch (e) {
          failures.push(`${this.urls[index]}: ${(e as Error).message}`);
          this.urlIndex = index;
          await backoff(attempt);
          continue;
        }
        record.to = this.url;
        record.connectedAt = Date.now();
        record.resumed = this.welcomes.at(-1)?.resumed;
        await this.restored_(30_000);
      }
      const pending = [...this.views.values()].filter((v) => v.phase !== 'live').map((v) => v.topic);
      const failed = await this.trySubscribe(pending);
      if (failed.length > 0 && this.connected && failed.every(isUnavailable)) this.unavailableRetries += failed.length;
      if (failed.length === 0 && this.connected) {
        record.resubscribedAt = Date.now();
        return;
      }
      failures.push(`sub on ${this.url}: ${failed.map((v) => JSON.stringify(v.lastError ?? 'socket closed')).join(', ')}`);
      await backoff(attempt);
    }
    if (!this.closedForGood) throw new Error(`${this.name}: could not reconnect and resume: ${failures.slice(-3).join('; ')}`);
  }

  /** A failed background reconnect, surfaced (call in assertions). */
  async settled(): Promise<void> {
    await this.reconnecting;
  }
}

/** The topic's last `sub` was answered 5001 (Unavailable): a transient the client retries. */
function isUnavailable(v: TopicView): boolean {
  return v.lastError?.code === 5001;
}
