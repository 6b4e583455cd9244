/** Symphonic server-side SDK for Node backends. */
export { SymphonicPublisher } from './publisher.ts';
export type { PublisherOptions } from './publisher.ts';
export { FallbackTransport, TransportUnavailableError } from './transport.ts';
export type { FallbackOptions, PublishRequest, PublishTransport } from './transport.ts';
export { HttpPublishTransport } from './http.ts';
export type { HttpTransportOptions } from './http.ts';
export { NatsPublishTransport } from './nats.ts';
export type { NatsPublisherCredentials, NatsTransportOptions } from './nats.ts';
export { ConnectionClosedError, SequenceConflictError, SymphonicError, TimeoutError } from '../errors.ts';
export { ErrorCode } from '../../protocol/codes.ts';
export type { MessageKind, PublishAck } from '../types.ts';
export { callerFromHeaders, rpcHttpHandler, RpcServiceError, serveRpc } from './service.ts';
export type { RpcCaller, RpcHandler, RpcRequest, ServeOptions } from './service.ts';
