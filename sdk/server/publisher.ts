/**
 * Server-side publisher for Node backends: publishes to topics without holding a WebSocket.
 * The transport is a seam: today the gateway's HTTP API (`POST /api/publish`); a NATS transport
 * (publishing the protocol envelope straight onto the bus) plugs in here when the NATS engine lands.
 */
import { ErrorCode } from '../../protocol/codes.ts';
import type { MessageKind } from '../../protocol/frames.ts';
import { topicError } from '../../protocol/topic.ts';
import { SymphonicError, TimeoutError } from '../errors.ts';
import type { MergePatch } from '../schema.ts';
import type { PublishAck } from '../types.ts';

export interface PublishRequest {
  topic: string;
  kind: MessageKind;
  data: unknown;
}

/** How a publish reaches the gateway. Implement this to publish another way (e.g. NATS). */
export interface PublishTransport {
  publish(req: PublishRequest): Promise<PublishAck>;
  close?(): Promise<void>;
}

export interface HttpTransportOptions {
  /** The gateway's HTTP base URL, e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** API key, sent as `Authorization: Bearer <key>`. */
  apiKey?: string;
  /** Per request, ms; default 10000. */
  timeout?: number;
  /** fetch implementation; defaults to the global one (Node 18+). */
  fetch?: typeof fetch;
}

export class HttpPublishTransport implements PublishTransport {
  private readonly endpoint: string;
  constructor(private readonly opts: HttpTransportOptions) {
    this.endpoint = opts.url.replace(/\/+$/, '') + '/api/publish';
  }

  async publish(req: PublishRequest): Promise<PublishAck> {
    const doFetch = this.opts.fetch ?? globalThis.fetch;
    const timeout = this.opts.timeout ?? 10_000;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.opts.apiKey) headers.authorization = `Bearer ${this.opts.apiKey}`;
    let res: Response;
    try {
      res = await doFetch(this.endpoint, { method: 'POST', headers, body: JSON.stringify(req), signal: AbortSignal.timeout(timeout) });
    } catch (e) {
      const err = e as Error;
      if (err?.name === 'TimeoutError' || err?.name === 'AbortError') throw new TimeoutError(`publish to ${req.topic}: no answer within ${timeout} ms`, req.topic);
      throw new SymphonicError(ErrorCode.Unavailable, `publish to ${req.topic}: ${err?.message ?? err}`, req.topic);
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    if (!res.ok) {
      const e = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
      const code = typeof e?.code === 'number' ? e.code : res.status >= 500 ? ErrorCode.Unavailable : ErrorCode.BadRequest;
      const message = typeof e?.message === 'string' ? e.message : `HTTP ${res.status}: ${text.slice(0, 200)}`;
      throw new SymphonicError(code, message, req.topic);
    }
    const ack = body as Partial<PublishAck> | undefined;
    if (typeof ack?.seq !== 'number' || typeof ack.epoch !== 'string') {
      throw new SymphonicError(ErrorCode.Internal, `publish to ${req.topic}: unexpected answer ${text.slice(0, 200)}`, req.topic);
    }
    return { seq: ack.seq, epoch: ack.epoch };
  }
}

export type PublisherOptions = HttpTransportOptions | { transport: PublishTransport };

/**
 * Publishes from a backend. Not retried automatically: a publish is not idempotent, so a failure
 * after the request left (timeout, 5xx) may or may not have landed; the caller decides.
 */
export class SymphonicPublisher {
  private readonly transport: PublishTransport;
  constructor(options: PublisherOptions) {
    this.transport = 'transport' in options ? options.transport : new HttpPublishTransport(options);
  }

  async publish(topic: string, data: unknown, options: { kind?: MessageKind } = {}): Promise<PublishAck> {
    const err = topicError(topic);
    if (err) throw new SymphonicError(ErrorCode.BadTopic, err, topic);
    return this.transport.publish({ topic, kind: options.kind ?? 'event', data });
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
