/** The NATS/JetStream Bus engine. See README.md in this folder for the design. */
export { createNatsBus, createNatsEngine, type NatsBus, type NatsEngine } from './engine.ts';
export { createSessionRegistry, type RegistryOptions } from './sessions.ts';
export type { NatsBusStats } from './figures.ts';
export type { NatsBusOptions, NatsCredentials } from './options.ts';
export { NatsBusError, type NatsBusErrorCode } from './errors.ts';
export { encodeEnvelope, decodeEnvelope, type Envelope } from './codec.ts';
export { epochFromCreated } from './stream.ts';
