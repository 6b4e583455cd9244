/**
 * The topic requests of an open connection: `sub` (and the subscriptions `hello.restore` brings
 * back), `unsub`, `pub` and `history`, each after its policy checks (gateway/policy/). Replies to
 * async work re-check that the connection, and the subscription they serve, are still current.
 */
import { ErrorCode, type HistoryFrame, type Position, type PubFrame, type Publication, type UnsubFrame } from '../../protocol/index.ts';
import { isSequenceConflict, isUnsupported, type BusMessage } from '../bus/bus.ts';
import type { GatewayContext } from '../context.ts';
import { nativeTopic } from '../fanout.ts';
import type { SubscriptionGrant } from '../policy/auth.ts';
import { checkPayload, topicTooLong } from '../policy/payload.ts';
import { canPublish, canSubscribe, type Decision, type Denial } from '../policy/permissions.ts';
import type { Connection } from './connection.ts';
import { replySoon } from './replies.ts';
import { refuse } from './refuse.ts';

/**
 * May this connection read `topic` (subscribe, history)? The topic-length check of its namespace,
 * then the permission decision; a subscription token, when given and the connection's own `subs`
 * claim does not already allow the topic, is verified first (a token given is a token checked).
 * Never throws: a failure inside is logged and answered as a 5000 denial.
 */
export async function authorizeRead(ctx: GatewayContext, conn: Connection, topic: string, token: string | undefined): Promise<Decision> {
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

/** A `sub` (or a restored subscription: no `id`). */
export async function subscribe(
  ctx: GatewayContext,
  conn: Connection,
  id: number | undefined,
  topic: string,
  since: Position | undefined,
  token: string | undefined,
): Promise<void> {
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

  const sub: { state: 'subscribing'; alias?: number } = { state: 'subscribing' };
  conn.subs.set(topic, sub);
  const current = () => conn.state === 'open' && conn.subs.get(topic) === sub;
  try {
    // On a presence topic the view across gateways is synced before `subscribed` (its full list follows it).
    await Promise.all([ctx.interest.add(topic), ctx.presence.ready(topic)]);
    if (!current()) return conn.sendError(ErrorCode.NotSubscribed, 'unsubscribed before the subscription was ready', id, topic);
    // The record holds the alias from here on: dropSubscription and releaseConnection give it back.
    const alias = conn.compact ? (sub.alias = ctx.aliases.acquire(topic)) : undefined;
    // Join the live stream before reading the snapshot: nothing published in between is missed;
    // the client drops what it then sees twice (by seq).
    conn.ws!.subscribe(nativeTopic(conn.codec.encoding, topic, conn.compact));
    const r = await ctx.bus.recover(topic, since);
    if (!current()) return conn.sendError(ErrorCode.NotSubscribed, 'unsubscribed before the subscription was ready', id, topic);
    conn.subs.set(topic, { state: 'subscribed', alias });
    rememberTopic(ctx, conn, topic, true);
    const recovered = since !== undefined && r.recovered;
    conn.send({
      t: 'subscribed',
      ...(id === undefined ? {} : { id }),
      topic,
      epoch: r.epoch,
      seq: r.seq,
      wasRecovering: since !== undefined,
      recovered,
      ...(alias === undefined ? {} : { alias }),
      ...(recovered ? { replay: r.replay.map(toPublication) } : r.state === undefined ? {} : { state: r.state }),
    });
    ctx.presence.subscribed(conn, topic);
  } catch (e) {
    ctx.log.warn('subscribe failed', { topic, error: (e as Error).message });
    if (conn.subs.get(topic) === sub) dropSubscription(ctx, conn, topic);
    conn.sendError(ErrorCode.Unavailable, 'subscription failed, retry later', id, topic);
  }
}

export function unsubscribe(ctx: GatewayContext, conn: Connection, { id, topic }: UnsubFrame): void {
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
  if (rec.state === 'subscribed') ctx.presence.unsubscribed(conn, topic);
  if (rec.alias !== undefined) ctx.aliases.release(topic);
  ctx.interest.remove(topic);
  if (conn.state === 'open') conn.ws!.unsubscribe(nativeTopic(conn.codec.encoding, topic, conn.compact));
}

export function publish(ctx: GatewayContext, conn: Connection, { id, topic, kind, data, expect }: PubFrame, bytes: number): void {
  const ns = ctx.policy.namespaces.of(topic);
  const denied =
    topicTooLong(ns, topic) ??
    canPublishOrNull(canPublish(conn.identity, ns, topic, ctx.config.clientPublish)) ??
    checkPayload(ns, data, bytes, (d) => conn.codec.encode(d as object));
  if (denied) return refuse(ctx, conn, denied.code, denied.message, id, topic);
  ctx.bus.publish(topic, kind, data, expect === undefined ? undefined : { expectedSeq: expect }).then(
    (r) => id !== undefined && replySoon(conn, { t: 'ack', id, topic, seq: r.seq, epoch: r.epoch }),
    (e: Error) => {
      const error = (code: ErrorCode, message: string, extra: object = {}) =>
        replySoon(conn, { t: 'error', code, message, ...(id === undefined ? {} : { id }), topic, ...extra });
      // A conditional publish that lost the race: the client re-reads and tries again (not a failure of ours).
      if (isSequenceConflict(e)) return error(ErrorCode.SequenceConflict, e.message, { seq: e.current });
      if (isUnsupported(e)) return error(ErrorCode.BadRequest, e.message);
      ctx.log.warn('publish failed', { topic, error: e.message });
      error(ErrorCode.Unavailable, 'publish failed, retry later');
    },
  );
}

function canPublishOrNull(d: Decision): Denial | null {
  return d.ok ? null : d;
}

export async function history(ctx: GatewayContext, conn: Connection, { id, topic, since, limit, token }: HistoryFrame): Promise<void> {
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

function toPublication(m: BusMessage): Publication {
  return { seq: m.seq, prev: m.prev, kind: m.kind, data: m.data, ts: m.ts };
}
