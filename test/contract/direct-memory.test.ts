/** The embedded engine's session store and inboxes against the direct-message contract. */
import { createMemoryInbox } from '../../gateway/bus/memory/inbox.ts';
import { createSessionStore } from '../../gateway/bus/memory/sessions.ts';
import { runDirectContract } from './direct.contract.ts';

runDirectContract('memory', async (inboxSize) => {
  const inbox = createMemoryInbox(inboxSize);
  const sessions = createSessionStore(60_000, (id) => inbox.forget(id));
  return { sessions, inbox, cleanup: async () => (await sessions.close(), await inbox.close()) };
});
