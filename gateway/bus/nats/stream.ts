/**
 * The deployment's stream: its configuration, creating or adapting it, and its epoch.
 *
 * Retention is per subject, so history is per topic: the last `history.size` messages of each
 * topic, none older than `history.ageMs`. RePublish copies every stored message to
 * `<prefix>.out.<topic>` with `Nats-Sequence` and `Nats-Last-Sequence` headers (the previous
 * sequence of the same subject), which is what the live path and its gap detection read.
 *
 * Epoch = the stream's identity, derived from its `created` timestamp (nanosecond precision,
 * kept by every replica, unchanged across leader changes and restarts, new when the stream is
 * recreated): positions from another epoch are meaningless because sequences restart.
 */
import { DiscardPolicy, RetentionPolicy, StorageType, nanos, type JetStreamManager, type StreamConfig, type StreamInfo } from 'nats';
import type { ResolvedNatsOptions } from './options.ts';

/** RePublish cannot be changed on an existing stream (nats-server 2.9 refuses the update). */
export function streamConfig(o: ResolvedNatsOptions): Partial<StreamConfig> {
  const maxAge = o.historyAgeMs > 0 ? nanos(o.historyAgeMs) : 0;
  // Publish retries carry a message id; the window must cover the retries and may not exceed max_age.
  const dupWindowMs = Math.min(Math.max(o.publishTimeoutMs * 2, 30_000), o.historyAgeMs > 0 ? o.historyAgeMs : Infinity);
  return {
    name: o.streamName,
    description: `Symphonic topics of deployment ${o.prefix}`,
    subjects: [`${o.inPrefix}>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: o.replicas,
    max_msgs_per_subject: o.historySize,
    max_age: maxAge,
    max_msgs: -1,
    max_bytes: -1,
    discard: DiscardPolicy.Old,
    duplicate_window: nanos(dupWindowMs),
    allow_rollup_hdrs: false,
    deny_delete: false,
    deny_purge: false,
    // Reads go to the leader (STREAM.MSG.GET, consumers): direct gets may be served by a lagging follower.
    allow_direct: false,
    republish: { src: `${o.inPrefix}>`, dest: `${o.outPrefix}>` },
  };
}

const ALREADY_IN_USE = 10058;

/**
 * Creates the stream, or adapts an existing one's limits (size, age, replicas) to this config.
 * Several gateways starting together converge: creating an identical stream is idempotent.
 */
export async function ensureStream(jsm: JetStreamManager, o: ResolvedNatsOptions): Promise<StreamInfo> {
  const cfg = streamConfig(o);
  try {
    return await jsm.streams.add(cfg);
  } catch (e) {
    if ((e as { api_error?: { err_code?: number } }).api_error?.err_code !== ALREADY_IN_USE) throw e;
  }
  const existing = await jsm.streams.info(o.streamName);
  const rp = existing.config.republish;
  if (!rp || rp.src !== cfg.republish!.src || rp.dest !== cfg.republish!.dest || rp.headers_only) {
    throw new Error(
      `nats bus: stream ${o.streamName} exists without RePublish ${cfg.republish!.src} -> ${cfg.republish!.dest}; ` +
        'RePublish cannot be added to an existing stream: delete the stream (history is lost) or pick another prefix',
    );
  }
  const { name: _n, retention: _r, storage: _s, ...updatable } = cfg;
  return jsm.streams.update(o.streamName, { ...existing.config, ...updatable });
}

/** The stream's identity (epoch) from its `created` time: defined with the envelope, shared with backends. */
export { epochFromCreated } from '../../../protocol/envelope.ts';
