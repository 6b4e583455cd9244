/**
 * The NATS engine's inboxes (../inbox.ts): the stream `<prefix>_inbox`, subjects
 * `<prefix>.inbox.<sessionId>`, `max_msgs_per_subject = direct.inboxSize`, `max_age = session TTL`,
 * apart from the topic stream so its keeper and snapshots never see direct messages.
 *
 * Live delivery goes only to the gateway holding the session: RePublish copies every stored
 * message to `<prefix>.dm.<sessionId>` (with `Nats-Sequence` and `Nats-Last-Sequence`), and only
 * the gateway with the session's socket subscribes to that one subject. Nothing is broadcast.
 *
 * Reads are STREAM.MSG.GET `next_by_subj` point reads (no consumers: see reader.ts for why).
 * Stored messages carry `prev`, the inbox's last sequence as the appender read it just before
 * (`last_by_subj`), so a resume can tell a dropped message (overflow, age) from sequence numbering.
 * Two appends racing may both name the same `prev`: that never reports a loss that did not happen.
 */
import { Packr, Unpackr } from 'msgpackr';
import {
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  nanos,
  type JetStreamManager,
  type NatsConnection,
  type Msg,
  type StreamConfig,
  type StreamInfo,
} from 'nats';
import type { Logger } from '../../log.ts';
import { randomToken } from '../../random-token.ts';
import { JsReader, type MsgQuery } from '../../../nats-kit/js-reader.ts';
import { lostAfter, type DirectSender, type Inbox, type InboxListener, type InboxMessage } from '../inbox.ts';
import { openConnection } from './connection.ts';
import { lightSubscriber } from './light-subs.ts';
import { resolveOptions, type NatsBusOptions } from './options.ts';
import { askUntil, readUntil, withTimeout } from './requests.ts';
import { epochFromCreated } from './stream.ts';

export interface NatsInboxOptions {
  nats: NatsBusOptions;
  ttlMs: number;
  nodeId: string;
  log: Logger;
  inboxSize: number;
}

interface Stored {
  prev: number;
  from?: DirectSender;
  data: unknown;
  ts: number;
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const ALREADY_IN_USE = 10058;
/** How long a new session's `welcome` waits at most for its live subscription to reach the server. */
const LISTENING_WAIT_MS = 2000;

export const inboxStreamName = (prefix: string) => `${prefix}_inbox`;
export const inboxSubject = (prefix: string, sessionId: string) => `${prefix}.inbox.${sessionId}`;
export const liveSubject = (prefix: string, sessionId: string) => `${prefix}.dm.${sessionId}`;

export function inboxStreamConfig(prefix: string, replicas: number, ttlMs: number, size: number): Partial<StreamConfig> {
  return {
    name: inboxStreamName(prefix),
    description: `Symphonic direct-message inboxes of deployment ${prefix}`,
    subjects: [`${prefix}.inbox.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: replicas,
    max_msgs_per_subject: size,
    max_age: nanos(ttlMs),
    max_msgs: -1,
    max_bytes: -1,
    discard: DiscardPolicy.Old,
    // Retried appends carry one message id: stored once.
    duplicate_window: nanos(Math.min(ttlMs, 30_000)),
    allow_direct: false,
    republish: { src: `${prefix}.inbox.>`, dest: `${prefix}.dm.>` },
  };
}

async function ensureInboxStream(jsm: JetStreamManager, cfg: Partial<StreamConfig>): Promise<StreamInfo> {
  try {
    return await jsm.streams.add(cfg);
  } catch (e) {
    if ((e as { api_error?: { err_code?: number } }).api_error?.err_code !== ALREADY_IN_USE) throw e;
  }
  const existing = await jsm.streams.info(cfg.name!);
  const { name: _n, retention: _r, storage: _s, republish: _p, ...updatable } = cfg;
  return jsm.streams.update(cfg.name!, { ...existing.config, ...updatable });
}

export async function createNatsInbox(o: NatsInboxOptions): Promise<Inbox> {
  const resolved = resolveOptions({ ...o.nats, name: `${o.nodeId}-inbox` });
  const conn = await openConnection(resolved, {
    onDisconnect: () => o.log.warn('inbox disconnected'),
    onReconnect: () => o.log.info('inbox reconnected'),
    onError: (e) => o.log.warn('inbox connection error', { error: e.message }),
  });
  const nc: NatsConnection = conn.nc;
  const prefix = resolved.prefix;
  const stream = inboxStreamName(prefix);
  let info: StreamInfo;
  try {
    const jsm0 = await nc.jetstreamManager({ checkAPI: false });
    info = await askUntil('inbox stream setup', Date.now() + resolved.connectTimeoutMs, () =>
      ensureInboxStream(jsm0, inboxStreamConfig(prefix, resolved.replicas, o.ttlMs, o.inboxSize)),
    );
  } catch (e) {
    await conn.close();
    throw e;
  }
  const reads = new JsReader(nc);
  const js = nc.jetstream();
  const epoch = epochFromCreated(info.created);
  const closed = () => nc.isClosed();
  // Flat once: `${prefix}.dm.${id}` per session would build (and keep) one more string each.
  const liveSubjectPrefix = liveSubject(prefix, '');
  let delivered = 0;
  let closing = false;

  /** Every session's live copies, through one handler (a subscription per session costs no closure). */
  const live = lightSubscriber<InboxListener>(nc, (listener, msg: Msg) => {
    if (closing) return;
    try {
      const s = unpackr.unpack(msg.data) as Stored;
      // The server's own previous sequence of the subject: exact, so a missed live copy shows as a gap.
      const seq = Number(msg.headers?.get('Nats-Sequence'));
      const prev = Number(msg.headers?.get('Nats-Last-Sequence') ?? s.prev);
      if (!Number.isSafeInteger(seq) || seq <= 0) return;
      delivered++;
      listener.deliver({ seq, prev: Number.isSafeInteger(prev) ? prev : s.prev, epoch, ...(s.from ? { from: s.from } : {}), data: s.data, ts: s.ts });
    } catch (e) {
      o.log.warn('undecodable direct message', { error: (e as Error).message });
    }
  });

  /** One point read, asked again until answered or `deadline` (no stack-traced error per empty inbox: js-reader.ts). */
  const get = (query: MsgQuery, deadline: number) => readUntil(reads, stream, query, deadline, closed);
  const lastSeq = async (subject: string, deadline: number) => (await get({ last_by_subj: subject }, deadline))?.seq ?? 0;

  /** The first message of `subject` with seq >= `seq`, if any. */
  const pointRead = async (subject: string, seq: number, deadline: number): Promise<InboxMessage | undefined> => {
    const sm = await get({ seq, next_by_subj: subject }, deadline);
    if (!sm) return undefined;
    const s = unpackr.unpack(sm.data) as Stored;
    return { seq: sm.seq, prev: s.prev, epoch, ...(s.from ? { from: s.from } : {}), data: s.data, ts: s.ts };
  };

  return {
    async append(sessionId, { from, data }) {
      const subject = inboxSubject(prefix, sessionId);
      const deadline = Date.now() + resolved.publishTimeoutMs;
      const prev = await lastSeq(subject, deadline);
      const payload = packr.pack({ prev, ...(from ? { from } : {}), data, ts: Date.now() } satisfies Stored);
      // One id for every attempt: a retry of an append that landed is stored once (duplicate window).
      const msgID = `dm-${randomToken(12)}`;
      const ack = await askUntil('inbox append', deadline, () => js.publish(subject, payload, { msgID }), closed);
      return { seq: ack.seq, epoch };
    },

    async read(sessionId, after) {
      const subject = inboxSubject(prefix, sessionId);
      const deadline = Date.now() + resolved.readTimeoutMs;
      const messages: InboxMessage[] = [];
      let next = after && after.epoch === epoch ? after.seq + 1 : 1;
      while (messages.length < o.inboxSize) {
        const m = await pointRead(subject, next, deadline);
        if (!m) break;
        messages.push(m);
        next = m.seq + 1;
      }
      return { messages, lost: lostAfter(after, epoch, messages[0]) };
    },

    listen(sessionId, listener) {
      return live.subscribe(liveSubjectPrefix + sessionId, listener);
    },

    // A round trip on this connection: the server has then taken every subscription sent before
    // it (and passed the interest on to its cluster). Not answered while disconnected: bounded.
    listening: () => withTimeout(nc.flush(), LISTENING_WAIT_MS, 'inbox subscriptions').catch(() => undefined),

    // The stream's max age (the session TTL) removes an expired session's inbox.
    forget() {},
    delivered: () => delivered,

    async close() {
      closing = true; // no live copy from here on; closing the connection ends every subscription
      await conn.close();
    },
  };
}
