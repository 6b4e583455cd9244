/**
 * A topic's presence for a backend: `GET /api/presence?topic=` on the gateway's HTTP API (scope
 * `publish`). Presence lives in the gateways, not on the bus, so a NATS-only publisher cannot read
 * it: give the publisher a `url` (and `apiKey`).
 */
import { ErrorCode } from '../../protocol/codes.ts';
import { SymphonicError, TimeoutError } from '../errors.ts';
import type { PresenceSnapshot } from '../presence.ts';
import type { HttpTransportOptions } from './http.ts';

export async function readPresence(opts: HttpTransportOptions, topic: string): Promise<PresenceSnapshot> {
  const doFetch = opts.fetch ?? globalThis.fetch;
  const timeout = opts.timeout ?? 10_000;
  const url = `${opts.url.replace(/\/+$/, '')}/api/presence?topic=${encodeURIComponent(topic)}`;
  let res: Response;
  try {
    res = await doFetch(url, { headers: opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {}, signal: AbortSignal.timeout(timeout) });
  } catch (e) {
    const err = e as Error;
    if (err?.name === 'TimeoutError' || err?.name === 'AbortError') throw new TimeoutError(`presence of ${topic}: no answer within ${timeout} ms`, topic);
    throw new SymphonicError(ErrorCode.Unavailable, `presence of ${topic}: ${err?.message ?? err}`, topic);
  }
  const body = (await res.json().catch(() => undefined)) as { count?: unknown; members?: unknown; error?: { code?: unknown; message?: unknown } } | undefined;
  if (!res.ok) {
    const code = typeof body?.error?.code === 'number' ? body.error.code : res.status >= 500 ? ErrorCode.Unavailable : ErrorCode.BadRequest;
    throw new SymphonicError(code, typeof body?.error?.message === 'string' ? body.error.message : `HTTP ${res.status}`, topic);
  }
  if (typeof body?.count !== 'number') throw new SymphonicError(ErrorCode.Internal, `presence of ${topic}: unexpected answer`, topic);
  return { count: body.count, ...(Array.isArray(body.members) ? { members: body.members } : {}) };
}
