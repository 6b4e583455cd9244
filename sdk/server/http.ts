/** Publishing over the gateway's HTTP API: `POST /api/publish` with a bearer API key. */
import { ErrorCode } from '../../protocol/codes.ts';
import { SequenceConflictError, SymphonicError, TimeoutError } from '../errors.ts';
import type { PublishAck } from '../types.ts';
import { TransportUnavailableError, type PublishRequest, type PublishTransport } from './transport.ts';

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

/** Socket errors that happen before anything was sent: the request certainly did not arrive. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

export class HttpPublishTransport implements PublishTransport {
  private readonly endpoint: string;
  constructor(private readonly opts: HttpTransportOptions) {
    this.endpoint = opts.url.replace(/\/+$/, '') + '/api/publish';
  }

  async publish(req: PublishRequest): Promise<PublishAck> {
    if (hasBinary(req.data)) {
      // JSON would turn a Uint8Array into {"0": .., "1": ..}: refuse rather than corrupt it.
      throw new SymphonicError(
        ErrorCode.InvalidPayload,
        `publish to ${req.topic}: binary data cannot travel over the HTTP API (JSON); publish it over NATS`,
        req.topic,
      );
    }
    const doFetch = this.opts.fetch ?? globalThis.fetch;
    const timeout = this.opts.timeout ?? 10_000;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.opts.apiKey) headers.authorization = `Bearer ${this.opts.apiKey}`;
    let res: Response;
    try {
      res = await doFetch(this.endpoint, { method: 'POST', headers, body: JSON.stringify(req), signal: AbortSignal.timeout(timeout) });
    } catch (e) {
      const err = e as Error & { cause?: { code?: unknown } };
      if (err?.name === 'TimeoutError' || err?.name === 'AbortError')
        throw new TimeoutError(`publish to ${req.topic}: no answer within ${timeout} ms`, req.topic);
      const code = err?.cause?.code;
      if (typeof code === 'string' && NOT_SENT.has(code)) {
        throw new TransportUnavailableError(`publish to ${req.topic}: ${this.endpoint} not reachable (${code})`, req.topic, e);
      }
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
      const seq = (e as { seq?: unknown } | undefined)?.seq;
      if (code === ErrorCode.SequenceConflict && typeof seq === 'number') throw new SequenceConflictError(message, req.topic, seq);
      throw new SymphonicError(code, message, req.topic);
    }
    const ack = body as Partial<PublishAck> | undefined;
    if (typeof ack?.seq !== 'number' || typeof ack.epoch !== 'string') {
      throw new SymphonicError(ErrorCode.Internal, `publish to ${req.topic}: unexpected answer ${text.slice(0, 200)}`, req.topic);
    }
    return { seq: ack.seq, epoch: ack.epoch };
  }
}

function hasBinary(v: unknown, depth = 0): boolean {
  if (typeof v !== 'object' || v === null || depth > 64) return false;
  if (v instanceof Uint8Array) return true;
  for (const x of Array.isArray(v) ? v : Object.values(v)) if (hasBinary(x, depth + 1)) return true;
  return false;
}
