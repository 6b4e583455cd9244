/**
 * The HTTP API for backends: `POST /api/publish` and `POST /api/send` (publish scope), `POST /api/disconnect` and
 * `POST /api/drain` (admin scope), `GET /healthz`, `GET /readyz`, `GET /metrics`; the admin API
 * (`/api/admin/...`) is gateway/admin/routes.ts. API keys are compared in constant time and never
 * logged. Every failure is a 4xx/5xx with `{error: {code, message}}`.
 */
import type { TemplatedApp } from 'uWebSockets.js';
import { z } from 'zod';
import { CloseCode, ErrorCode } from '../../protocol/index.ts';
import { HttpPublishRequest } from '../../protocol/frames.ts';
import { schemaError } from '../../protocol/validate.ts';
import type { GatewayContext } from '../context.ts';
import type { Scope } from '../policy/api-keys.ts';
import { mountBatchPublish } from './batch.ts';
import { keyedPost, type KeyedHandler } from './keyed.ts';
import { publishOne } from './publish.ts';
import { pending, replyError, replyJson } from './respond.ts';
import { mountSend } from './send.ts';

const DisconnectRequest = z.object({ user: z.string().min(1).max(256), reason: z.string().max(100).optional() }).strict();

const IDEMPOTENCY_KEY_RE = /^[A-Za-z0-9_.:-]{1,128}$/;

export function mountApi(app: TemplatedApp, ctx: GatewayContext, connections: () => number): void {
  app.get('/metrics', (res) => {
    const p = pending(res);
    ctx.metrics.render().then(
      (text) => {
        if (p.aborted) return;
        p.aborted = true;
        res.cork(() => res.writeStatus('200 OK').writeHeader('content-type', ctx.metrics.registry.contentType).end(text));
      },
      (e: Error) => {
        ctx.log.error('metrics failed', { error: e.message });
        replyError(p, '500 Internal Server Error', ErrorCode.Internal, 'metrics failed');
      },
    );
  });

  // Readiness (load balancers, Kubernetes): ready only while the bus is connected and the gateway
  // is not draining. Liveness stays /healthz.
  app.get('/readyz', (res) => {
    const bus = ctx.bus.status();
    const reason = ctx.drain.draining ? 'draining' : bus !== 'ready' ? `bus ${bus}` : undefined;
    const body = { ready: reason === undefined, ...(reason ? { reason } : {}), engine: ctx.bus.engine, node: ctx.config.nodeId, connections: connections() };
    replyJson(pending(res), reason ? '503 Service Unavailable' : '200 OK', body);
  });

  // Liveness: 200 while the process serves HTTP at all, whatever the bus does (a NATS outage must
  // not make an orchestrator restart every gateway); the body still says how the bus is.
  app.get('/healthz', (res) => {
    const status = ctx.bus.status();
    const body = {
      status: status === 'ready' ? 'ok' : status,
      engine: ctx.bus.engine,
      node: ctx.config.nodeId,
      connections: connections(),
      draining: ctx.drain.draining,
    };
    replyJson(pending(res), '200 OK', body);
  });

  const route = (scope: Scope, handle: KeyedHandler) => keyedPost(ctx, scope, handle);

  app.post(
    '/api/publish',
    route('publish', (p, json, bodyBytes, key, idempotencyKey) => {
      if (idempotencyKey && !IDEMPOTENCY_KEY_RE.test(idempotencyKey)) {
        return replyError(p, '400 Bad Request', ErrorCode.BadRequest, 'Idempotency-Key must be 1-128 characters of [A-Za-z0-9_.:-]');
      }
      const parsed = HttpPublishRequest.safeParse(json);
      if (!parsed.success) {
        const bad = schemaError(parsed.error, ErrorCode.BadRequest, 'body');
        return replyError(p, '400 Bad Request', bad.code, bad.message);
      }
      void publishOne(ctx, parsed.data, bodyBytes, key.id, idempotencyKey || undefined).then((o) => replyJson(p, o.status, o.body));
    }),
  );

  mountBatchPublish(app, ctx, route);
  mountSend(app, ctx, route);

  // Takes this gateway out of service (as SIGTERM does): readiness false, clients moved to other
  // gateways over the window, then the process exits (main.ts). 202: the drain has started.
  const DrainRequest = z.object({ windowMs: z.number().int().min(0).max(3_600_000).optional() }).strict();
  app.post(
    '/api/drain',
    route('admin', (p, json, _bytes, key) => {
      const parsed = DrainRequest.safeParse(json ?? {});
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        return replyError(p, '400 Bad Request', ErrorCode.BadRequest, `${issue.path.join('.') || 'body'}: ${issue.message}`);
      }
      const windowMs = parsed.data.windowMs ?? ctx.config.drain.windowMs;
      const already = ctx.drain.draining;
      void ctx.drain.start(windowMs);
      ctx.log.info('admin drain', { windowMs, key: key.name, already });
      replyJson(p, '202 Accepted', { draining: true, windowMs, connections: connections() });
    }),
  );

  // Ends every connection of a user on this gateway (e.g. after revoking its tokens): close 4504 (Kicked).
  app.post(
    '/api/disconnect',
    route('admin', (p, json, _bytes, key) => {
      const parsed = DisconnectRequest.safeParse(json);
      if (!parsed.success) {
        const bad = schemaError(parsed.error, ErrorCode.BadRequest, 'body');
        return replyError(p, '400 Bad Request', bad.code, bad.message);
      }
      const conns = ctx.policy.limits.connectionsOf(parsed.data.user);
      for (const c of conns) c.close(CloseCode.Kicked, parsed.data.reason ?? 'disconnected by the server');
      ctx.log.info('admin disconnect', { user: parsed.data.user, connections: conns.length, key: key.name });
      replyJson(p, '200 OK', { disconnected: conns.length });
    }),
  );
}
