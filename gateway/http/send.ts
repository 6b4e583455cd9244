/**
 * `POST /api/send` (scope publish): a direct message from a backend to a session or to every
 * session of a user (docs/protocol.md sections 13 and 16). Sent without `from`.
 */
import type { TemplatedApp } from 'uWebSockets.js';
import { z } from 'zod';
import { ErrorCode, jsonCodec } from '../../protocol/index.ts';
import { Data, Recipient } from '../../protocol/frames.ts';
import { schemaError } from '../../protocol/validate.ts';
import type { GatewayContext } from '../context.ts';
import { directTooLarge, sendDirect } from '../direct/send.ts';
import type { Scope } from '../policy/api-keys.ts';
import type { KeyedHandler, keyedPost } from './keyed.ts';
import { replyError, replyJson } from './respond.ts';

const HttpSendRequest = z.object({ to: Recipient, data: Data.default(null) }).strict();

export function mountSend(app: TemplatedApp, ctx: GatewayContext, route: (scope: Scope, handle: KeyedHandler) => ReturnType<typeof keyedPost>): void {
  app.post(
    '/api/send',
    route('publish', (p, json, bodyBytes) => {
      const parsed = HttpSendRequest.safeParse(json);
      if (!parsed.success) {
        const bad = schemaError(parsed.error, ErrorCode.BadRequest, 'body');
        return replyError(p, '400 Bad Request', bad.code, bad.message);
      }
      const { to, data } = parsed.data;
      const large = directTooLarge(ctx, data, bodyBytes, (d) => jsonCodec.encode(d as object));
      if (large) return replyError(p, '413 Payload Too Large', ErrorCode.PayloadTooLarge, large);
      void sendDirect(ctx, to, data).then((r) => {
        if (r.ok) return replyJson(p, '200 OK', { sessions: r.sessions });
        const status = r.code === ErrorCode.NoRecipient ? '404 Not Found' : '503 Service Unavailable';
        replyError(p, status, r.code, r.message);
      });
    }),
  );
}
