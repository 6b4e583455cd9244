/**
 * `POST /api/publish/batch`: many publishes in one request, for backends that publish at a high
 * rate (one HTTP request per message costs the gateway more than the publish itself). Each entry
 * is checked and published like `POST /api/publish`; they are handed to the bus in order, and
 * the answer lists each one's outcome in the same order.
 */
import type { TemplatedApp } from 'uWebSockets.js';
import { ErrorCode, jsonCodec } from '../../protocol/index.ts';
import { HttpPublishBatchRequest } from '../../protocol/frames.ts';
import { schemaError } from '../../protocol/validate.ts';
import type { GatewayContext } from '../context.ts';
import type { Scope } from '../policy/api-keys.ts';
import type { KeyedHandler, keyedPost } from './keyed.ts';
import { publishOne } from './publish.ts';
import { replyError, replyJson } from './respond.ts';

export function mountBatchPublish(app: TemplatedApp, ctx: GatewayContext, route: (scope: Scope, handle: KeyedHandler) => ReturnType<typeof keyedPost>): void {
  app.post(
    '/api/publish/batch',
    route('publish', (p, json, _bytes, key, idempotencyKey) => {
      if (idempotencyKey)
        return replyError(p, '400 Bad Request', ErrorCode.BadRequest, 'a batch takes an idempotencyKey per message, not the Idempotency-Key header');
      const parsed = HttpPublishBatchRequest.safeParse(json);
      if (!parsed.success) {
        const bad = schemaError(parsed.error, ErrorCode.BadRequest, 'body');
        return replyError(p, '400 Bad Request', bad.code, bad.message);
      }
      // Started in order in this turn: the bus orders them as listed.
      const outcomes = parsed.data.messages.map(({ idempotencyKey: k, ...m }) => {
        const bytes = Buffer.byteLength(jsonCodec.encode((m.data ?? null) as object) as string);
        return publishOne(ctx, m, bytes, key.id, k);
      });
      void Promise.all(outcomes).then((all) => replyJson(p, '200 OK', { results: all.map((o) => o.body) }));
    }),
  );
}
