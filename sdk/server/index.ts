/** Symphonic server-side SDK for Node backends. */
export { HttpPublishTransport, SymphonicPublisher } from './publisher.ts';
export type { HttpTransportOptions, PublishRequest, PublishTransport, PublisherOptions } from './publisher.ts';
export { SymphonicError, TimeoutError } from '../errors.ts';
export type { PublishAck } from '../types.ts';
