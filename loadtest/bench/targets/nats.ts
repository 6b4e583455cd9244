/**
 * What the NATS targets (`relay`, `gateway-nats`) share: a nats-server of their own for the run
 * (test/support/nats-server.ts: random loopback port, temporary JetStream store, removed
 * afterwards), with the deployment's stream created before the server starts, exactly as the
 * gateway's NATS engine creates it (gateway/bus/nats/stream.ts: subjects `<prefix>.in.>`, file
 * storage, RePublish to `<prefix>.out.>`, default history limits). Both targets thus pay the same
 * NATS cost per message: the publisher's JetStream publish to `<prefix>.in.<topic>`, the store
 * write, and the RePublish to `<prefix>.out.<topic>` that the server under test subscribes to.
 */
import { connect } from 'nats';
import { resolveOptions } from '../../../gateway/bus/nats/options.ts';
import { ensureStream } from '../../../gateway/bus/nats/stream.ts';
import { busInSubject, busOutSubject } from '../../../protocol/envelope.ts';
import { startNatsServer } from '../../../test/support/nats-server.ts';
import type { ServerChild } from '../../lib/proc.ts';
import type { StartedTarget } from './types.ts';

/** The deployment prefix of the benchmark (a fresh nats-server per target run, so any would do). */
export const BENCH_NATS_PREFIX = 'symbench';

/** Where the publisher publishes a topic's messages (JetStream, stored, then RePublished). */
export const benchInSubject = (topic: string): string => busInSubject(BENCH_NATS_PREFIX, topic);
/** Where the stream RePublishes them: what the relay and the gateway subscribe to. */
export const benchOutSubject = (topic: string): string => busOutSubject(BENCH_NATS_PREFIX, topic);

/**
 * Starts nats-server, creates the stream, then the target's server (given the NATS URL). The
 * result stops both (server first) and removes the store; nats-server's PID is a helper PID, so
 * its CPU counts on the server side.
 */
export async function startWithNats(startTarget: (natsUrl: string) => Promise<ServerChild>): Promise<StartedTarget> {
  const nats = await startNatsServer();
  let server: ServerChild | undefined;
  try {
    const nc = await connect({ servers: nats.url, name: 'symphonic-bench-setup' });
    try {
      await ensureStream(await nc.jetstreamManager(), resolveOptions({ servers: nats.url, prefix: BENCH_NATS_PREFIX }));
    } finally {
      await nc.close();
    }
    server = await startTarget(nats.url);
  } catch (e) {
    await nats.cleanup();
    throw e;
  }
  const s = server;
  return {
    pid: s.pid,
    child: s.child,
    logTail: () => s.logTail(),
    helperPids: [nats.pid!],
    natsUrl: nats.url,
    async stop() {
      try {
        await s.stop();
      } finally {
        await nats.cleanup();
      }
    },
  };
}
