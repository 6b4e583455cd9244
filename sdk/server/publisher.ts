/**
 * Server-side publisher for Node backends: publishes to topics without holding a WebSocket.
 * Transports (./transport.ts): the gateway's HTTP API (./http.ts), NATS straight onto the bus
 * (./nats.ts), or both, NATS first with HTTP when NATS cannot be reached (FallbackTransport).
 */
import { ErrorCode } from '../../protocol/codes.ts';
import { dataError } from '../../protocol/data.ts';
import type { MessageKind } from '../../protocol/frames.ts';
import { topicError } from '../../protocol/topic.ts';
import { SymphonicError } from '../errors.ts';
import type { MergePatch } from '../schema.ts';
import type { PublishAck } from '../types.ts';
import { HttpPublishTransport, type HttpTransportOptions } from './http.ts';
import { NatsPublishTransport, type NatsTransportOptions } from './nats.ts';
import type { Recipient } from '../direct.ts';
import { sendOverHttp } from './send.ts';
import { publishBatchHttp, type BatchRequest } from './batch.ts';
import { readPresence } from './presence.ts';
import type { PresenceSnapshot } from '../presence.ts';
import { FallbackTransport, type FallbackOptions, type PublishRequest, type PublishTransport } from './transport.ts';

export { HttpPublishTransport, type HttpTransportOptions } from './http.ts';
export { FallbackTransport, TransportUnavailableError, type FallbackOptions, type PublishRequest, type PublishTransport } from './transport.ts';

export type PublisherOptions =
  /** Any transport, e.g. `new FallbackTransport([nats, http])`. */
  | { transport: PublishTransport }
  /** The gateway's HTTP API. */
  | (HttpTransportOptions & { nats?: undefined })
  /**
   * NATS, straight onto the bus; with `url` (and `apiKey`) too, the gateway's HTTP API is the
   * fallback when NATS cannot be reached.
   */
  | ({ nats: NatsTransportOptions; url?: string } & Partial<Omit<HttpTransportOptions, 'url'>> & FallbackOptions);

const KINDS: ReadonlySet<unknown> = new Set(['event', 'set', 'patch']);

/**
 * Publishes from a backend. Topic and data are checked here, by the rules the gateway applies
 * (`topicError`, `dataError`), whatever the transport. A failure after the message may have left
 * (a timeout, a dropped connection) is not retried by another transport: it may have been stored.
 */
export class SymphonicPublisher {
  readonly transport: PublishTransport;
  /** The gateway's HTTP API, when the options name one (presence is read there). */
  private readonly http: HttpTransportOptions | undefined;
  constructor(options: PublisherOptions) {
    this.transport = transportOf(options);
    this.http = httpOf(options);
  }

  /**
   * A topic's presence across the gateways (`GET /api/presence`): `count`, and `members` unless the
   * topic is count-only or past the member limit. Needs the HTTP API (`url`, and an `apiKey` with
   * the publish scope): presence lives in the gateways, a NATS-only publisher cannot read it.
   */
  async presence(topic: string): Promise<PresenceSnapshot> {
    const err = topicError(topic);
    if (err) throw new SymphonicError(ErrorCode.BadTopic, err, topic);
    if (!this.http) {
      throw new SymphonicError(
        ErrorCode.BadRequest,
        `presence of ${topic}: reading presence needs the gateway's HTTP API; give the publisher a url (and apiKey)`,
        topic,
      );
    }
    return readPresence(this.http, topic);
  }

  /**
   * A direct message to a session (`{session}`) or to every session of a user (`{user}`), on any
   * gateway; resolves with how many sessions it was stored for (2010 when nobody). Over the
   * gateway's HTTP API only (`POST /api/send`): a NATS-only publisher needs a `url` (and `apiKey`).
   */
  send(to: Recipient, data: unknown): Promise<number> {
    if (!this.http) {
      return Promise.reject(
        new SymphonicError(
          ErrorCode.BadRequest,
          'send: direct messages go through the gateway HTTP API (POST /api/send); give the publisher a `url` (and `apiKey`) besides `nats`',
        ),
      );
    }
    return sendOverHttp(this.http, to, data);
  }

  /**
   * `expect`: a conditional publish, stored only if the topic's last sequence is still this (0: no
   * message yet); otherwise it rejects with SequenceConflictError (`current`: the topic's sequence
   * now) and nothing is stored.
   */
  async publish(topic: string, data: unknown, options: { kind?: MessageKind; expect?: number } = {}): Promise<PublishAck> {
    return this.transport.publish(checked(topic, data, options));
  }

  /**
   * Many publishes at once, in the order given; one result per entry, in the same order: its ack,
   * or the SymphonicError it got (one entry's failure does not stop the others). Over the HTTP
   * API it is one request per 1000 entries (`POST /api/publish/batch`), which costs the gateway far
   * less than a request per message; other transports publish the entries one by one. An entry
   * that breaks the rules (topic, kind, data) rejects the whole call before anything is sent.
   * `idempotencyKey` needs the HTTP API.
   */
  async publishBatch(
    entries: ReadonlyArray<{ topic: string; data: unknown; kind?: MessageKind; expect?: number; idempotencyKey?: string }>,
  ): Promise<Array<PublishAck | SymphonicError>> {
    const requests: BatchRequest[] = entries.map((e) => ({
      ...checked(e.topic, e.data, e),
      ...(e.idempotencyKey === undefined ? {} : { idempotencyKey: e.idempotencyKey }),
    }));
    const direct = this.transport instanceof HttpPublishTransport ? this.http : undefined;
    if (direct) return publishBatchHttp(direct, requests);
    if (requests.some((r) => r.idempotencyKey !== undefined)) {
      throw new SymphonicError(ErrorCode.BadRequest, 'idempotencyKey in a batch needs the HTTP transport (give the publisher a url)');
    }
    return Promise.all(
      requests.map((r) =>
        this.transport.publish(r).catch((e: unknown) => (e instanceof SymphonicError ? e : new SymphonicError(ErrorCode.Unavailable, String(e), r.topic))),
      ),
    );
  }

  /** Replaces the topic's state document. */
  set<S>(topic: string, state: S): Promise<PublishAck> {
    return this.publish(topic, state, { kind: 'set' });
  }

  /** Merges a JSON Merge Patch into the topic's state (`null` deletes a key). */
  patch<S = unknown>(topic: string, patch: MergePatch<S>): Promise<PublishAck> {
    return this.publish(topic, patch, { kind: 'patch' });
  }

  /** A plain event: leaves the state alone. */
  event(topic: string, data: unknown): Promise<PublishAck> {
    return this.publish(topic, data, { kind: 'event' });
  }

  async close(): Promise<void> {
    await this.transport.close?.();
  }
}

function httpOf(o: PublisherOptions): HttpTransportOptions | undefined {
  if ('transport' in o) return undefined;
  if (!o.nats) return o;
  if (o.url === undefined) return undefined;
  return {
    url: o.url,
    ...(o.apiKey !== undefined ? { apiKey: o.apiKey } : {}),
    ...(o.timeout !== undefined ? { timeout: o.timeout } : {}),
    ...(o.fetch !== undefined ? { fetch: o.fetch } : {}),
  };
}

/** A publish checked by the rules the gateway applies (`topicError`, `dataError`), whatever the transport. */
function checked(topic: string, data: unknown, options: { kind?: MessageKind | undefined; expect?: number | undefined }): PublishRequest {
  const kind = options.kind ?? 'event';
  const err = topicError(topic);
  if (err) throw new SymphonicError(ErrorCode.BadTopic, err, topic);
  if (!KINDS.has(kind)) throw new SymphonicError(ErrorCode.BadRequest, `kind must be 'event', 'set' or 'patch' (got ${String(kind)})`, topic);
  // Absent data is null, as on the wire (`pub` and the HTTP API default it).
  const value = data === undefined ? null : data;
  const bad = dataError(value);
  if (bad) throw new SymphonicError(ErrorCode.InvalidPayload, `publish to ${topic}: ${bad}`, topic);
  if (options.expect !== undefined && !(Number.isSafeInteger(options.expect) && options.expect >= 0)) {
    throw new SymphonicError(ErrorCode.BadRequest, `expect must be a sequence (a non-negative integer), got ${String(options.expect)}`, topic);
  }
  return { topic, kind, data: value, ...(options.expect === undefined ? {} : { expect: options.expect }) };
}

function transportOf(o: PublisherOptions): PublishTransport {
  if ('transport' in o) return o.transport;
  if (!o.nats) return new HttpPublishTransport(o);
  const nats = new NatsPublishTransport(o.nats);
  if (o.url === undefined) return nats;
  const http = new HttpPublishTransport({
    url: o.url,
    ...(o.apiKey !== undefined ? { apiKey: o.apiKey } : {}),
    ...(o.timeout !== undefined ? { timeout: o.timeout } : {}),
    ...(o.fetch !== undefined ? { fetch: o.fetch } : {}),
  });
  return new FallbackTransport([nats, http], o.onFallback ? { onFallback: o.onFallback } : {});
}
