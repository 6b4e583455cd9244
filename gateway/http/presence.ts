/**
 * `GET /api/presence?topic=<topic>` (scope `publish`): a topic's presence across the deployment,
 * for backends (docs/protocol.md section 13). `members` is absent on count-only topics and past
 * `presence.maxMembers`.
 */
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { ErrorCode, topicError } from '../../protocol/index.ts';
import type { GatewayContext } from '../context.ts';
import { topicTooLong } from '../policy/payload.ts';
import { checkKey } from './keyed.ts';
import { pending, replyError, replyJson } from './respond.ts';

export function mountPresenceApi(app: TemplatedApp, ctx: GatewayContext): void {
  app.get('/api/presence', (res: HttpResponse, req: HttpRequest) => {
    const auth = req.getHeader('authorization');
    const topic = new URLSearchParams(req.getQuery() ?? '').get('topic') ?? '';
    const p = pending(res);
    if (!checkKey(ctx, p, auth, 'publish')) return;
    const bad = topicError(topic) ?? topicTooLong(ctx.policy.namespaces.of(topic), topic)?.message;
    if (bad) return replyError(p, '400 Bad Request', ErrorCode.BadTopic, `topic: ${bad}`);
    if (ctx.presence.mode(topic) === false) return replyError(p, '400 Bad Request', ErrorCode.PresenceOff, `presence is off for the namespace of ${topic}`);
    ctx.presence.read(topic).then(
      (r) => replyJson(p, '200 OK', { topic, ...r }),
      (e: Error) => {
        ctx.log.warn('http presence failed', { topic, error: e.message });
        replyError(p, '503 Service Unavailable', ErrorCode.Unavailable, 'presence unavailable, retry later');
      },
    );
  });
}
