/**
 * Publishing straight onto the bus, with no gateway hop: a JetStream publish of the protocol's
 * envelope (protocol/envelope.ts, the same bytes a gateway writes) to `<prefix>.in.<topic>`.
 * The ack's stream sequence is the message's `seq`; its `epoch` is the stream's identity computed
 * exactly as the NATS engine does (`epochFromCreated` of the stream's `created` time), re-read
 * after a reconnect, on stream advisories, and when an ack's sequence goes back (stream recreated).
 *
 * Every publish carries a message id and is retried with it (timeouts, no responders during a
 * stream leader election, reconnects) until `timeout`: JetStream's duplicate window stores it once.
 * When NATS cannot be reached at all (connecting fails, or the connection is down at the moment of
 * the publish) nothing is sent and the publish rejects with `TransportUnavailableError`, which is
 * what `FallbackTransport` falls back on.
 *
 * NATS permissions a backend needs: publish `<prefix>.in.>` (with replies: `_INBOX.>`), and the
 * JetStream API `$JS.API.STREAM.INFO.<prefix>_topics` (for the epoch); optionally subscribe
 * `$JS.EVENT.ADVISORY.STREAM.*.<prefix>_topics` (epoch changes are then noticed sooner).
 */
import { connect as natsConnect, type ConnectionOptions, type JetStreamManager, type NatsConnection, type Subscription } from 'nats';
import { apiErrCode, errorCode, isRetryable } from '../../nats-kit/errors.ts';
import { authOptions, STAY_CONNECTED, type NatsCredentials } from '../../nats-kit/connect.ts';
import { JsWriter } from '../../nats-kit/js-writer.ts';
import { AckFloor, MessageIds, publishRetried } from '../../nats-kit/publish.ts';
import { ErrorCode } from '../../protocol/codes.ts';
import { BUS_PREFIX_RE, busInSubject, busStreamName, DEFAULT_BUS_PREFIX, encodeEnvelope, epochFromCreated } from '../../protocol/envelope.ts';
import { ConnectionClosedError, SequenceConflictError, SymphonicError, TimeoutError } from '../errors.ts';
import type { PublishAck } from '../types.ts';
import { TransportUnavailableError, type PublishRequest, type PublishTransport } from './transport.ts';

/** A user and password, a token, a `.creds` file's path or its contents. */
export type NatsPublisherCredentials = NatsCredentials;

export interface NatsTransportOptions {
  /** NATS server URLs (`nats://host:4222`); the connection fails over between them. Not needed with `connection`. */
  servers?: string | readonly string[];
  /** The deployment prefix, as the gateways' `bus.nats.prefix`. Default `symphonic`. */
  prefix?: string;
  credentials?: NatsPublisherCredentials;
  /** A publish, with its retries, fails after this long, ms. Default 10000. */
  timeout?: number;
  /** One connection attempt (over every server), ms. Default 5000. */
  connectTimeout?: number;
  /**
   * After connecting failed, publishes fail at once with TransportUnavailableError for this long
   * before the next attempt (so a fallback is not slowed down by one connect timeout per publish), ms. Default 2000.
   */
  retryConnectAfter?: number;
  /** Connection name shown by the server. */
  name?: string;
  /** Publish over this existing connection instead of opening one (close() then leaves it open). */
  connection?: NatsConnection;
  /** Connection factory (default: `connect` of the nats package). */
  connect?: (options: ConnectionOptions) => Promise<NatsConnection>;
}

const STREAM_NOT_FOUND = 10059;

interface Link {
  readonly nc: NatsConnection;
  /** JetStream publishes (nats-kit/js-writer.ts); closed with the publisher. */
  readonly writer: JsWriter;
  readonly jsm: JetStreamManager;
  readonly owned: boolean;
  advisory?: Subscription;
}

export class NatsPublishTransport implements PublishTransport {
  readonly prefix: string;
  private readonly streamName: string;
  private readonly ids = new MessageIds();
  private link: Promise<Link> | undefined;
  private connected = false;
  private failedUntil = 0;
  private lastFailure = '';
  /** The stream's epoch; undefined when it must be (re-)read. */
  private epoch: string | undefined;
  private epochRead: Promise<string> | undefined;
  /** Acknowledged sequences: an ack below an earlier one means the stream was recreated. */
  private readonly acks = new AckFloor();
  private closed = false;

  constructor(private readonly opts: NatsTransportOptions) {
    this.prefix = opts.prefix ?? DEFAULT_BUS_PREFIX;
    if (!BUS_PREFIX_RE.test(this.prefix)) throw new TypeError(`prefix ${JSON.stringify(this.prefix)} must be 1-32 characters of [A-Za-z0-9_-]`);
    if (!opts.connection && (opts.servers === undefined || opts.servers.length === 0))
      throw new TypeError('NatsPublishTransport needs servers (or a connection)');
    this.streamName = busStreamName(this.prefix);
  }

  /** Connects now (publish() also connects on first use); rejects with TransportUnavailableError if NATS cannot be reached. */
  async connect(): Promise<void> {
    await this.ready();
    await this.currentEpoch();
  }

  async publish(req: PublishRequest): Promise<PublishAck> {
    const { topic } = req;
    const link = await this.ready(topic);
    const subject = busInSubject(this.prefix, topic);
    let payload: Uint8Array;
    try {
      payload = encodeEnvelope(req.kind, req.data, Date.now());
    } catch (e) {
      throw new SymphonicError(ErrorCode.InvalidPayload, `publish to ${topic}: cannot encode the data: ${(e as Error)?.message ?? e}`, topic);
    }
    let epoch = await this.currentEpoch(topic);
    const timeout = this.opts.timeout ?? 10_000;
    const deadline = Date.now() + timeout;
    /** Whether an attempt may have reached the stream (then, on failure, the outcome is unknown). */
    let maybeSent = false;
    const ack = await publishRetried(
      link.writer,
      {
        subject,
        payload,
        msgID: this.ids.next(),
        stream: this.streamName,
        deadline,
        floor: this.acks,
        keepAlive: true,
        ...(req.expect === undefined ? {} : { expect: req.expect }),
      },
      {
        canSend: () => {
          if (this.connected) return true;
          if (!maybeSent) throw new TransportUnavailableError(`publish to ${topic}: the NATS connection is down (reconnecting)`, topic);
          if (Date.now() >= deadline)
            throw new TimeoutError(`publish to ${topic}: NATS connection lost; not acknowledged within ${timeout} ms (it may have been stored)`, topic);
          return false;
        },
        failed: (e) => {
          const code = errorCode(e);
          // JetStream's per-subject expected-sequence check failed ("wrong last sequence: 42"): nothing stored.
          if (req.expect !== undefined && apiErrCode(e) === 10071) {
            const current = Number(/wrong last sequence: (\d+)/.exec(String((e as Error)?.message))?.[1] ?? NaN);
            throw new SequenceConflictError(
              `publish to ${topic}: the topic is at sequence ${Number.isNaN(current) ? 'another' : current}, not ${req.expect}; nothing was stored`,
              topic,
              Number.isNaN(current) ? -1 : current,
            );
          }
          if (code === 'MAX_PAYLOAD_EXCEEDED')
            throw new SymphonicError(ErrorCode.PayloadTooLarge, `publish to ${topic}: larger than the NATS server's max_payload`, topic);
          if (this.closed || code === 'CONNECTION_CLOSED')
            throw new ConnectionClosedError(`publish to ${topic}: the NATS connection was closed before the ack (it may have been stored)`);
          // "No responders" means nobody received this attempt; anything else may have been stored.
          if (code !== '503') maybeSent = true;
          const retryable = isRetryable(e);
          if (retryable && Date.now() < deadline) return;
          if (!maybeSent) {
            throw new SymphonicError(
              ErrorCode.Unavailable,
              `publish to ${topic}: no stream answers on ${subject} within ${timeout} ms (stream leader election, or the stream is gone); not stored`,
              topic,
            );
          }
          if (retryable) throw new TimeoutError(`publish to ${topic}: not acknowledged within ${timeout} ms (it may have been stored)`, topic);
          throw new SymphonicError(ErrorCode.Internal, `publish to ${topic} refused by NATS: ${(e as Error)?.message ?? e}`, topic);
        },
        wrongStream: (stream) =>
          new SymphonicError(ErrorCode.Internal, `subject ${subject} is stored by stream ${stream}, not ${this.streamName}: check the prefix`, topic),
        restarted: () => this.invalidateEpoch(),
      },
    );
    // The stream was recreated, or an advisory or a reconnect said the epoch is stale meanwhile:
    // either way, learn the current one before answering.
    if (this.epoch === undefined) epoch = await this.currentEpoch(topic).catch(() => epoch);
    return { seq: ack.seq, epoch };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const link = this.link;
    this.link = undefined;
    this.connected = false;
    const l = await link?.catch(() => undefined);
    if (!l || l.nc.isClosed()) return;
    l.writer.close();
    if (l.owned) await l.nc.close();
    else l.advisory?.unsubscribe();
  }

  // ---- connection -------------------------------------------------------------------------------

  private async ready(topic?: string): Promise<Link> {
    if (this.closed) throw new ConnectionClosedError('the publisher is closed');
    if (!this.link) {
      if (Date.now() < this.failedUntil) {
        throw new TransportUnavailableError(`NATS not reachable (${this.lastFailure}); next attempt in ${this.failedUntil - Date.now()} ms`, topic);
      }
      const opening = this.open();
      this.link = opening;
      opening.catch((e: Error) => {
        if (this.link !== opening) return;
        this.link = undefined;
        this.lastFailure = e?.message ?? String(e);
        this.failedUntil = Date.now() + (this.opts.retryConnectAfter ?? 2_000);
      });
    }
    let link: Link;
    try {
      link = await this.link;
    } catch (e) {
      if (e instanceof ConnectionClosedError) throw e; // closed while connecting
      throw new TransportUnavailableError(`NATS not reachable: ${(e as Error)?.message ?? e}`, topic, e);
    }
    if (!this.connected) throw new TransportUnavailableError('the NATS connection is down (reconnecting)', topic);
    return link;
  }

  private async open(): Promise<Link> {
    const o = this.opts;
    let nc: NatsConnection;
    const owned = !o.connection;
    if (o.connection) {
      nc = o.connection;
      if (nc.isClosed()) throw new Error('the given NATS connection is closed');
    } else {
      nc = await (o.connect ?? natsConnect)({
        servers: typeof o.servers === 'string' ? [o.servers] : [...(o.servers ?? [])],
        ...(o.name ? { name: o.name } : {}),
        ...authOptions(o.credentials),
        timeout: o.connectTimeout ?? 5_000,
        // Publishes while it reconnects fail fast (TransportUnavailableError).
        ...STAY_CONNECTED,
      });
    }
    if (this.closed) {
      if (owned) await nc.close();
      throw new ConnectionClosedError('the publisher is closed');
    }
    this.connected = true;
    const link: Link = { nc, writer: new JsWriter(nc), jsm: await nc.jetstreamManager({ checkAPI: false }), owned };
    void (async () => {
      for await (const s of nc.status()) {
        if (this.closed) break;
        if (s.type === 'disconnect') this.connected = false;
        else if (s.type === 'reconnect') {
          this.connected = true;
          this.invalidateEpoch(); // the stream may have been recreated meanwhile
        }
      }
    })().catch(() => {});
    void nc.closed().then(() => {
      this.connected = false;
      if (this.link && !this.closed) {
        // Closed under us (e.g. by its owner): the next publish connects again.
        const current = this.link;
        void current.then(
          (l) => l.nc === nc && this.link === current && (this.link = undefined),
          () => {},
        );
      }
    });
    // Epoch changes (stream deleted, recreated, updated) are announced: forget the cached one.
    try {
      link.advisory = nc.subscribe(`$JS.EVENT.ADVISORY.STREAM.*.${this.streamName}`, { callback: () => this.invalidateEpoch() });
    } catch {
      // without permission the ack-sequence check still catches a recreated stream
    }
    return link;
  }

  /** Forgets the epoch, and any read of it already under way. */
  private invalidateEpoch(): void {
    this.epoch = undefined;
    this.epochRead = undefined;
  }

  /** The stream's epoch (cached; single flight when it must be read). */
  private currentEpoch(topic?: string): Promise<string> {
    if (this.epoch !== undefined) return Promise.resolve(this.epoch);
    if (!this.epochRead) {
      const read: Promise<string> = this.readEpoch(topic).then((epoch) => {
        // Not if an advisory or reconnect said "stale" meanwhile (that read was superseded).
        if (this.epochRead === read) this.epoch = epoch;
        return epoch;
      });
      this.epochRead = read;
      const clear = () => {
        if (this.epochRead === read) this.epochRead = undefined;
      };
      read.then(clear, clear);
    }
    return this.epochRead;
  }

  private async readEpoch(topic?: string): Promise<string> {
    const { jsm } = await this.ready(topic);
    try {
      return epochFromCreated((await jsm.streams.info(this.streamName)).created);
    } catch (e) {
      if (apiErrCode(e) === STREAM_NOT_FOUND) {
        throw new SymphonicError(
          ErrorCode.Unavailable,
          `stream ${this.streamName} does not exist: a gateway on the NATS engine with prefix "${this.prefix}" creates it`,
          topic,
        );
      }
      throw new SymphonicError(
        isRetryable(e) ? ErrorCode.Unavailable : ErrorCode.Internal,
        `cannot read the epoch of stream ${this.streamName}: ${(e as Error)?.message ?? e}`,
        topic,
      );
    }
  }
}
