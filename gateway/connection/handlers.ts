/**
 * What each client frame does. Replies to async work (bus calls, token checks) go through
 * `conn.send`, which ignores closed sockets, and re-check that the subscription they serve is
 * still the current one. Every request passes its policy checks (gateway/policy/) here, on the
 * ingress side; nothing is checked per delivery.
 */
import {
  CloseCode, ErrorCode, PROTOCOL_VERSION,
  type ClientFrame, type HelloFrame, type HistoryFrame, type Position, type PubFrame, type Publication, type RefreshFrame, type SessionFrame, type UnsubFrame,
} from '../../protocol/index.ts';
import type { BusMessage } from '../bus/bus.ts';
import type { GatewayContext } from '../context.ts';
import { nativeTopic } from '../fanout.ts';
import { ANONYMOUS, type Identity, type SubscriptionGrant } from '../policy/auth.ts';
import type { Namespace } from '../policy/namespaces.ts';
import { canPublish, canSubscribe, type Decision } from '../policy/permissions.ts';
import type { Connection } from './connection.ts';

/** Frames a client may send while its `hello` token is being verified; later ones get 1004. */
const MAX_PENDING = 32;

export function handleFrame(ctx: GatewayContext, conn: Connection, frame: ClientFrame, bytes = 0): void {
  if (conn.state === 'closed' || conn.closing) return; // e.g. frames queued behind a hello that was refused
  if (conn.state === 'handshaking') {
    if (conn.authenticating && frame.t !== 'hello' && conn.pending.length < MAX_PENDING) return void conn.pending.push({ frame, bytes });
    if (frame.t !== 'hello') return conn.sendError(ErrorCode.HandshakeRequired, 'send hello first', 'id' in frame ? frame.id : undefined);
  }
  switch (frame.t) {
    case 'hello': return hello(ctx, conn, frame);
    case 'sub': return void subscribe(ctx, conn, frame.id, frame.topic, frame.since, frame.token).catch(internalError(ctx, conn, frame));
    case 'unsub': return unsubscribe(ctx, conn, frame);
    case 'pub': return publish(ctx, conn, frame, bytes);
    case 'history': return void history(ctx, conn, frame).catch(internalError(ctx, conn, frame));
    case 'ping': return conn.send({ t: 'pong', ...(frame.id === undefined ? {} : { id: frame.id }) });
    case 'refresh': return void refresh(ctx, conn, frame).catch(internalError(ctx, conn, frame));
    case 'session': return setSessionState(ctx, conn, frame);
  }
}

/**
 * Last resort for a bug in an async handler: answer 5000 and log, never an unhandled rejection.
 * `request` is the client frame, or what stands for one (a subscription restored by `hello`).
 */
function internalError(ctx: GatewayContext, conn: Connection, request: { t: string; id?: number | undefined; topic?: string }) {
  return (e: unknown) => {
    ctx.log.error('request failed', { t: request.t, topic: request.topic, error: (e as Error)?.message ?? String(e) });
    conn.sendError(ErrorCode.Internal, 'internal error', request.id, request.topic);
  };
}

/** Answers a denied request; denials count toward `ws.maxErrors` like invalid frames (4503). */
function refuse(ctx: GatewayContext, conn: Connection, code: ErrorCode, message: string, id?: number, topic?: string): void {
  conn.sendError(code, message, id, topic);
  if (++conn.errors > ctx.config.ws.maxErrors) conn.close(CloseCode.TooManyErrors, 'too many invalid or denied requests');
}

function hello(ctx: GatewayContext, conn: Connection, frame: HelloFrame): void {
  if (frame.v !== PROTOCOL_VERSION) {
    conn.sendError(ErrorCode.UnsupportedVersion, `protocol version ${frame.v} is not supported (server speaks ${PROTOCOL_VERSION})`);
    return conn.close(CloseCode.BadProtocol, 'unsupported protocol version');
  }
  if (conn.state !== 'handshaking' || conn.authenticating) return conn.sendError(ErrorCode.AlreadyHandshaken, 'hello already received');
  if (frame.token === undefined) {
    if (!ctx.policy.auth.anonymous) {
      conn.sendError(ErrorCode.Unauthorized, 'this gateway requires a token (hello.token)');
      return conn.close(CloseCode.Unauthorized, 'token required');
    }
    return welcome(ctx, conn, frame, ANONYMOUS);
  }
  conn.authenticating = true;
  ctx.policy.auth.identity(frame.token).then((r) => {
    conn.authenticating = false;
    if (conn.state !== 'handshaking' || conn.closing) return;
    if (!r.ok) {
      conn.sendError(r.code, r.message);
      return conn.close(r.code === ErrorCode.TokenExpired ? CloseCode.TokenExpired : CloseCode.Unauthorized, r.message);
    }
    welcome(ctx, conn, frame, r.value);
  }).catch((e: Error) => {
    ctx.log.error('hello failed', { error: e.message });
    conn.close(CloseCode.InternalError, 'internal error');
  });
}

function welcome(ctx: GatewayContext, conn: Connection, frame: HelloFrame, identity: Identity): void {
  const { limits } = ctx.policy;
  if (identity.user !== null) {
    if (!limits.userHasRoom(identity.user)) {
      conn.sendError(ErrorCode.TooManyConnections, `at most ${ctx.config.limits.maxConnectionsPerUser} connections per user`);
      return conn.close(CloseCode.TooManyConnections, 'too many connections for this user');
    }
    conn.userRate = limits.addUser(identity.user, conn);
  }
  conn.identity = identity;
  // The session store may be remote (shared by a cluster): frames that arrive meanwhile wait in `pending`.
  conn.authenticating = true;
  ctx.sessions.attach(frame.session, conn, identity.user).then(({ session, resumed }) => {
    conn.authenticating = false;
    if (conn.state !== 'handshaking' || conn.closing) return ctx.sessions.detach(session, conn);
    conn.transition('hello');
    scheduleExpiry(ctx, conn);
    conn.session = session;
    const note = session.previousClose;
    session.previousClose = undefined;
    conn.send({
      t: 'welcome', v: PROTOCOL_VERSION, session: session.id, key: session.key, resumed,
      heartbeat: ctx.config.ws.heartbeatMs, node: ctx.config.nodeId,
      ...(identity.user === null ? {} : { user: identity.user }),
      ...(identity.exp === null ? {} : { exp: identity.exp }),
      ...(note ? { previousClose: note } : {}),
      ...(resumed ? { topics: [...session.topics] } : {}),
      ...(resumed && session.state !== undefined ? { state: session.state } : {}),
    });
    if (resumed && frame.restore) restoreSubscriptions(ctx, conn, frame.restore.since ?? {});
    const queued = conn.pending;
    conn.pending = [];
    for (const q of queued) handleFrame(ctx, conn, q.frame, q.bytes);
  }).catch((e: Error) => {
    ctx.log.error('session attach failed', { error: e.message });
    conn.close(CloseCode.InternalError, 'internal error');
  });
}

/**
 * `hello.restore` on a resumed session: every topic of the session is subscribed again as if the
 * client had sent `sub` (same checks), from its position in `since` when given, else fresh. The
 * topics are reserved before this returns, so a `sub` the client sent anyway is "already subscribed".
 */
function restoreSubscriptions(ctx: GatewayContext, conn: Connection, since: Record<string, Position>): void {
  for (const topic of [...conn.session!.topics]) {
    const position = Object.hasOwn(since, topic) ? since[topic] : undefined;
    void subscribe(ctx, conn, undefined, topic, position, undefined).catch(internalError(ctx, conn, { t: 'sub', topic }));
  }
}

/** Replaces the session's app-defined state (bounded), persisted with the session for resume. */
function setSessionState(ctx: GatewayContext, conn: Connection, { id, state }: SessionFrame): void {
  const size = Buffer.byteLength(JSON.stringify(state) ?? '');
  if (size > ctx.config.session.maxStateBytes) {
    return refuse(ctx, conn, ErrorCode.PayloadTooLarge, `session state larger than ${ctx.config.session.maxStateBytes} bytes`, id);
  }
  const session = conn.session!;
  session.state = state === null ? undefined : state;
  ctx.sessions.changed(session);
  conn.send({ t: 'session', id });
}

/** Closes the connection (4005) once its token has expired and was not refreshed. */
function scheduleExpiry(ctx: GatewayContext, conn: Connection): void {
  if (conn.expiryTimer) clearTimeout(conn.expiryTimer);
  conn.expiryTimer = null;
  const exp = conn.identity.exp;
  if (exp === null) return;
  const due = (exp + ctx.policy.auth.clockToleranceSec) * 1000;
  conn.expiryTimer = setTimeout(() => {
    conn.expiryTimer = null;
    if (conn.state !== 'open') return;
    if (Date.now() < due) return scheduleExpiry(ctx, conn); // timers cap at ~24.8 days
    conn.sendError(ErrorCode.TokenExpired, 'token expired: send refresh before exp, or reconnect with a new token');
    conn.close(CloseCode.TokenExpired, 'token expired');
  }, Math.min(Math.max(0, due - Date.now()), 2 ** 31 - 1));
  conn.expiryTimer.unref?.();
}

async function refresh(ctx: GatewayContext, conn: Connection, { id, token }: RefreshFrame): Promise<void> {
  const r = await ctx.policy.auth.identity(token);
  if (conn.state !== 'open') return;
  if (!r.ok) return refuse(ctx, conn, r.code, r.message, id);
  if (r.value.user !== conn.identity.user) {
    return refuse(ctx, conn, ErrorCode.Forbidden, conn.identity.user === null
      ? 'an anonymous connection cannot take a token in band: reconnect with it in hello'
      : 'the new token is for another user', id);
  }
  conn.identity = r.value;
  scheduleExpiry(ctx, conn);
  conn.send({ t: 'refreshed', id, ...(r.value.exp === null ? {} : { exp: r.value.exp }) });
}

/**
 * May this connection read `topic` (subscribe, history)? The topic-length check of its namespace,
 * then the permission decision; a subscription token, when given and the connection's own `subs`
 * claim does not already allow the topic, is verified first (a token given is a token checked).
 * Never throws: a failure inside is logged and answered as a 5000 denial.
 */
async function authorizeRead(ctx: GatewayContext, conn: Connection, topic: string, token: string | undefined): Promise<Decision> {
  try {
    return await decideRead(ctx, conn, topic, token);
  } catch (e) {
    ctx.log.error('read authorization failed', { topic, error: (e as Error).message });
    return { ok: false, code: ErrorCode.Internal, message: 'authorization failed' };
  }
}

async function decideRead(ctx: GatewayContext, conn: Connection, topic: string, token: string | undefined): Promise<Decision> {
  const ns = ctx.policy.namespaces.of(topic);
  const long = topicTooLong(ns, topic);
  if (long) return long;
  let grant: SubscriptionGrant | null = null;
  if (token !== undefined && !conn.identity.subs.matches(topic)) {
    const g = await ctx.policy.auth.grant(token);
    if (!g.ok) return g;
    grant = g.value;
  }
  return canSubscribe(conn.identity, ns, topic, grant);
}

function topicTooLong(ns: Namespace, topic: string): Denial | null {
  return topic.length > ns.maxTopicLength
    ? { ok: false, code: ErrorCode.BadTopic, message: `topic longer than ${ns.maxTopicLength} characters` }
    : null;
}

/** A `sub` (or a restored subscription: no `id`). */
async function subscribe(ctx: GatewayContext, conn: Connection, id: number | undefined, topic: string, since: Position | undefined, token: string | undefined): Promise<void> {
  if (conn.subs.has(topic)) return conn.sendError(ErrorCode.AlreadySubscribed, 'already subscribed', id, topic);
  if (conn.subs.size >= ctx.config.ws.maxSubscriptions) {
    return conn.sendError(ErrorCode.TooManySubscriptions, `at most ${ctx.config.ws.maxSubscriptions} subscriptions per connection`, id, topic);
  }
  // Reserved while authorizing (no interest taken yet), so a second sub of the topic is refused.
  const reservation = { state: 'authorizing' as const };
  conn.subs.set(topic, reservation);
  const decision = await authorizeRead(ctx, conn, topic, token);
  if (conn.state !== 'open' || conn.subs.get(topic) !== reservation) {
    return conn.sendError(ErrorCode.NotSubscribed, 'unsubscribed before the subscription was ready', id, topic);
  }
  if (!decision.ok) {
    conn.subs.delete(topic);
    return refuse(ctx, conn, decision.code, decision.message, id, topic);
  }

  const sub = { state: 'subscribing' as const };
  conn.subs.set(topic, sub);
  const current = () => conn.state === 'open' && conn.subs.get(topic) === sub;
  try {
    await ctx.interest.add(topic);
    if (!current()) return conn.sendError(ErrorCode.NotSubscribed, 'unsubscribed before the subscription was ready', id, topic);
    // Join the live stream before reading the snapshot: nothing published in between is missed;
    // the client drops what it then sees twice (by seq).
    conn.ws!.subscribe(nativeTopic(conn.codec.encoding, topic));
    const r = await ctx.bus.recover(topic, since);
    if (!current()) return conn.sendError(ErrorCode.NotSubscribed, 'unsubscribed before the subscription was ready', id, topic);
    conn.subs.set(topic, { state: 'subscribed' });
    rememberTopic(ctx, conn, topic, true);
    const recovered = since !== undefined && r.recovered;
    conn.send({
      t: 'subscribed', ...(id === undefined ? {} : { id }), topic, epoch: r.epoch, seq: r.seq, wasRecovering: since !== undefined, recovered,
      ...(recovered ? { replay: r.replay.map(toPublication) } : r.state === undefined ? {} : { state: r.state }),
    });
  } catch (e) {
    ctx.log.warn('subscribe failed', { topic, error: (e as Error).message });
    if (conn.subs.get(topic) === sub) dropSubscription(ctx, conn, topic);
    conn.sendError(ErrorCode.Unavailable, 'subscription failed, retry later', id, topic);
  }
}

function unsubscribe(ctx: GatewayContext, conn: Connection, { id, topic }: UnsubFrame): void {
  if (!conn.subs.has(topic)) return conn.sendError(ErrorCode.NotSubscribed, 'not subscribed', id, topic);
  dropSubscription(ctx, conn, topic);
  rememberTopic(ctx, conn, topic, false);
  conn.send({ t: 'unsubscribed', id, topic });
}

/** The session's topic list outlives the socket: a resume on any gateway learns it in `welcome`. */
function rememberTopic(ctx: GatewayContext, conn: Connection, topic: string, subscribed: boolean): void {
  const session = conn.session!;
  if (subscribed === session.topics.has(topic)) return;
  if (subscribed) session.topics.add(topic);
  else session.topics.delete(topic);
  ctx.sessions.changed(session);
}

/** Forgets one subscription of a live connection (close cleans up through `releaseConnection`). */
function dropSubscription(ctx: GatewayContext, conn: Connection, topic: string): void {
  const rec = conn.subs.get(topic);
  conn.subs.delete(topic);
  if (!rec || rec.state === 'authorizing') return; // no interest was taken
  ctx.interest.remove(topic);
  if (conn.state === 'open') conn.ws!.unsubscribe(nativeTopic(conn.codec.encoding, topic));
}

function publish(ctx: GatewayContext, conn: Connection, { id, topic, kind, data }: PubFrame, bytes: number): void {
  const ns = ctx.policy.namespaces.of(topic);
  const denied = topicTooLong(ns, topic)
    ?? canPublishOrNull(canPublish(conn.identity, ns, topic, ctx.config.clientPublish))
    ?? checkPayload(ns, data, bytes, (d) => conn.codec.encode(d as object));
  if (denied) return refuse(ctx, conn, denied.code, denied.message, id, topic);
  ctx.bus.publish(topic, kind, data).then(
    (r) => id !== undefined && conn.send({ t: 'ack', id, topic, seq: r.seq, epoch: r.epoch }),
    (e: Error) => {
      ctx.log.warn('publish failed', { topic, error: e.message });
      conn.sendError(ErrorCode.Unavailable, 'publish failed, retry later', id, topic);
    },
  );
}

type Denial = Extract<Decision, { ok: false }>;

function canPublishOrNull(d: Decision): Denial | null {
  return d.ok ? null : d;
}

/**
 * Checks published `data` against its namespace: at most `maxPayloadBytes` as encoded by the
 * publisher (`frameBytes`, the whole frame's size, is an upper bound that spares the re-encode for
 * most publishes), then the namespace schema. Shared by client `pub` and the HTTP API. (That data
 * is plain JSON-like data within the depth limit is checked by the protocol schema already.)
 */
export function checkPayload(ns: Namespace, data: unknown, frameBytes: number, encode: (d: unknown) => Uint8Array | string): Denial | null {
  if (frameBytes > ns.maxPayloadBytes) {
    const encoded = encode(data);
    const size = typeof encoded === 'string' ? Buffer.byteLength(encoded) : encoded.byteLength;
    if (size > ns.maxPayloadBytes) return { ok: false, code: ErrorCode.PayloadTooLarge, message: `data larger than ${ns.maxPayloadBytes} bytes` };
  }
  const mismatch = ns.schema?.(data);
  if (mismatch) return { ok: false, code: ErrorCode.InvalidPayload, message: `data does not match the schema of namespace "${ns.name}": ${mismatch}` };
  return null;
}

async function history(ctx: GatewayContext, conn: Connection, { id, topic, since, limit, token }: HistoryFrame): Promise<void> {
  const decision = await authorizeRead(ctx, conn, topic, token);
  if (conn.state !== 'open') return;
  if (!decision.ok) return refuse(ctx, conn, decision.code, decision.message, id, topic);
  try {
    const r = await ctx.bus.history(topic, since ?? 0, limit);
    conn.send({ t: 'history', id, topic, epoch: r.epoch, seq: r.seq, messages: r.messages.map(toPublication), complete: r.complete });
  } catch (e) {
    ctx.log.warn('history failed', { topic, error: (e as Error).message });
    conn.sendError(ErrorCode.Unavailable, 'history unavailable, retry later', id, topic);
  }
}

/** Called once when the socket is gone: frees the connection's interest, limits and session. */
export function releaseConnection(ctx: GatewayContext, conn: Connection): void {
  for (const [topic, rec] of conn.subs) if (rec.state !== 'authorizing') ctx.interest.remove(topic);
  conn.subs.clear();
  conn.pending = [];
  if (conn.expiryTimer) clearTimeout(conn.expiryTimer);
  conn.expiryTimer = null;
  if (conn.identity.user !== null && conn.userRate) ctx.policy.limits.removeUser(conn.identity.user, conn);
  if (conn.session) {
    if (conn.slow) conn.session.previousClose = { code: CloseCode.SlowConsumer, reason: 'slow consumer: the outbound buffer passed its limit; resume from your last position' };
    ctx.sessions.detach(conn.session, conn);
  }
}

function toPublication(m: BusMessage): Publication {
  return { seq: m.seq, prev: m.prev, kind: m.kind, data: m.data, ts: m.ts };
}
