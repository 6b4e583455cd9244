/**
 * Every frame of the wire protocol, both directions, defined once. The gateway validates
 * client frames with these schemas; the TypeScript types of both directions are inferred here.
 * `t` is the frame type; `id` is a client-chosen request id echoed by the reply.
 */
import { z } from 'zod';
import { dataError } from './data.ts';
import { MAX_TOPIC_LENGTH, topicError } from './topic.ts';
import { MAX_RESTORE_TOPICS } from './version.ts';

const RequestId = z
  .number()
  .int()
  .min(0)
  .max(2 ** 31 - 1);
export const Topic = z
  .string()
  .max(MAX_TOPIC_LENGTH)
  .superRefine((t, ctx) => {
    const err = topicError(t);
    if (err) ctx.addIssue({ code: 'custom', message: err });
  });
export const MessageKind = z.enum(['event', 'set', 'patch']);
export type MessageKind = z.infer<typeof MessageKind>;
const Seq = z.number().int().min(0);

// The data rule lives in the zod-free ./data.ts (the server SDK uses it); re-exported here.
export { MAX_DATA_DEPTH, dataError } from './data.ts';

/** Application data as it may enter the system (see dataError); absent means null. */
export const Data = z.unknown().superRefine((v, ctx) => {
  const err = dataError(v);
  if (err) ctx.addIssue({ code: 'custom', message: err });
});
/** A position in a topic: the last sequence the client saw, in the stream identity `epoch`. */
export const Position = z.object({ seq: Seq, epoch: z.string().max(64) }).strict();
export type Position = z.infer<typeof Position>;

// ---- client -> server -------------------------------------------------------------------------

export const HelloFrame = z
  .object({
    t: z.literal('hello'),
    v: z.number().int(),
    token: z.string().max(8192).optional(),
    /** Present when resuming: the session id and resume key from the last `welcome`. */
    session: z
      .object({ id: z.string().max(64), key: z.string().max(128) })
      .strict()
      .optional(),
    /**
     * With `session`: when it is resumed, the server re-subscribes every topic of the session itself
     * (no `sub` frames), each from the position in `since` (replaying what was missed) or, for a
     * topic not listed, from a fresh snapshot. The replies are `subscribed` frames without `id`.
     */
    restore: z
      .object({
        since: z
          .record(Topic, Position)
          .refine((r) => Object.keys(r).length <= MAX_RESTORE_TOPICS, `at most ${MAX_RESTORE_TOPICS} positions`)
          .optional(),
      })
      .strict()
      .optional(),
    client: z.string().max(64).optional(),
    /**
     * Presence info the client offers for itself (small JSON, at most `presence.maxInfoBytes`);
     * a token's `info` claim takes precedence. Shown to members of presence topics it joins.
     */
    info: Data.optional(),
    /**
     * With `session`: the last direct message this client received (its `seq` and `epoch`), so the
     * resumed session gets every later one, once and in order. Absent: every retained one.
     */
    inbox: Position.optional(),
    /**
     * msgpack only: `msg` frames come as short arrays naming the topic by the alias its
     * `subscribed` gave (docs/protocol.md section 7, "msg, compact"); `welcome.compact` says it was granted.
     */
    compact: z.boolean().optional(),
  })
  .strict();

export const SubFrame = z
  .object({
    t: z.literal('sub'),
    id: RequestId,
    topic: Topic,
    /** Resume: replay everything after this position instead of sending a fresh snapshot. */
    since: Position.optional(),
    /** Subscription token (JWT) for a private topic: its claims name the topic (docs/security.md). */
    token: z.string().max(8192).optional(),
  })
  .strict();

export const UnsubFrame = z.object({ t: z.literal('unsub'), id: RequestId, topic: Topic }).strict();

export const PubFrame = z
  .object({
    t: z.literal('pub'),
    /** Without an id the publish is fire-and-forget: no ack (errors still come back). */
    id: RequestId.optional(),
    topic: Topic,
    kind: MessageKind.default('event'),
    data: Data.default(null),
    /**
     * Conditional publish: stored only if the topic's last sequence is still this (0: the topic has
     * no message yet); otherwise error 2008 with the current `seq`, and nothing is stored.
     */
    expect: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  })
  .strict();

export const HistoryFrame = z
  .object({
    t: z.literal('history'),
    id: RequestId,
    topic: Topic,
    /** Messages after this sequence (0 or absent: from the oldest retained). */
    since: Seq.optional(),
    limit: z.number().int().min(1).max(1000).default(100),
    /** Subscription token (JWT) for a private topic, as on `sub`. */
    token: z.string().max(8192).optional(),
  })
  .strict();

export const PingFrame = z.object({ t: z.literal('ping'), id: RequestId.optional() }).strict();

/** In-band token refresh: replaces the connection's token (same user) before it expires. */
export const RefreshFrame = z.object({ t: z.literal('refresh'), id: RequestId, token: z.string().max(8192) }).strict();

/** Sets the session's small app-defined state (replaced whole), restored on resume on any gateway. */
export const SessionFrame = z.object({ t: z.literal('session'), id: RequestId, state: Data }).strict();

/** A session id (as in `welcome.session`) or a user id (a token's `sub`). */
export const SessionId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'a session id is 1-64 characters of [A-Za-z0-9_-]');
export const UserId = z.string().min(1).max(256);
/** Who a direct message goes to: one session, or every session of a user (on any gateway). */
export const Recipient = z.union([z.object({ session: SessionId }).strict(), z.object({ user: UserId }).strict()]);
export type Recipient = z.infer<typeof Recipient>;

/** Reads a topic's presence once (members, or only the count), without subscribing. */
export const PresenceRequestFrame = z.object({ t: z.literal('presence'), id: RequestId, topic: Topic }).strict();

/** A direct message to a session or a user; lossless: kept for a detached session until it resumes (its TTL). */
export const SendFrame = z
  .object({
    t: z.literal('send'),
    /** Without an id: no `sent` reply (errors still come back). */
    id: RequestId.optional(),
    to: Recipient,
    data: Data.default(null),
  })
  .strict();

/** An RPC method name: dot-separated tokens of [A-Za-z0-9_-], like a topic. */
export const MethodName = z
  .string()
  .max(128)
  .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'a method is dot-separated tokens of letters, digits, "_" and "-"');

/** Calls a backend service; answered by an `rpc` frame with the same id, or an error frame. */
export const RpcFrame = z
  .object({
    t: z.literal('rpc'),
    id: RequestId,
    method: MethodName,
    data: Data.default(null),
    /** How long to wait for the answer (ms); capped by the method's configured timeout. */
    timeout: z.number().int().min(1).max(300_000).optional(),
  })
  .strict();

/** Asks for STUN/TURN servers for peer connections (TURN with short-lived credentials). */
export const IceFrame = z.object({ t: z.literal('ice'), id: RequestId }).strict();

export const ClientFrame = z.discriminatedUnion('t', [
  HelloFrame,
  SubFrame,
  UnsubFrame,
  PubFrame,
  HistoryFrame,
  PingFrame,
  RefreshFrame,
  SessionFrame,
  PresenceRequestFrame,
  SendFrame,
  RpcFrame,
  IceFrame,
]);
export type ClientFrame = z.infer<typeof ClientFrame>;
export type ClientFrameInput = z.input<typeof ClientFrame>;
export type HelloFrame = z.infer<typeof HelloFrame>;
export type SubFrame = z.infer<typeof SubFrame>;
export type UnsubFrame = z.infer<typeof UnsubFrame>;
export type PubFrame = z.infer<typeof PubFrame>;
export type HistoryFrame = z.infer<typeof HistoryFrame>;
export type PingFrame = z.infer<typeof PingFrame>;
export type RefreshFrame = z.infer<typeof RefreshFrame>;
export type SessionFrame = z.infer<typeof SessionFrame>;
export type PresenceRequestFrame = z.infer<typeof PresenceRequestFrame>;
export type SendFrame = z.infer<typeof SendFrame>;
export type RpcFrame = z.infer<typeof RpcFrame>;
export type IceFrame = z.infer<typeof IceFrame>;
export const CLIENT_FRAME_TYPES = ClientFrame.options.map((o) => o.shape.t.value);

// ---- server -> client -------------------------------------------------------------------------

/** One message of a topic: `prev` is the sequence of the topic's previous message (0 if none). */
export const Publication = z.object({
  seq: Seq,
  prev: Seq,
  kind: MessageKind,
  data: z.unknown(),
  /** Publish time, ms since the Unix epoch. */
  ts: z.number(),
});
export type Publication = z.infer<typeof Publication>;

export const WelcomeFrame = z.object({
  t: z.literal('welcome'),
  v: z.number().int(),
  session: z.string(),
  key: z.string(),
  /** True when the offered session was found and continued. */
  resumed: z.boolean(),
  /** The server sends a `hb` frame this often (ms); silence for twice as long means a dead link. */
  heartbeat: z.number().int(),
  node: z.string(),
  /** The authenticated user id (the token's `sub`); absent for anonymous connections. */
  user: z.string().optional(),
  /** When the connection's token expires (seconds since the Unix epoch, the JWT `exp`): refresh before. */
  exp: z.number().int().optional(),
  /**
   * On a resumed session: why this gateway closed the session's previous connection when the
   * client could not see the close frame (4001 SlowConsumer: its buffers were full).
   */
  previousClose: z.object({ code: z.number().int(), reason: z.string() }).optional(),
  /** `hello.compact` was granted: `msg` frames on this connection are compact arrays. */
  compact: z.literal(true).optional(),
  /** On a resumed session: direct messages after `hello.inbox` were dropped before the resume (inbox overflow, store recreated). */
  inboxLost: z.literal(true).optional(),
  /** On a resumed session: the topics it was subscribed to (re-subscribe them with `since`). */
  topics: z.array(z.string()).optional(),
  /** On a resumed session: its app-defined state, as last set with a `session` frame. */
  state: z.unknown().optional(),
});

export const SubscribedFrame = z.object({
  t: z.literal('subscribed'),
  /** The `sub`'s id; absent on a subscription the server restored (`hello.restore`). */
  id: RequestId.optional(),
  topic: z.string(),
  epoch: z.string(),
  /** The topic's position this reply is consistent at: `state` is the state after `seq`. */
  seq: Seq,
  /** Snapshot of the topic's state at `seq` (absent when the topic has none, or on full recovery). */
  state: z.unknown().optional(),
  /** The subscribe carried `since`. */
  wasRecovering: z.boolean(),
  /** Every message after `since` is in `replay`; false means a fresh snapshot: messages were lost. */
  recovered: z.boolean(),
  replay: z.array(Publication).optional(),
  /** On a compact connection: the number that names this topic in its compact `msg` frames. */
  alias: z.number().int().min(1).optional(),
});

export const UnsubscribedFrame = z.object({ t: z.literal('unsubscribed'), id: RequestId, topic: z.string() });

export const MsgFrame = Publication.extend({ t: z.literal('msg'), topic: z.string() });

export const AckFrame = z.object({ t: z.literal('ack'), id: RequestId, topic: z.string(), seq: Seq, epoch: z.string() });

export const HistoryResultFrame = z.object({
  t: z.literal('history'),
  id: RequestId,
  topic: z.string(),
  epoch: z.string(),
  /** The newest sequence of the topic when the history was read. */
  seq: Seq,
  messages: z.array(Publication),
  /** False when `since` is older than what is retained: the list does not start right after it. */
  complete: z.boolean(),
});

export const PongFrame = z.object({ t: z.literal('pong'), id: RequestId.optional() });
/** Reply to `refresh`: the new token is in force; `exp` is its expiry (seconds since the epoch), absent if none. */
export const RefreshedFrame = z.object({ t: z.literal('refreshed'), id: RequestId, exp: z.number().int().optional() });
/** Server heartbeat, broadcast to every socket. */
export const HeartbeatFrame = z.object({ t: z.literal('hb') });

export const ErrorFrame = z.object({
  t: z.literal('error'),
  /** The request id this error answers, when it answers one. */
  id: RequestId.optional(),
  code: z.number().int(),
  message: z.string(),
  topic: z.string().optional(),
  /** 2008 (SequenceConflict): the topic's current last sequence. */
  seq: z.number().int().optional(),
  /** 2012 (ServiceError): what the service sent with its error, if anything. */
  data: z.unknown().optional(),
});

/** The `session` state was stored. */
export const SessionSavedFrame = z.object({ t: z.literal('session'), id: RequestId });

/** One present session of a topic. A user with several sessions appears once per session. */
export const PresenceMember = z.object({
  session: z.string(),
  /** Its user (the token's `sub`); absent for an anonymous session. */
  user: z.string().optional(),
  /** What the member offered (`hello.info`) or its token's `info` claim. */
  info: z.unknown().optional(),
});
export type PresenceMember = z.infer<typeof PresenceMember>;

/**
 * A topic's presence, on presence topics (namespace `presence` on). Three shapes:
 *   `members`       the whole member list: replaces what the client held (after `subscribed`, on
 *                   a `presence` request, and whenever the gateway re-synchronises);
 *   `join`/`leave`  what changed since the previous presence frame of the topic (batched);
 *   `count` alone   count-only presence (namespace `presence: "count"`, or past the topic's member limit).
 * `count` (sessions present) is in every shape. Not part of the topic's log: no `seq`, no replay;
 * a (re)subscribe starts again from a full `members` (or `count`) frame.
 */
export const PresenceFrame = z.object({
  t: z.literal('presence'),
  /** The `presence` request's id; absent on frames pushed to subscribers. */
  id: RequestId.optional(),
  topic: z.string(),
  count: z.number().int().min(0),
  members: z.array(PresenceMember).optional(),
  join: z.array(PresenceMember).optional(),
  /** Sessions that left (with their user, so a client can tell when a user's last session left). */
  leave: z.array(PresenceMember).optional(),
});

/** A direct message to this session (or to its user). `seq` orders the session's inbox within `epoch`. */
export const DirectFrame = z.object({
  t: z.literal('dm'),
  seq: Seq,
  epoch: z.string(),
  /** The sending client; absent when a backend sent it (HTTP API, server publisher). */
  from: z.object({ session: z.string(), user: z.string().optional() }).optional(),
  data: z.unknown(),
  /** Send time, ms since the Unix epoch. */
  ts: z.number(),
});

/** Reply to `send`: the message is stored for `sessions` sessions (each gets it once, in order). */
export const SentFrame = z.object({ t: z.literal('sent'), id: RequestId, sessions: z.number().int().min(1) });

/** One STUN or TURN server, in the shape of WebRTC's RTCIceServer. */
export const IceServer = z.object({ urls: z.array(z.string()), username: z.string().optional(), credential: z.string().optional() });

/** Reply to `ice`: pass `servers` as RTCPeerConnection's `iceServers`; ask again before `expires`. */
export const IceResultFrame = z.object({
  t: z.literal('ice'),
  id: RequestId,
  servers: z.array(IceServer),
  /** When the TURN credentials expire (seconds since the Unix epoch); absent when none were issued. */
  expires: z.number().int().optional(),
});

/** The service's answer to `rpc`. */
export const RpcResultFrame = z.object({ t: z.literal('rpc'), id: RequestId, data: z.unknown() });

export const ServerFrame = z.discriminatedUnion('t', [
  WelcomeFrame,
  SubscribedFrame,
  UnsubscribedFrame,
  MsgFrame,
  AckFrame,
  HistoryResultFrame,
  PongFrame,
  HeartbeatFrame,
  ErrorFrame,
  RefreshedFrame,
  SessionSavedFrame,
  PresenceFrame,
  DirectFrame,
  SentFrame,
  RpcResultFrame,
  IceResultFrame,
]);
export type ServerFrame = z.infer<typeof ServerFrame>;
export type WelcomeFrame = z.infer<typeof WelcomeFrame>;
export type SessionSavedFrame = z.infer<typeof SessionSavedFrame>;
export type SubscribedFrame = z.infer<typeof SubscribedFrame>;
export type UnsubscribedFrame = z.infer<typeof UnsubscribedFrame>;
export type MsgFrame = z.infer<typeof MsgFrame>;
export type AckFrame = z.infer<typeof AckFrame>;
export type HistoryResultFrame = z.infer<typeof HistoryResultFrame>;
export type PongFrame = z.infer<typeof PongFrame>;
export type HeartbeatFrame = z.infer<typeof HeartbeatFrame>;
export type ErrorFrame = z.infer<typeof ErrorFrame>;
export type RefreshedFrame = z.infer<typeof RefreshedFrame>;
export type PresenceFrame = z.infer<typeof PresenceFrame>;
export type DirectFrame = z.infer<typeof DirectFrame>;
export type SentFrame = z.infer<typeof SentFrame>;
export type RpcResultFrame = z.infer<typeof RpcResultFrame>;
export type IceResultFrame = z.infer<typeof IceResultFrame>;

// ---- HTTP API ---------------------------------------------------------------------------------

/** Body of `POST /api/publish`. */
export const HttpPublishRequest = z
  .object({
    topic: Topic,
    kind: MessageKind.default('event'),
    data: Data.default(null),
    expect: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  })
  .strict();
export type HttpPublishRequest = z.infer<typeof HttpPublishRequest>;
/** At most this many messages in one `POST /api/publish/batch`. */
export const MAX_BATCH_MESSAGES = 1000;
/** Body of `POST /api/publish/batch`: several publishes in one request, published in order. */
export const HttpPublishBatchRequest = z
  .object({
    messages: z
      .array(
        HttpPublishRequest.extend({
          idempotencyKey: z
            .string()
            .regex(/^[A-Za-z0-9_.:-]{1,128}$/, '1-128 characters of [A-Za-z0-9_.:-]')
            .optional(),
        }).strict(),
      )
      .min(1)
      .max(MAX_BATCH_MESSAGES),
  })
  .strict();
export type HttpPublishBatchRequest = z.infer<typeof HttpPublishBatchRequest>;
/** Every HTTP error answers with this body. */
export const HttpErrorBody = z.object({ error: z.object({ code: z.number().int(), message: z.string(), seq: z.number().int().optional() }) });
export type HttpErrorBody = z.infer<typeof HttpErrorBody>;
