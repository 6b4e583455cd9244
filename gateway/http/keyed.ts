/**
 * HTTP routes behind an API key (gateway/policy/api-keys.ts): the key check with its coded
 * errors, and the JSON body every POST route reads. Shared by the backend API (api.ts) and the
 * admin API (gateway/admin/routes.ts).
 */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { ErrorCode } from '../../protocol/index.ts';
import { unsafeIntegerLiteral } from '../../protocol/json-integers.ts';
import type { GatewayContext } from '../context.ts';
import type { Scope } from '../policy/api-keys.ts';
import { pending, readBody, replyError, type PendingResponse } from './respond.ts';

export interface KeyUse {
  /** The key's name for logs (never the key). */
  readonly name: string;
  /** The key's stable identity (a hash of it). */
  readonly id: string;
}

/** Checks `Authorization` for `scope`; on failure answers 503 (no keys), 401 or 403 and returns undefined. */
export function checkKey(ctx: GatewayContext, p: PendingResponse, authorization: string, scope: Scope): KeyUse | undefined {
  const key = ctx.policy.apiKeys.check(authorization, scope);
  if (key.ok) return key;
  if (key.reason === 'disabled')
    replyError(p, '503 Service Unavailable', ErrorCode.Unavailable, 'the HTTP API is disabled: configure api.keys (SYMPHONIC_api__keys)');
  else if (key.reason === 'unauthorized') replyError(p, '401 Unauthorized', ErrorCode.Unauthorized, 'missing or invalid API key (Authorization: Bearer <key>)');
  else replyError(p, '403 Forbidden', ErrorCode.Forbidden, `this API key lacks the "${scope}" scope`);
  return undefined;
}

export type KeyedHandler = (p: PendingResponse, json: unknown, bodyBytes: number, key: KeyUse, idempotencyKey: string) => void;

/** A POST route: checks the key for `scope`, reads and parses the JSON body, then calls `handle`. */
export function keyedPost(ctx: GatewayContext, scope: Scope, handle: KeyedHandler) {
  return (res: HttpResponse, req: HttpRequest) => {
    const auth = req.getHeader('authorization');
    const idempotencyKey = req.getHeader('idempotency-key'); // headers must be read before any await
    const url = req.getUrl();
    const p = pending(res);
    const key = checkKey(ctx, p, auth, scope);
    if (!key) return;
    readBody(p, ctx.config.api.maxBodyBytes, (body) => {
      if (!body) return replyError(p, '413 Payload Too Large', ErrorCode.PayloadTooLarge, `body larger than ${ctx.config.api.maxBodyBytes} bytes`);
      let json: unknown;
      const text = body.toString('utf8');
      try {
        // An empty body is no body (e.g. POST /api/drain without options).
        json = text.trim() === '' ? undefined : JSON.parse(text);
      } catch {
        return replyError(p, '400 Bad Request', ErrorCode.BadRequest, 'body is not valid JSON');
      }
      // JSON.parse would round it silently; the protocol carries integers within ±(2^53−1) only.
      const unsafe = unsafeIntegerLiteral(text);
      if (unsafe !== null) {
        return replyError(
          p,
          '400 Bad Request',
          ErrorCode.BadRequest,
          `integer ${unsafe.slice(0, 40)} is outside ±(2^53−1) (JSON would round it; send such numbers as strings)`,
        );
      }
      try {
        handle(p, json, body.byteLength, key, idempotencyKey);
      } catch (e) {
        ctx.log.error('http request failed', { route: url, error: (e as Error).message });
        replyError(p, '500 Internal Server Error', ErrorCode.Internal, 'internal error');
      }
    });
  };
}
