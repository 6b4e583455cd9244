/** What the socket and HTTP handlers share: built once in server.ts. */
import type { Aliases } from './aliases.ts';
import type { Bus } from './bus/bus.ts';
import type { GatewayConfig } from './config.ts';
import type { Connection } from './connection/connection.ts';
import type { Drain } from './drain.ts';
import type { Interest } from './interest.ts';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';
import type { Policy } from './policy/index.ts';
import type { Inbox } from './bus/inbox.ts';
import type { Rpc } from './rpc/rpc.ts';
import type { SessionStore } from './bus/sessions.ts';
import type { Presence } from './presence/presence.ts';

export interface GatewayContext {
  readonly config: GatewayConfig;
  readonly bus: Bus;
  readonly interest: Interest;
  readonly sessions: SessionStore;
  /** The sessions' inboxes of direct messages (bus/inbox.ts). */
  readonly inbox: Inbox;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Auth, namespaces, permissions, limits, API keys (gateway/policy/). */
  readonly policy: Policy<Connection>;
  /** Taking this gateway out of service (readiness, upgrades refused, clients moved). */
  readonly drain: Drain;
  /** Who is on presence topics (gateway/presence/). */
  readonly presence: Presence;
  /** Topic aliases of compact connections (`hello.compact`). */
  readonly aliases: Aliases;
  /** Calls to backend services (gateway/rpc/). */
  readonly rpc: Rpc;
}
