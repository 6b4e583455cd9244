/**
 * Helpers of the cluster tests: a monitored NATS cluster (nats-server `/connz` shows each
 * connection's subscriptions with per-subscription message counts), clients that follow
 * docs/protocol.md sections 8-9 to the letter over the raw protocol client (buffer during `sub`,
 * merge `replay`/`state` with buffered and live `msg` frames by seq, detect gaps by `prev`,
 * reconnect to the next gateway and resume with `sub.since`), and an HTTP API publisher that
 * publishes numbered sequences and retries on 503.
 *
 * Waiting is always on events: clients and publishers bump a shared `Changes` notifier, and
 * `changes.until(predicate)` re-checks the predicate on every change, with a timeout.
 */
import type WebSocket from 'ws';
import { applyMessage } from '../../protocol/merge-patch.ts';
import type { MessageKind, ServerFrame } from '../../protocol/index.ts';
import { connectRaw, type RawClient } from '../support/raw-client.ts';
import { Changes } from '../support/changes.ts';
import { startNatsCluster, type NatsCluster, type NatsNode } from '../support/nats-server.ts';

// ---------------------------------------------------------------------------------------------
// Events (the change notifier lives in ../support/changes.ts)

export { Changes };

/** A retry pause (backoff between attempts); never used to wait for something to happen. */
function backoff(attempt: number, capMs = 500): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.min(capMs, 25 * 2 ** attempt)));
}

// ---------------------------------------------------------------------------------------------
// NATS cluster with monitoring

const MONITOR_LINE = /Starting http monitor on [\d.]+:(\d+)/;

/** A 3-node JetStream cluster whose nodes serve monitoring (`/connz`) on random loopback ports. */
export function startMonitoredCluster(size = 3): Promise<NatsCluster> {
  return startNatsCluster(size, { extraConfig: 'http: "127.0.0.1:-1"' });
}

/** The node's monitoring port (it changes on restart: read from the log of the current run). */
export function monitorPort(node: NatsNode): number {
  const m = MONITOR_LINE.exec(node.log());
  if (!m) throw new Error(`nats-server ${node.name} logged no monitoring port:\n${node.log()}`);
  return Number(m[1]);
}

export interface ConnSub {
  readonly subject: string;
  /** Messages the server delivered on this subscription. */
  readonly msgs: number;
  readonly node: string;
}

interface Connz {
  connections?: { name?: string; out_msgs?: number; subscriptions_list_detail?: { subject: string; msgs: number }[] }[];
}

/** Every message the NATS cluster sent to the connection named `name` (live copies, replies, consumer deliveries). */
export async function messagesSentTo(cluster: NatsCluster, name: string): Promise<number> {
  let total = 0;
  for (const node of cluster.nodes) {
    if (!node.running) continue;
    const body = (await (await fetch(`http://127.0.0.1:${monitorPort(node)}/connz?limit=100000`)).json()) as Connz;
    for (const c of body.connections ?? []) if (c.name === name) total += c.out_msgs ?? 0;
  }
  return total;
}

/**
 * The subscriptions the NATS cluster holds for the client connection named `name` (a gateway's
 * bus connection is named after its nodeId), over every running node.
 */
export async function subscriptionsOf(cluster: NatsCluster, name: string): Promise<ConnSub[]> {
  const out: ConnSub[] = [];
  let seen = 0;
  for (const node of cluster.nodes) {
    if (!node.running) continue;
    const res = await fetch(`http://127.0.0.1:${monitorPort(node)}/connz?subs=detail&limit=100000`);
    if (!res.ok) throw new Error(`connz on ${node.name}: HTTP ${res.status}`);
    const body = (await res.json()) as Connz;
    for (const c of body.connections ?? []) {
      if (c.name !== name) continue;
      seen++;
      for (const s of c.subscriptions_list_detail ?? []) out.push({ subject: s.subject, msgs: s.msgs, node: node.name });
    }
  }
  if (seen !== 1) throw new Error(`expected one NATS connection named ${name}, found ${seen}`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Protocol-level cluster client

type Msg = Extract<ServerFrame, { t: 'msg' }>;
type Subscribed = Extract<ServerFrame, { t: 'subscribed' }>;
type Welcome = Extract<ServerFrame, { t: 'welcome' }>;
type ErrorFrame = Extract<ServerFrame, { t: 'error' }>;

export interface Applied {
  readonly seq: number;
  readonly prev: number;
  readonly kind: MessageKind;
  readonly data: unknown;
  /** `data.n` when the data is a numbered message. */
  readonly n: number | undefined;
  readonly via: 'live' | 'replay';
}

export interface Gap {
  readonly last: number;
  readonly seq: number;
  readonly prev: number;
}

/** One topic as the client sees it: position, state, what was applied, and anything irregular. */
export class TopicView {
  epoch = '';
  /** The seq of the last message applied (or of the last `subscribed`). */
  last = 0;
  /** Whether `last`/`epoch` are a real position (a `subscribed` was received). */
  positioned = false;
  state: unknown = undefined;
  phase: 'idle' | 'subscribing' | 'live' = 'idle';
  readonly applied: Applied[] = [];
  readonly subscribes: Subscribed[] = [];
  /** Errors answering a `sub` other than 5001. */
  readonly errors: ErrorFrame[] = [];
  /** `sub`s answered 5001 (Unavailable, retried). */
  readonly unavailable: ErrorFrame[] = [];
  lastError: ErrorFrame | undefined;
  /** Gaps seen by `prev !== last` (section 8); none may happen with a correct gateway. */
  readonly gaps: Gap[] = [];
  /** Replays whose chain is broken (first prev !== since.seq, or prev !== previous seq). */
  readonly badReplays: string[] = [];
  /** Frames dropped as duplicates by seq (normal around a `sub`: the overlap of live and snapshot). */
  duplicates = 0;
  /** `subscribed` with wasRecovering && !recovered: the client was told messages were lost. */
  lossReports = 0;
  private buffer: Msg[] = [];

  constructor(readonly topic: string) {}

  /** Position to resume from, if any. */
  since(): { seq: number; epoch: string } | undefined {
    return this.positioned ? { seq: this.last, epoch: this.epoch } : undefined;
  }

  startSubscribe(): void {
    this.phase = 'subscribing';
    this.buffer = [];
  }

  /** The socket went away: whatever was buffered is dropped (it is replayed on resume). */
  disconnected(): void {
    this.phase = 'idle';
    this.buffer = [];
  }

  onMsg(m: Msg): void {
    if (this.phase === 'subscribing') return void this.buffer.push(m);
    if (this.phase === 'live') this.applyLive(m);
    // idle: a msg after we stopped caring (cannot happen on a closed socket); ignore.
  }

  onSubscribed(f: Subscribed): void {
    this.subscribes.push(f);
    if (!f.recovered) {
      this.state = f.state;
      if (f.wasRecovering) this.lossReports++;
    } else {
      let prev = this.last;
      for (const p of f.replay ?? []) {
        if (p.prev !== prev) this.badReplays.push(`replay of ${this.topic}: message ${p.seq} has prev ${p.prev}, expected ${prev}`);
        this.apply(p, 'replay');
        prev = p.seq;
      }
      if (prev !== f.seq) this.badReplays.push(`replay of ${this.topic} ends at ${prev}, subscribed.seq is ${f.seq}`);
    }
    this.epoch = f.epoch;
    this.last = f.seq;
    this.positioned = true;
    this.phase = 'live';
    const buffered = this.buffer;
    this.buffer = [];
    for (const m of buffered) this.applyLive(m);
  }

  onError(f: ErrorFrame): void {
    this.lastError = f;
    // 5001 (Unavailable) is a documented transient the client retries; anything else is a failure.
    if (f.code === 5001) this.unavailable.push(f);
    else this.errors.push(f);
    this.phase = 'idle';
    this.buffer = [];
  }

  private applyLive(m: Msg): void {
    if (m.seq <= this.last) return void this.duplicates++;
    if (m.prev !== this.last) this.gaps.push({ last: this.last, seq: m.seq, prev: m.prev });
    this.apply(m, 'live');
  }

  private apply(p: { seq: number; prev: number; kind: MessageKind; data: unknown }, via: Applied['via']): void {
    const n = typeof p.data === 'object' && p.data !== null && typeof (p.data as { n?: unknown }).n === 'number' ? (p.data as { n: number }).n : undefined;
    this.applied.push({ seq: p.seq, prev: p.prev, kind: p.kind, data: p.data, n, via });
    this.state = applyMessage(this.state, p.kind, p.data);
    this.last = p.seq;
  }
}

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

  constructor(readonly name: string, private readonly opts: ClusterClientOptions) {
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
    raw.send({ t: 'hello', v: 1, client: `cluster-test/${this.name}`, ...(this.session ? { session: this.session } : {}), ...(restore ? { restore: { since: restore } } : {}) });
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
    const named = new Set(welcome.resumed ? welcome.topics ?? [] : []);
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
    await this.opts.changes.until(() => this.restoring.size === 0 || !raw || raw.ws.readyState > 1, timeoutMs, () => `${this.name}: restored ${[...this.restoring].join(', ')} on ${this.url}`);
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
      failed = await this.trySubscribe(failed.map((v) => v.topic), timeoutMs);
    }
    if (failed.length > 0) {
      throw new Error(`${this.name}: sub failed on ${this.url}: ${failed.map((v) => `${v.topic} ${JSON.stringify(v.lastError ?? 'socket closed')}`).join('; ')}`);
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
      () => `${this.name}: subscribed to ${views.filter((v) => v.phase === 'subscribing').map((v) => v.topic).join(', ')} on ${this.url}`,
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

// ---------------------------------------------------------------------------------------------
// Checks

/**
 * Exactly once, in order: the applied `n` values of a topic must be 1..count with nothing
 * missing, doubled or reordered, and every applied message must chain to the one before it by
 * `prev` (starting from `firstPrev`). Returns a compact description of what is wrong (empty
 * lists when all is well) so a failure names the culprits instead of dumping thousands of numbers.
 */
export function sequenceProblems(view: TopicView, count: number, allowDuplicateNs: ReadonlySet<number> = new Set(), firstPrev = 0) {
  const ns = view.applied.map((a) => a.n);
  const seen = new Map<number, number>();
  const outOfOrder: string[] = [];
  let high = 0;
  for (let i = 0; i < ns.length; i++) {
    const n = ns[i];
    if (n === undefined) {
      outOfOrder.push(`#${i}: not a numbered message`);
      continue;
    }
    seen.set(n, (seen.get(n) ?? 0) + 1);
    if (n < high) outOfOrder.push(`#${i}: n=${n} after n=${high}`);
    high = Math.max(high, n);
  }
  const missing: number[] = [];
  for (let n = 1; n <= count; n++) if (!seen.has(n)) missing.push(n);
  const duplicated = [...seen].filter(([n, c]) => c > 1 && !allowDuplicateNs.has(n)).map(([n, c]) => `n=${n} x${c}`);
  const extra = [...seen.keys()].filter((n) => n < 1 || n > count).map((n) => `n=${n}`);
  const chain: string[] = [];
  const seqs = new Set<number>();
  let prev = firstPrev;
  for (const a of view.applied) {
    if (a.prev !== prev) chain.push(`seq ${a.seq}: prev ${a.prev}, expected ${prev}`);
    if (seqs.has(a.seq)) chain.push(`seq ${a.seq} applied twice`);
    seqs.add(a.seq);
    prev = a.seq;
  }
  return {
    missing: missing.slice(0, 10),
    duplicated: duplicated.slice(0, 10),
    outOfOrder: outOfOrder.slice(0, 10),
    extra: extra.slice(0, 10),
    chain: chain.slice(0, 10),
    gaps: view.gaps.slice(0, 10),
    badReplays: view.badReplays.slice(0, 10),
    errors: view.errors.slice(0, 5),
  };
}

export const NO_PROBLEMS = { missing: [], duplicated: [], outOfOrder: [], extra: [], chain: [], gaps: [], badReplays: [], errors: [] };

// ---------------------------------------------------------------------------------------------
// HTTP API publisher

export interface PublishRecord {
  readonly topic: string;
  readonly n: number;
  readonly seq: number;
  readonly epoch: string;
  readonly startedAt: number;
  readonly endedAt: number;
  /** Failed attempts before the one that was acknowledged. */
  readonly retries: number;
  /** A failed attempt may have stored the message anyway (503 after the gateway's own retries, connection cut mid-request). */
  readonly ambiguous: boolean;
  readonly via: string;
}

/**
 * `POST /api/publish` with a bearer key. Retries on 503 and on connection failures (moving to
 * the next gateway of its list on a connection failure), with bounded attempts; any other
 * answer is an error.
 */
export class HttpPublisher {
  /** Failed attempts, for the report: [time, gateway, what]. */
  readonly failures: [number, string, string][] = [];

  constructor(private readonly key: string, readonly httpUrls: string[]) {}

  /**
   * With `idempotencyKey` every attempt carries it (`Idempotency-Key`): a retry of a publish that
   * was stored after all is stored once, so no attempt is ambiguous.
   */
  async publish(topic: string, kind: MessageKind, data: unknown, via = 0, deadlineMs = 60_000, cancelled: () => boolean = () => false, idempotencyKey?: string): Promise<Omit<PublishRecord, 'n' | 'topic'>> {
    const startedAt = Date.now();
    let index = via % this.httpUrls.length;
    let ambiguous = false;
    for (let attempt = 0; ; attempt++) {
      const url = this.httpUrls[index]!;
      let what: string;
      try {
        const res = await fetch(`${url}/api/publish`, {
          method: 'POST',
          headers: { authorization: `Bearer ${this.key}`, 'content-type': 'application/json', ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}) },
          body: JSON.stringify({ topic, kind, data }),
        });
        const text = await res.text();
        if (res.status === 200) {
          const body = JSON.parse(text) as { seq: number; epoch: string };
          return { seq: body.seq, epoch: body.epoch, startedAt, endedAt: Date.now(), retries: attempt, ambiguous: ambiguous && !idempotencyKey, via: url };
        }
        if (res.status !== 503) throw new Error(`publish to ${topic} via ${url}: HTTP ${res.status} ${text}`);
        ambiguous = true;
        what = `503 ${text}`;
      } catch (e) {
        if ((e as Error).message.startsWith('publish to')) throw e;
        const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
        // Refused: the request never reached a gateway. Anything else may have been handled.
        if (cause !== 'ECONNREFUSED') ambiguous = true;
        what = cause;
        index = (index + 1) % this.httpUrls.length;
      }
      this.failures.push([Date.now(), url, what]);
      if (Date.now() - startedAt > deadlineMs) throw new Error(`publish to ${topic} failed for ${deadlineMs} ms: ${what}`);
      if (cancelled()) throw new Error(`publish to ${topic} cancelled after: ${what}`);
      await backoff(attempt);
    }
  }
}

export interface StreamOptions {
  readonly topics: readonly string[];
  /** Which gateway (index into the publisher's list) publishes topic `i`'s messages. */
  readonly via: (topicIndex: number) => number;
  /** Hard bound on messages per topic. */
  readonly maxPerTopic: number;
  readonly changes: Changes;
  /** Kind and data of message `n` of a topic; default `patch {n}`. */
  readonly message?: (topic: string, n: number) => { kind: MessageKind; data: unknown };
  /** Streams are added here, so a test's cleanup can stop whatever a failed test left running. */
  readonly registry?: PublishStream[];
  /** Publish with an Idempotency-Key of this prefix + topic + n (retries stored once). */
  readonly idempotencyPrefix?: string;
  /** At most this many publishes per second per topic (default: as fast as acks come back). */
  readonly ratePerTopic?: number;
}

/**
 * Publishes numbered messages (`data.n` = 1, 2, ...) continuously to several topics, one in
 * flight per topic (so a topic's order is its numbering), until stopped or `maxPerTopic`.
 */
export class PublishStream {
  readonly records = new Map<string, PublishRecord[]>();
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(private readonly publisher: HttpPublisher, private readonly o: StreamOptions) {
    o.registry?.push(this);
    for (const t of o.topics) this.records.set(t, []);
    this.done = Promise.all(o.topics.map((t, i) => this.run(t, i))).then(() => {});
    this.done.catch(() => {}).finally(() => o.changes.bump());
  }

  private async run(topic: string, index: number): Promise<void> {
    const list = this.records.get(topic)!;
    const started = Date.now();
    for (let n = 1; n <= this.o.maxPerTopic && !this.stopped; n++) {
      const { kind, data } = this.o.message?.(topic, n) ?? { kind: 'patch' as const, data: { n } };
      const key = this.o.idempotencyPrefix === undefined ? undefined : `${this.o.idempotencyPrefix}.${topic}.${n}`;
      // Pacing, not synchronisation: message n is not sent before n / rate seconds into the run.
      const due = this.o.ratePerTopic ? started + (n * 1000) / this.o.ratePerTopic - Date.now() : 0;
      if (due > 0) await new Promise((r) => setTimeout(r, due));
      const r = await this.publisher.publish(topic, kind, data, this.o.via(index), 60_000, () => this.stopped, key);
      list.push({ ...r, topic, n });
      this.o.changes.bump();
    }
  }

  count(topic: string): number {
    return this.records.get(topic)!.length;
  }

  minCount(): number {
    return Math.min(...this.o.topics.map((t) => this.count(t)));
  }

  lastSeq(topic: string): number {
    return this.records.get(topic)!.at(-1)?.seq ?? 0;
  }

  /** `n`s whose publish was ambiguous (a retry may have stored them twice). */
  ambiguous(topic: string): Set<number> {
    return new Set(this.records.get(topic)!.filter((r) => r.ambiguous).map((r) => r.n));
  }

  /** Stops after the publishes in flight (a publish being retried gives up); resolves when every loop has ended (rejects if one failed). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  /** Resolves when every topic has at least `count` acknowledged publishes (fails if a loop failed). */
  async reach(count: number, timeoutMs: number): Promise<void> {
    let failed: unknown;
    this.done.catch((e: unknown) => (failed = e));
    await this.o.changes.until(() => {
      if (failed) throw failed;
      return this.minCount() >= count;
    }, timeoutMs, () => `${count} publishes per topic (have ${this.o.topics.map((t) => `${t}: ${this.count(t)}`).join(', ')})`);
  }
}

// ---------------------------------------------------------------------------------------------
// Misc

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
