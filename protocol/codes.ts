/**
 * Error codes carried in `error` frames and HTTP error bodies. Ranges:
 *   1xxx  the frame itself is bad (undecodable, schema, size)
 *   2xxx  the request is not valid in this state (topic rules, subscription state)
 *   3xxx  authentication and permission
 *   4xxx  limits (rate, size, counts)
 *   5xxx  server side (internal, bus unavailable); the request may be retried
 */
export const ErrorCode = {
  BadFrame: 1000, // not decodable in the negotiated encoding
  InvalidFrame: 1001, // decodable but does not match the schema
  UnknownFrameType: 1002,
  FrameTooLarge: 1003,
  HandshakeRequired: 1004, // a frame other than hello before welcome
  AlreadyHandshaken: 1005,
  UnsupportedVersion: 1006,

  BadTopic: 2000,
  NotSubscribed: 2001,
  AlreadySubscribed: 2002,
  PublishNotAllowed: 2003,
  BadRequest: 2004,
  NotFound: 2005,
  InvalidPayload: 2006, // published data rejected: namespace schema, nesting depth, or a value type the protocol does not carry
  IdempotencyKeyReused: 2007, // HTTP publish: the Idempotency-Key already named a different publish (topic, kind or data)
  SequenceConflict: 2008, // conditional publish: the topic is no longer at the expected sequence (the error carries `seq`, the current one); nothing was stored
  PresenceOff: 2009, // presence asked of a topic whose namespace has presence off
  NoRecipient: 2010, // direct message: no such session (never existed, or past its TTL) or the user has no session
  UnknownMethod: 2011, // RPC: no service is configured for this method (or the name is malformed)
  ServiceError: 2012, // RPC: the service answered with an error (its message, and `data` when it sent some)

  Unauthorized: 3000,
  Forbidden: 3001,
  TokenExpired: 3002,

  RateLimited: 4000,
  TooManySubscriptions: 4001,
  PayloadTooLarge: 4002,
  LimitExceeded: 4003,
  TooManyConnections: 4004, // per-user (at hello) or per-IP (HTTP 429 at upgrade) connection limit reached
  ReplyTooLarge: 4005, // RPC: the service's answer is larger than the gateway passes on (rpc.maxReplyBytes)

  Internal: 5000,
  Unavailable: 5001,
  ServiceTimeout: 5002, // RPC: the service did not answer within the timeout (it may still have acted)
  NoResponders: 5003, // RPC: no instance of the service is listening right now
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * WebSocket close codes (4000-4999 is the application range). Ranges:
 *   4000-4499  transient: the client reconnects (with backoff) and resumes its session
 *   4500-4999  terminal: the client must not reconnect without a change (token, version, code)
 * Standard codes 1000-1015 keep their RFC 6455 meaning; 1000 from the client is a plain close.
 */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  MessageTooBig: 1009,
  InternalError: 1011,

  ServerShutdown: 4000, // restart or drain: reconnect elsewhere
  SlowConsumer: 4001, // outbound buffer passed its limit: reconnect and resume
  HandshakeTimeout: 4002,
  IdleTimeout: 4003,
  SessionTakenOver: 4004, // the same session resumed on another socket
  TokenExpired: 4005, // refresh the token, then reconnect
  RateLimited: 4006, // kept sending past the rate limit: back off, then reconnect and resume
  TooManyConnections: 4007, // the user holds the maximum number of connections: retry later (backoff)

  BadProtocol: 4500, // unsupported version or encoding; presence info too large at hello
  Unauthorized: 4501,
  Forbidden: 4502,
  TooManyErrors: 4503, // kept sending invalid frames
  Kicked: 4504, // an operator ended this session: do not reconnect automatically
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/**
 * Standard codes that only a broken client earns (protocol error, unacceptable or invalid data,
 * policy violation): reconnecting would repeat the fault.
 */
const TERMINAL_STANDARD = new Set([1002, 1003, 1007, 1008]);

/** Whether a close code tells the client to stop reconnecting. */
export function isTerminalClose(code: number): boolean {
  return (code >= 4500 && code <= 4999) || TERMINAL_STANDARD.has(code);
}
