/**
 * What each client frame does. Replies to async work (bus calls) go through `conn.send`, which
 * ignores closed sockets, and re-check that the subscription they serve is still the current one.
 */
import {
  CloseCode, ErrorCode, PROTOCOL_VERSION,
  type ClientFrame, type HelloFrame, type HistoryFrame, type PubFrame, type Publication, type SubFrame, type UnsubFrame,
} from '../../protocol/index.ts';
import type { BusMessage } from '../bus/bus.ts';
import type { GatewayContext } from '../context.ts';
import { nativeTopic } from '../fanout.ts';
import type { Connection } from './connection.ts';

export function handleFrame(ctx: GatewayContext, conn: Connection, frame: ClientFrame): void {
  if (conn.state === 'handshaking' && frame.t !== 'hello') {
    return conn.sendError(ErrorCode.HandshakeRequired, 'send hello first', 'id' in frame ? frame.id : undefined);
  }
  switch (frame.t) {
    case 'hello': return hello(ctx, conn, frame);
    case 'sub': return void subscribe(ctx, conn, frame);
    case 'unsub': return unsubscribe(ctx, conn, frame);
    case 'pub': return publish(ctx, conn, frame);
    case 'history': return void history(ctx, conn, frame);
    case 'ping': return conn.send({ t: 'pong', ...(frame.id === undefined ? {} : { id: frame.id }) });
  }
}

function hello(ctx: GatewayContext, conn: Connection, frame: HelloFrame): void {
  if (frame.v !== PROTOCOL_VERSION) {
    conn.sendError(ErrorCode.UnsupportedVersion, `protocol version ${frame.v} is not supported (server speaks ${PROTOCOL_VERSION})`);
    return conn.close(CloseCode.BadProtocol, 'unsupported protocol version');
  }
  if (!conn.transition('hello')) return conn.sendError(ErrorCode.AlreadyHandshaken, 'hello already received');
  const { session, resumed } = ctx.sessions.attach(frame.session, conn);
  conn.session = session;
  conn.send({
    t: 'welcome', v: PROTOCOL_VERSION, session: session.id, key: session.key, resumed,
    heartbeat: ctx.config.ws.heartbeatMs, node: ctx.config.nodeId,
  });
}

async function subscribe(ctx: GatewayContext, conn: Connection, { id, topic, since }: SubFrame): Promise<void> {
  if (conn.subs.has(topic)) return conn.sendError(ErrorCode.AlreadySubscribed, 'already subscribed', id, topic);
  if (conn.subs.size >= ctx.config.ws.maxSubscriptions) {
    return conn.sendError(ErrorCode.TooManySubscriptions, `at most ${ctx.config.ws.maxSubscriptions} subscriptions per connection`, id, topic);
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
    const recovered = since !== undefined && r.recovered;
    conn.send({
      t: 'subscribed', id, topic, epoch: r.epoch, seq: r.seq, wasRecovering: since !== undefined, recovered,
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
  conn.send({ t: 'unsubscribed', id, topic });
}

/** Forgets one subscription of a live connection (close cleans up through `releaseConnection`). */
function dropSubscription(ctx: GatewayContext, conn: Connection, topic: string): void {
  conn.subs.delete(topic);
  ctx.interest.remove(topic);
  if (conn.state === 'open') conn.ws!.unsubscribe(nativeTopic(conn.codec.encoding, topic));
}

function publish(ctx: GatewayContext, conn: Connection, { id, topic, kind, data }: PubFrame): void {
  if (!ctx.config.clientPublish) return conn.sendError(ErrorCode.PublishNotAllowed, 'clients may not publish on this gateway', id, topic);
  ctx.bus.publish(topic, kind, data).then(
    (r) => id !== undefined && conn.send({ t: 'ack', id, topic, seq: r.seq, epoch: r.epoch }),
    (e: Error) => {
      ctx.log.warn('publish failed', { topic, error: e.message });
      conn.sendError(ErrorCode.Unavailable, 'publish failed, retry later', id, topic);
    },
  );
}

async function history(ctx: GatewayContext, conn: Connection, { id, topic, since, limit }: HistoryFrame): Promise<void> {
  try {
    const r = await ctx.bus.history(topic, since ?? 0, limit);
    conn.send({ t: 'history', id, topic, epoch: r.epoch, seq: r.seq, messages: r.messages.map(toPublication), complete: r.complete });
  } catch (e) {
    ctx.log.warn('history failed', { topic, error: (e as Error).message });
    conn.sendError(ErrorCode.Unavailable, 'history unavailable, retry later', id, topic);
  }
}

/** Called once when the socket is gone: frees the connection's interest and detaches its session. */
export function releaseConnection(ctx: GatewayContext, conn: Connection): void {
  for (const topic of conn.subs.keys()) ctx.interest.remove(topic);
  conn.subs.clear();
  if (conn.session) ctx.sessions.detach(conn.session, conn);
}

function toPublication(m: BusMessage): Publication {
  return { seq: m.seq, prev: m.prev, kind: m.kind, data: m.data, ts: m.ts };
}
