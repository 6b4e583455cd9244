/** What the socket and HTTP handlers share: built once in server.ts. */
import type { Bus } from './bus/bus.ts';
import type { GatewayConfig } from './config.ts';
import type { Interest } from './interest.ts';
import type { Logger } from './log.ts';
import type { SessionStore } from './session/sessions.ts';

export interface GatewayContext {
  readonly config: GatewayConfig;
  readonly bus: Bus;
  readonly interest: Interest;
  readonly sessions: SessionStore;
  readonly log: Logger;
}
