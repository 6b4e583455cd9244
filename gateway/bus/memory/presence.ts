/**
 * Presence on an engine without peers (the embedded bus): this gateway is the whole deployment,
 * so nothing goes out and nobody answers. gateway/presence/ keeps the members.
 */
import type { PresenceLink } from '../bus.ts';

export function localPresence(): PresenceLink {
  return {
    instance: 'local',
    start() {},
    watch() {},
    unwatch() {},
    publish() {},
    collect: async () => [],
    close() {},
  };
}
