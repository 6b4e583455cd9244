/**
 * The HTTP API for backends: `POST /api/publish` (Bearer API key) and `GET /healthz`.
 * Every failure is a 4xx/5xx with `{error: {code, message}}`.
 */
import { timingSafeEqual } from 'node:crypto';
import type { TemplatedApp } from 'uWebSockets.js';
import { ErrorCode } from '../../protocol/index.ts';
import { HttpPublishRequest } from '../../protocol/frames.ts';
import type { GatewayContext } from '../context.ts';
import { pending, readBody, replyError, replyJson } from './respond.ts';

export function mountApi(app: TemplatedApp, ctx: GatewayContext, connections: () => number): void {
  const keys = ctx.config.api.keys.map((k) => Buffer.from(k));

  app.get('/healthz', (res) => {
    const status = ctx.bus.status();
    const body = { status: status === 'ready' ? 'ok' : status, engine: ctx.bus.engine, node: ctx.config.nodeId, connections: connections() };
    replyJson(pending(res), status === 'ready' ? '200 OK' : '503 Service Unavailable', body);
  });

  app.post('/api/publish', (res, req) => {
    const auth = req.getHeader('authorization');
    const p = pending(res);
    if (keys.length === 0) return replyError(p, '503 Service Unavailable', ErrorCode.Unavailable, 'the HTTP API is disabled: configure api.keys (SYMPHONIC_api__keys)');
    if (!authorized(auth, keys)) return replyError(p, '401 Unauthorized', ErrorCode.Unauthorized, 'missing or invalid API key (Authorization: Bearer <key>)');
    readBody(p, ctx.config.api.maxBodyBytes, (body) => {
      if (!body) return replyError(p, '413 Payload Too Large', ErrorCode.PayloadTooLarge, `body larger than ${ctx.config.api.maxBodyBytes} bytes`);
      let json: unknown;
      try {
        json = JSON.parse(body.toString('utf8'));
      } catch {
        return replyError(p, '400 Bad Request', ErrorCode.BadRequest, 'body is not valid JSON');
      }
      const parsed = HttpPublishRequest.safeParse(json);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        const code = issue.path[0] === 'topic' ? ErrorCode.BadTopic : ErrorCode.BadRequest;
        return replyError(p, '400 Bad Request', code, `${issue.path.join('.') || 'body'}: ${issue.message}`);
      }
      const { topic, kind, data } = parsed.data;
      ctx.bus.publish(topic, kind, data).then(
        (r) => replyJson(p, '200 OK', { seq: r.seq, epoch: r.epoch }),
        (e: Error) => {
          ctx.log.warn('http publish failed', { topic, error: e.message });
          replyError(p, '503 Service Unavailable', ErrorCode.Unavailable, 'publish failed, retry later');
        },
      );
    });
  });
}

/** Constant-time check of `Bearer <key>` against every configured key. */
function authorized(header: string, keys: Buffer[]): boolean {
  const m = /^Bearer (.+)$/.exec(header);
  if (!m) return false;
  const given = Buffer.from(m[1]!);
  let ok = false;
  for (const k of keys) ok = (k.length === given.length && timingSafeEqual(k, given)) || ok;
  return ok;
}
