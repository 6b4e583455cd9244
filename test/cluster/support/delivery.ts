/** Waiting until every client has applied everything a publish stream got acknowledged. */
import type { Changes } from '../../support/changes.ts';
import type { ClusterClient } from './cluster-client.ts';
import type { PublishStream } from './publish-stream.ts';

/** Resolves once every client's every topic is at (or past) the stream's last acknowledged seq. */
export function deliveredEverything(
  changes: Changes,
  clients: readonly ClusterClient[],
  topics: readonly string[],
  stream: PublishStream,
  timeoutMs = 60_000,
): Promise<void> {
  return changes.until(
    () => clients.every((cl) => topics.every((t) => cl.view(t).last >= stream.lastSeq(t))),
    timeoutMs,
    () =>
      `delivery of everything: ${clients
        .flatMap((cl) => topics.filter((t) => cl.view(t).last < stream.lastSeq(t)).map((t) => `${cl.name}/${t} at ${cl.view(t).last}`))
        .slice(0, 6)
        .join(', ')}`,
  );
}
