/**
 * Symphonic realtime SDK (browser and Node). The browser bundle exposes this module as the global
 * `Symphonic`; the server-side publisher lives in ./server/ (Node backends).
 */
export { SymphonicClient } from './client.ts';
export type { ClientEvents, ClientOptions, ConnectedInfo, HistoryOptions, IceServers, PublishOptions, RpcOptions } from './client.ts';
export type { TokenReason } from './token.ts';
export type { DirectMessage, Recipient } from './direct.ts';
export { Subscription } from './subscription.ts';
export { Presence } from './presence.ts';
export type { PresenceChange, PresenceEvents, PresenceMember, PresenceSnapshot, PresenceUser } from './presence.ts';
export type { Change, SubscribeOptions, SubscribedInfo, SubscriptionEvents } from './subscription.ts';
export { nextConnectionState } from './connection-state.ts';
export type { ConnectionEvent, ConnectionState, StateChange } from './connection-state.ts';
export { nextSubscriptionStatus } from './subscription-state.ts';
export type { SubscriptionEvent, SubscriptionStatus } from './subscription-state.ts';
export { backoffDelay, shutdownDelay, DEFAULT_BACKOFF } from './backoff.ts';
export type { BackoffOptions } from './backoff.ts';
export { ClientErrorCode, ConnectionClosedError, SequenceConflictError, ServiceError, SymphonicError, TimeoutError, ValidationError } from './errors.ts';
export type { Infer, MergePatch, Schema } from './schema.ts';
export type { SocketLike, WebSocketConstructor } from './transport.ts';
export type { HistoryResult, Message, MessageKind, Position, PublishAck, SessionInfo } from './types.ts';
export { CloseCode, ErrorCode, isTerminalClose } from '../protocol/codes.ts';
export { applyMergePatch, applyMessage } from '../protocol/merge-patch.ts';
export { PROTOCOL_VERSION } from '../protocol/version.ts';
