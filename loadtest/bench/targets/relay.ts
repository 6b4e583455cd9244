/**
 * The NATS baseline target: relay-server.ts (bare uWebSockets.js + one core NATS subscription),
 * with its own nats-server. The publisher publishes the bare 100-byte payload to NATS
 * (JetStream, `<prefix>.in.<topic>`); the stream RePublishes it to `<prefix>.out.<topic>`, which
 * the relay subscribes to and fans out as is.
 */
import { startServer } from '../../lib/proc.ts';
import { bareClient } from './bare.ts';
import { BENCH_NATS_PREFIX, benchInSubject, benchOutSubject, startWithNats } from './nats.ts';
import { BENCH_TOPIC, REPO_ROOT, nodeTs } from './paths.ts';
import type { Target } from './types.ts';

/** The relay serves one topic, the benchmark's. */
export const relayTarget: Target = {
  name: 'relay',
  description: `bare uWebSockets.js + NATS relay (core sub on ${BENCH_NATS_PREFIX}.out.<topic>, app.publish per message)`,
  start: (port) =>
    startWithNats((natsUrl) =>
      startServer({
        ...nodeTs('loadtest/bench/relay-server.ts'),
        cwd: REPO_ROOT,
        env: { PORT: String(port), HOST: '127.0.0.1', NATS_URL: natsUrl, NATS_SUBJECT: benchOutSubject(BENCH_TOPIC), TOPIC: BENCH_TOPIC },
        port,
      }),
    ),
  client(t) {
    if (t !== BENCH_TOPIC) throw new Error(`the relay serves only ${BENCH_TOPIC}`);
    return { ...bareClient(t), natsSubject: benchInSubject(t) };
  },
};
