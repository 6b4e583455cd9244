/**
 * The HTTP proxy (both engines): POST `{method, data}` to the method's `url` with the identity
 * headers and nothing else of the client's. 2xx: the JSON body is the answer (empty: null);
 * another status: 2012 with the body's `error.message`/`error.data`. The body is read up to
 * `maxBytes` and no further (4005). `signal` aborts the call when the client's connection goes.
 */
import { ErrorCode } from '../../protocol/index.ts';
import { fail, parseAnswer, type RpcOutcome } from './outcome.ts';

export interface HttpCall {
  readonly url: string;
  readonly method: string;
  readonly data: unknown;
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly maxBytes: number;
  readonly signal: AbortSignal;
}

export async function callHttp(c: HttpCall): Promise<RpcOutcome> {
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), c.timeoutMs);
  const signal = AbortSignal.any([timeout.signal, c.signal]);
  try {
    const res = await fetch(c.url, {
      method: 'POST',
      headers: { ...c.headers, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ method: c.method, data: c.data }),
      redirect: 'manual',
      signal,
    });
    const body = await readLimited(res, c.maxBytes);
    if (body === null) return fail(ErrorCode.ReplyTooLarge, `the service's answer is larger than ${c.maxBytes} bytes`);
    if (res.status >= 200 && res.status < 300) return parseAnswer(body);
    return serviceError(res, body);
  } catch (e) {
    if (timeout.signal.aborted) return fail(ErrorCode.ServiceTimeout, `${c.method}: no answer within ${c.timeoutMs} ms`);
    if (c.signal.aborted) return fail(ErrorCode.Internal, 'call abandoned');
    const cause = (e as { cause?: { code?: string } }).cause?.code;
    if (cause === 'ECONNREFUSED') return fail(ErrorCode.NoResponders, `${c.method}: the service is not running (connection refused)`);
    return fail(ErrorCode.Unavailable, `${c.method}: the service could not be reached (${cause ?? (e as Error).message})`);
  } finally {
    clearTimeout(timer);
  }
}

/** The body, or null when it is longer than `max` (then reading stops and the rest is dropped). */
async function readLimited(res: Response, max: number): Promise<Uint8Array | null> {
  const declared = Number(res.headers.get('content-length'));
  if (declared > max) {
    await res.body?.cancel();
    return null;
  }
  if (!res.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > max) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

function serviceError(res: Response, body: Uint8Array): RpcOutcome {
  let error: { message?: unknown; data?: unknown } | undefined;
  try {
    error = (JSON.parse(new TextDecoder().decode(body)) as { error?: typeof error }).error;
  } catch {
    // Not JSON: the status line says what happened.
  }
  const message = typeof error?.message === 'string' && error.message ? error.message : `${res.status} ${res.statusText}`.trim();
  return fail(ErrorCode.ServiceError, message, error?.data);
}
