/**
 * The admin API: every route needs an API key with the `admin` scope; JSON in and out; errors are
 * `{error: {code, message}}` with a 4xx/5xx (docs/protocol.md section 13, docs/deploy.md).
 *
 *   GET  /api/admin/cluster          the deployment's gateways (this one alone on the embedded bus)
 *   GET  /api/admin/history?since=   a few minutes of every gateway's connections and rates
 *   GET  /api/admin/sessions/<id>    one session: user, topics, attached, owning gateway
 *   GET  /api/admin/topics/<topic>   subscribers per gateway, last sequence, epoch, state size, window
 *   POST /api/admin/disconnect       {session} or {user}: close 4504, on whichever gateway holds it
 */
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { z } from 'zod';
import { ErrorCode, topicError } from '../../protocol/index.ts';
import { schemaError } from '../../protocol/validate.ts';
import type { GatewayContext } from '../context.ts';
import { checkKey, keyedPost, type KeyUse } from '../http/keyed.ts';
import { pending, replyError, replyJson, type PendingResponse } from '../http/respond.ts';
import type { Admin } from './admin.ts';

const SESSION_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

const DisconnectRequest = z
  .object({
    session: z.string().regex(SESSION_ID_RE, 'a session id is 1-64 characters of [A-Za-z0-9_-]').optional(),
    user: z.string().min(1).max(256).optional(),
    reason: z.string().max(100).optional(),
  })
  .strict()
  .refine((r) => (r.session === undefined) !== (r.user === undefined), { message: 'give exactly one of "session" and "user"' });

interface GetRequest {
  /** The route's parameter (`:id`, `:topic`), percent-decoded. */
  readonly param: string | undefined;
  readonly query: (name: string) => string | undefined;
}

const decode = (s: string) => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};

const count = (answer: unknown, field: string): number => {
  const v = (answer as Record<string, unknown> | undefined)?.[field];
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
};

export function mountAdmin(app: TemplatedApp, ctx: GatewayContext, admin: Admin): void {
  const self = ctx.config.nodeId;

  /** A GET route behind the admin scope; `handle` may be async (a failure is a 500, a bus failure its own answer). */
  function get(path: string, handle: (p: PendingResponse, req: GetRequest, key: KeyUse) => Promise<void> | void) {
    app.get(path, (res: HttpResponse, req: HttpRequest) => {
      const auth = req.getHeader('authorization');
      const raw = path.includes('/:') ? req.getParameter(0) : undefined;
      const query = req.getQuery() ?? '';
      const p = pending(res);
      const key = checkKey(ctx, p, auth, 'admin');
      if (!key) return;
      const params = new URLSearchParams(query);
      const fail = (e: unknown) => {
        ctx.log.error('admin request failed', { route: path, error: (e as Error).message });
        replyError(p, '500 Internal Server Error', ErrorCode.Internal, 'internal error');
      };
      try {
        void Promise.resolve(handle(p, { param: raw === undefined ? undefined : decode(raw), query: (n) => params.get(n) ?? undefined }, key)).catch(fail);
      } catch (e) {
        fail(e);
      }
    });
  }

  get('/api/admin/cluster', (p) => {
    replyJson(p, '200 OK', {
      node: self,
      engine: ctx.bus.engine,
      heartbeatMs: admin.intervalMs,
      staleAfterMs: admin.staleAfterMs,
      now: Date.now(),
      gateways: admin.gateways(),
    });
  });

  get('/api/admin/history', (p, req) => {
    const since = Number(req.query('since') ?? 0);
    if (!Number.isFinite(since)) return replyError(p, '400 Bad Request', ErrorCode.BadRequest, 'since must be a number (ms since the epoch)');
    replyJson(p, '200 OK', { intervalMs: admin.intervalMs, samples: admin.history(since) });
  });

  get('/api/admin/sessions/:id', async (p, req) => {
    const id = req.param ?? '';
    if (!SESSION_ID_RE.test(id)) return replyError(p, '400 Bad Request', ErrorCode.BadRequest, 'a session id is 1-64 characters of [A-Za-z0-9_-]');
    let info: Awaited<ReturnType<typeof ctx.sessions.inspect>>;
    try {
      info = await ctx.sessions.inspect(id);
    } catch (e) {
      ctx.log.warn('admin session lookup failed', { error: (e as Error).message });
      return replyError(p, '503 Service Unavailable', ErrorCode.Unavailable, 'the session store did not answer: retry later');
    }
    if (!info) return replyError(p, '404 Not Found', ErrorCode.NotFound, `no session ${id} (unknown, or expired)`);
    let node: string | null = info.local ? self : info.owner;
    let attached = info.attached ?? false;
    let expiresAt = info.expiresAt;
    let nodeAnswered = info.local;
    if (!info.local && node !== null) {
      // Its record names the gateway that wrote it last: ask that one whether a socket holds it.
      const { answers } = await admin.ask(node, 'session', { id });
      const a = answers.find((x) => x.ok);
      nodeAnswered = a !== undefined;
      attached = (a?.answer as { attached?: unknown } | undefined)?.attached === true;
      if (attached) expiresAt = null;
      else if (!nodeAnswered && !admin.gateways().some((g) => g.node === node)) node = null; // that gateway is gone
    }
    replyJson(p, '200 OK', { id: info.id, user: info.user, topics: info.topics, attached, node, nodeAnswered, expiresAt });
  });

  get('/api/admin/topics/:topic', async (p, req) => {
    const topic = req.param ?? '';
    const bad = topicError(topic);
    if (bad) return replyError(p, '400 Bad Request', ErrorCode.BadTopic, bad);
    const ns = ctx.policy.namespaces.of(topic);
    let r: Awaited<ReturnType<typeof ctx.bus.recover>>;
    try {
      r = await ctx.bus.recover(topic, undefined);
    } catch (e) {
      ctx.log.warn('admin topic lookup failed', { topic, error: (e as Error).message });
      return replyError(p, '503 Service Unavailable', ErrorCode.Unavailable, 'the bus did not answer: retry later');
    }
    const { answers, unanswered } = await admin.ask(null, 'topic', { topic });
    const gateways = answers
      .filter((a) => a.ok)
      .map((a) => ({ node: a.node, subscribers: count(a.answer, 'subscribers') }))
      .sort((a, b) => (a.node === self ? -1 : b.node === self ? 1 : a.node.localeCompare(b.node)));
    replyJson(p, '200 OK', {
      topic,
      namespace: ns.name || null,
      epoch: r.epoch,
      seq: r.seq,
      hasState: r.state !== undefined,
      stateBytes: r.state === undefined ? 0 : Buffer.byteLength(JSON.stringify(r.state)),
      history: ctx.policy.namespaces.historyFor(topic),
      subscribers: gateways.reduce((n, g) => n + g.subscribers, 0),
      gateways,
      unanswered,
    });
  });

  app.post(
    '/api/admin/disconnect',
    keyedPost(ctx, 'admin', (p, json, _bytes, key) => {
      const parsed = DisconnectRequest.safeParse(json);
      if (!parsed.success) {
        const bad = schemaError(parsed.error, ErrorCode.BadRequest, 'body');
        return replyError(p, '400 Bad Request', bad.code, bad.message);
      }
      const { session, user } = parsed.data;
      const reason = parsed.data.reason ?? 'disconnected by an operator';
      const fail = (e: unknown) => {
        ctx.log.error('admin disconnect failed', { error: (e as Error).message });
        replyError(p, '500 Internal Server Error', ErrorCode.Internal, 'internal error');
      };
      void (async () => {
        let target: string | null = null;
        if (session !== undefined) {
          let info: Awaited<ReturnType<typeof ctx.sessions.inspect>>;
          try {
            info = await ctx.sessions.inspect(session);
          } catch {
            return replyError(p, '503 Service Unavailable', ErrorCode.Unavailable, 'the session store did not answer: retry later');
          }
          if (!info) return replyError(p, '404 Not Found', ErrorCode.NotFound, `no session ${session} (unknown, or expired)`);
          // Held here, or by the gateway its record names (if that one is gone, nobody holds its socket).
          target = info.local ? self : info.owner;
        }
        const { answers, unanswered } =
          target === self
            ? { answers: [{ node: self, ok: true, answer: { disconnected: admin.disconnectHere({ session: session! }, reason) } }], unanswered: [] }
            : await admin.ask(target, 'disconnect', session !== undefined ? { session, reason } : { user, reason });
        const gateways = answers.filter((a) => a.ok).map((a) => ({ node: a.node, disconnected: count(a.answer, 'disconnected') }));
        const disconnected = gateways.reduce((n, g) => n + g.disconnected, 0);
        ctx.log.info('admin disconnect', {
          ...(session !== undefined ? { session } : { user }),
          disconnected,
          gateways: gateways.length,
          unanswered: unanswered.length,
          key: key.name,
        });
        replyJson(p, '200 OK', { disconnected, gateways, unanswered });
      })().catch(fail);
    }),
  );
}
