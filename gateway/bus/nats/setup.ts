/**
 * What start() does before the bus is ready, each step retried until its deadline (a cluster
 * starting together may still be electing leaders): the first connect, the stream, the snapshot
 * bucket, then a bounded wait until both answer a read.
 */
import type { ConnectionOptions, NatsConnection } from 'nats';
import { backoffDelay, pause } from '../../../nats-kit/backoff.ts';
import { JsReader } from '../../../nats-kit/js-reader.ts';
import { JsWriter } from '../../../nats-kit/js-writer.ts';
import { openConnection, type BusConnection } from './connection.ts';
import { NatsBusError } from './errors.ts';
import { StreamReader } from './reader.ts';
import { ReplayReader } from './replays.ts';
import { whenAnswering, withTimeout } from './requests.ts';
import { bucketAnswers, SnapshotStore } from './snapshots.ts';
import { setStatus, type EngineState, type Link } from './state.ts';
import { ensureStream } from './stream.ts';

/**
 * Setup attempts at start (stream, snapshot bucket): the first waits 1 s, doubling up to 2 s.
 * During a new stream's first leader election nats-server 2.9 may leave a concurrent create, and
 * every read, unanswered (requests.ts); the client would wait its whole 5 s timeout for each.
 */
const setupAttemptMs = (attempt: number) => Math.min(2_000, 1_000 * 2 ** Math.min(attempt, 4));
/** start() waits at most this long for the stream's and the bucket's leaders to answer a read. */
const READY_WAIT_MS = 5_000;

/** Retries `fn` on transient errors until `deadline`. */
async function untilDeadline<T>(s: EngineState, what: string, deadline: number, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (s.status === 'closed') throw new NatsBusError('closed', `${what}: bus closed`);
      if (Date.now() >= deadline) throw new NatsBusError('unavailable', `${what}: ${(e as Error).message}`, e);
      s.log.debug('nats bus: retrying', { what, attempt, error: (e as Error).message });
      await pause(Math.max(20, backoffDelay(attempt, 100, 1000)));
    }
  }
}

/** Connects (into `s.conn`) and follows the connection: degraded while away, `onReconnect` when back. */
export async function connect(
  s: EngineState,
  deadline: number,
  onReconnect: () => void,
  connectFn: (options: ConnectionOptions) => Promise<NatsConnection>,
): Promise<BusConnection> {
  const { log } = s;
  const conn = await untilDeadline(s, 'connect', deadline, () =>
    openConnection(
      s.o,
      {
        onDisconnect() {
          log.warn('nats bus: disconnected from NATS, reconnecting', {});
          setStatus(s, 'degraded');
        },
        onReconnect() {
          log.info('nats bus: reconnected to NATS', { server: s.conn?.nc.getServer() });
          onReconnect();
        },
        onError(e) {
          log.warn('nats bus: connection error', { error: e.message });
        },
      },
      connectFn,
    ),
  );
  s.conn = conn;
  void conn.nc.closed().then((err) => {
    // Closed by close(), or for good (e.g. credentials refused on reconnect): no more retries.
    if (s.status === 'closed') return;
    log.error('nats bus: NATS connection closed for good', { error: err?.message });
    setStatus(s, 'degraded');
  });
  return conn;
}

/** Sets up the stream (its epoch to `adopt`) and the bucket, and builds the readers on them. */
export async function setUp(s: EngineState, nc: NatsConnection, deadline: number, adopt: (created: string) => Promise<void>): Promise<Link> {
  const { o } = s;
  const jsm = await nc.jetstreamManager({ checkAPI: false });
  const js = nc.jetstream();
  let streamAttempt = 0;
  const info = await untilDeadline(s, 'stream setup', deadline, () => withTimeout(ensureStream(jsm, o), setupAttemptMs(streamAttempt++), 'stream setup'));
  await adopt(info.created);
  let bucketAttempt = 0;
  const store = await untilDeadline(s, 'snapshot bucket setup', deadline, () => SnapshotStore.open(js, o, setupAttemptMs(bucketAttempt++)));
  const reader = new StreamReader(new JsReader(nc), o.streamName, o.inPrefix, o.readTimeoutMs, () => s.status === 'closed');
  // Best effort: the first watch, recover, history or lease check must not wait on an election.
  const readyMs = Math.min(READY_WAIT_MS, Math.max(0, deadline - Date.now()));
  await Promise.all([
    whenAnswering(() => jsm.streams.getMessage(o.streamName, { last_by_subj: `${o.inPrefix}=probe` }), readyMs, 'stream read'),
    bucketAnswers(store.kv, readyMs),
  ]);
  return { nc, writer: new JsWriter(nc), jsm, reader, replays: new ReplayReader(reader), store };
}
