/**
 * A backend's direct message (docs/protocol.md section 16) over the gateway's HTTP API:
 * `POST /api/send` with a bearer API key. Only over HTTP: the recipient is resolved through the
 * gateways' session registry, which a NATS-only publisher does not reach.
 */
import { ErrorCode } from '../../protocol/codes.ts';
import { dataError } from '../../protocol/data.ts';
import { checkRecipient, type Recipient } from '../direct.ts';
import { SymphonicError, TimeoutError } from '../errors.ts';
import type { HttpTransportOptions } from './http.ts';

/** Resolves with how many sessions the message was stored for; rejects with a SymphonicError (2010: nobody). */
export async function sendOverHttp(o: HttpTransportOptions, to: Recipient, data: unknown): Promise<number> {
  const recipient = checkRecipient(to);
  const value = data === undefined ? null : data;
  const bad = dataError(value);
  if (bad) throw new SymphonicError(ErrorCode.InvalidPayload, `send: ${bad}`);
  const endpoint = `${o.url.replace(/\/+$/, '')}/api/send`;
  const timeout = o.timeout ?? 10_000;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (o.apiKey) headers.authorization = `Bearer ${o.apiKey}`;
  let res: Response;
  try {
    res = await (o.fetch ?? globalThis.fetch)(endpoint, {
      method: 'POST',
      headers,
      body: JSON.stringify({ to: recipient, data: value }),
      signal: AbortSignal.timeout(timeout),
    });
  } catch (e) {
    const err = e as Error;
    if (err?.name === 'TimeoutError' || err?.name === 'AbortError') throw new TimeoutError(`send: no answer within ${timeout} ms`);
    throw new SymphonicError(ErrorCode.Unavailable, `send: ${err?.message ?? err}`);
  }
  const text = await res.text();
  let body: { sessions?: unknown; error?: { code?: unknown; message?: unknown } } | undefined;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const e = body?.error;
    const code = typeof e?.code === 'number' ? e.code : res.status >= 500 ? ErrorCode.Unavailable : ErrorCode.BadRequest;
    throw new SymphonicError(code, typeof e?.message === 'string' ? e.message : `HTTP ${res.status}: ${text.slice(0, 200)}`);
  }
  if (typeof body?.sessions !== 'number') throw new SymphonicError(ErrorCode.Internal, `send: unexpected answer ${text.slice(0, 200)}`);
  return body.sessions;
}
