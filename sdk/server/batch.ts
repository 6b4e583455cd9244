/**
 * Many publishes in one request: `POST /api/publish/batch` (up to 1000 entries a request, in
 * order). One answer per entry, an ack or the error that entry got; a failure of the request
 * itself (unreachable, 4xx for the whole batch) rejects.
 */
import { ErrorCode } from '../../protocol/codes.ts';
import { SequenceConflictError, SymphonicError, TimeoutError } from '../errors.ts';
import type { PublishAck } from '../types.ts';
import type { HttpTransportOptions } from './http.ts';
import type { PublishRequest } from './transport.ts';

/** One entry of a batch: a publish, and optionally its idempotency key (HTTP only). */
export interface BatchRequest extends PublishRequest {
  idempotencyKey?: string;
}

const MAX_PER_REQUEST = 1000;

export async function publishBatchHttp(opts: HttpTransportOptions, entries: readonly BatchRequest[]): Promise<Array<PublishAck | SymphonicError>> {
  const out: Array<PublishAck | SymphonicError> = [];
  // Chunks go one after another, so the bus sees the entries in the order given.
  for (let i = 0; i < entries.length; i += MAX_PER_REQUEST) out.push(...(await oneRequest(opts, entries.slice(i, i + MAX_PER_REQUEST))));
  return out;
}

async function oneRequest(opts: HttpTransportOptions, entries: readonly BatchRequest[]): Promise<Array<PublishAck | SymphonicError>> {
  const doFetch = opts.fetch ?? globalThis.fetch;
  const timeout = opts.timeout ?? 10_000;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (opts.apiKey) headers.authorization = `Bearer ${opts.apiKey}`;
  let res: Response;
  try {
    res = await doFetch(`${opts.url.replace(/\/+$/, '')}/api/publish/batch`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ messages: entries }),
      signal: AbortSignal.timeout(timeout),
    });
  } catch (e) {
    const err = e as Error;
    if (err?.name === 'TimeoutError' || err?.name === 'AbortError') throw new TimeoutError(`batch of ${entries.length}: no answer within ${timeout} ms`);
    throw new SymphonicError(ErrorCode.Unavailable, `batch of ${entries.length}: ${err?.message ?? err}`);
  }
  const body = (await res.json().catch(() => undefined)) as { results?: unknown[]; error?: { code?: unknown; message?: unknown } } | undefined;
  if (!res.ok || !Array.isArray(body?.results) || body.results.length !== entries.length) {
    const code = typeof body?.error?.code === 'number' ? body.error.code : res.status >= 500 ? ErrorCode.Unavailable : ErrorCode.BadRequest;
    throw new SymphonicError(code, typeof body?.error?.message === 'string' ? body.error.message : `batch: HTTP ${res.status}`);
  }
  return body.results.map((r, i) => resultOf(r, entries[i]!.topic));
}

function resultOf(r: unknown, topic: string): PublishAck | SymphonicError {
  const x = r as { seq?: unknown; epoch?: unknown; error?: { code?: unknown; message?: unknown; seq?: unknown } };
  if (typeof x?.seq === 'number' && typeof x.epoch === 'string') return { seq: x.seq, epoch: x.epoch };
  const code = typeof x?.error?.code === 'number' ? x.error.code : ErrorCode.Internal;
  const message = typeof x?.error?.message === 'string' ? x.error.message : 'unexpected answer';
  if (code === ErrorCode.SequenceConflict && typeof x.error?.seq === 'number') return new SequenceConflictError(message, topic, x.error.seq);
  return new SymphonicError(code, message, topic);
}
