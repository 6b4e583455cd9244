/**
 * The HTTP API for backends: `POST /api/publish` (publish scope), `POST /api/disconnect` and
 * `POST /api/drain` (admin scope), `GET /healthz`, `GET /readyz`, `GET /metrics`; the admin API
 * (`/api/admin/...`) is gateway/admin/routes.ts. API keys are compared in constant time and never
 * logged. Every failure is a 4xx/5xx with `{error: {code, message}}`.
 */
import type { TemplatedApp } from 'uWebSockets.js';
import { z } from 'zod';
import { CloseCode, ErrorCode, jsonCodec } from '../../protocol/index.ts';
import { HttpPublishRequest } from '../../protocol/frames.ts';
import { schemaError } from '../../protocol/validate.ts';
import { isSequenceConflict, isUnsupported } from '../bus/bus.ts';
import { isIdempotencyConflict } from '../bus/idempotency.ts';
import type { GatewayContext } from '../context.ts';
import type { Scope } from '../policy/api-keys.ts';
import { checkPayload, topicTooLong } from '../policy/payload.ts';
import { keyedPost, type KeyedHandler } from './keyed.ts';
import { pending, replyError, replyJson } from './respond.ts';

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
      const { topic, kind, data, expect } = parsed.data;
      const ns = ctx.policy.namespaces.of(topic);
      const long = topicTooLong(ns, topic);
      if (long) return replyError(p, '400 Bad Request', long.code, long.message);
      // Backends are not bound by the namespace's client publish mode, but by its payload rules.
      const bad = checkPayload(ns, data, bodyBytes, (d) => jsonCodec.encode(d as object));
      if (bad) {
        return replyError(p, bad.code === ErrorCode.PayloadTooLarge ? '413 Payload Too Large' : '422 Unprocessable Entity', bad.code, bad.message);
      }
      // A retry with the same Idempotency-Key (e.g. after a 503 or a lost answer) is stored once.
      // Keys are the sending API key's own (scope: its identity): two backends never collide.
      const t0 = performance.now();
      const options = { ...(idempotencyKey ? { idempotencyKey, idempotencyScope: key.id } : {}), ...(expect === undefined ? {} : { expectedSeq: expect }) };
      ctx.bus.publish(topic, kind, data, options).then(
        (r) => {
          ctx.metrics.publishSeconds((performance.now() - t0) / 1000, 'http', true);
          replyJson(p, '200 OK', { seq: r.seq, epoch: r.epoch });
        },
        (e: Error) => {
          ctx.metrics.publishSeconds((performance.now() - t0) / 1000, 'http', false);
          if (isSequenceConflict(e)) {
            // Conditional publish (`expect`): the topic moved on; nothing was stored.
            return replyJson(p, '409 Conflict', { error: { code: ErrorCode.SequenceConflict, message: e.message, seq: e.current } });
          }
          if (isUnsupported(e)) return replyError(p, '400 Bad Request', ErrorCode.BadRequest, e.message);
          if (isIdempotencyConflict(e)) {
            return replyError(
              p,
              '422 Unprocessable Entity',
              ErrorCode.IdempotencyKeyReused,
              'this Idempotency-Key was already used for a different publish (topic, kind or data): use a new key for a new publish',
            );
          }
          ctx.log.warn('http publish failed', { topic, error: e.message });
          replyError(p, '503 Service Unavailable', ErrorCode.Unavailable, 'publish failed, retry later');
        },
      );
    }),
  );

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
