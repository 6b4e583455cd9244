/** The embedded engine: one process, no backbone. Its bus and its sessions live in this gateway. */
import type { Engine } from '../bus.ts';
import { createMemoryBus, type MemoryBusOptions } from './bus.ts';
import { createMemoryInbox } from './inbox.ts';
import { createSessionStore } from './sessions.ts';

export { createMemoryBus, type MemoryBusOptions } from './bus.ts';
export { createSessionStore } from './sessions.ts';

export function createMemoryEngine(bus: MemoryBusOptions, sessions: { readonly ttlMs: number; readonly inboxSize?: number }): Engine {
  const inbox = createMemoryInbox(sessions.inboxSize ?? 1000);
  return { bus: createMemoryBus(bus), sessions: createSessionStore(sessions.ttlMs, (id) => inbox.forget(id)), inbox };
}
