/**
 * The hot path: one bus message becomes one frame per encoding, encoded once, handed to
 * uWebSockets.js topic publish, which writes the same bytes to every local subscriber natively.
 * No per-subscriber JavaScript runs here.
 */
import type { TemplatedApp } from 'uWebSockets.js';
import { jsonCodec, msgpackCodec, type Encoding, type PresenceFrame } from '../protocol/index.ts';
import type { BusMessage } from './bus/bus.ts';
import type { Aliases } from './aliases.ts';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';

/**
 * uWS topic names: one per encoding, so each socket gets the bytes of its own encoding, and one
 * for compact msgpack connections (`hello.compact`), whose `msg` frames are short arrays.
 */
export function nativeTopic(encoding: Encoding, topic: string, compact = false): string {
  return (compact ? 'c:' : encoding === 'json' ? 'j:' : 'm:') + topic;
}

/** `kind` in a compact `msg` (docs/protocol.md section 7). */
const KIND_CODE = { event: 0, set: 1, patch: 2 } as const;
/** The first element of a compact `msg` array. */
export const COMPACT_MSG = 1;
/** The heartbeat channel every socket joins. */
export const HEARTBEAT_TOPIC = '$hb';

export function createFanout(app: TemplatedApp, metrics: Metrics, log: Logger, aliases: Aliases) {
  // The heartbeat never changes: encode it once (copied: the codec may reuse its output buffer).
  const hbBinary = Uint8Array.from(msgpackCodec.encode({ t: 'hb' }) as Uint8Array);
  const hbText = jsonCodec.encode({ t: 'hb' });
  return {
    publish(m: BusMessage): void {
      const t0 = performance.now();
      metrics.busMessages++;
      const frame = { t: 'msg', topic: m.topic, seq: m.seq, prev: m.prev, kind: m.kind, data: m.data, ts: m.ts };
      try {
        const bin = nativeTopic('msgpack', m.topic);
        const binSubs = app.numSubscribers(bin);
        if (binSubs > 0) {
          const bytes = msgpackCodec.encode(frame) as Uint8Array;
          metrics.bytesOut += bytes.byteLength * binSubs;
          app.publish(bin, bytes, true);
        }
        const text = nativeTopic('json', m.topic);
        const textSubs = app.numSubscribers(text);
        if (textSubs > 0) {
          const json = jsonCodec.encode(frame) as string;
          metrics.bytesOut += Buffer.byteLength(json) * textSubs;
          app.publish(text, json, false);
        }
        // Compact: [1, alias, seq, seq - prev, kind code, data, ts], 20-odd bytes around the data instead of 60-odd.
        const compact = nativeTopic('msgpack', m.topic, true);
        const compactSubs = app.numSubscribers(compact);
        const alias = compactSubs > 0 ? aliases.of(m.topic) : undefined;
        if (alias !== undefined) {
          const bytes = msgpackCodec.encode([COMPACT_MSG, alias, m.seq, m.seq - m.prev, KIND_CODE[m.kind], m.data, m.ts]) as Uint8Array;
          metrics.bytesOut += bytes.byteLength * compactSubs;
          app.publish(compact, bytes, true);
        }
        metrics.deliveries += binSubs + textSubs + (alias === undefined ? 0 : compactSubs);
        metrics.fanoutSeconds((performance.now() - t0) / 1000);
      } catch (e) {
        // Data that entered behind the gateway (a backend publishing onto the bus directly) that an
        // encoding cannot carry: skip it rather than break delivery of everything after it.
        metrics.encodeFailures++;
        log.error('fan-out encode failed', { topic: m.topic, seq: m.seq, error: (e as Error).message });
      }
    },
    /**
     * A presence frame (gateway/presence/) to every local subscriber of its topic, through the
     * topic's own native channel: encoded once per encoding, written natively, in order with its messages.
     */
    presence(frame: PresenceFrame): number {
      let bytesOut = 0;
      const bin = nativeTopic('msgpack', frame.topic);
      const compact = nativeTopic('msgpack', frame.topic, true);
      const binSubs = app.numSubscribers(bin) + app.numSubscribers(compact);
      if (binSubs > 0) {
        // Compact connections get presence frames as plain msgpack maps.
        const bytes = msgpackCodec.encode(frame) as Uint8Array;
        bytesOut += bytes.byteLength * binSubs;
        app.publish(bin, bytes, true);
        app.publish(compact, bytes, true);
      }
      const text = nativeTopic('json', frame.topic);
      const textSubs = app.numSubscribers(text);
      if (textSubs > 0) {
        const json = jsonCodec.encode(frame) as string;
        bytesOut += Buffer.byteLength(json) * textSubs;
        app.publish(text, json, false);
      }
      metrics.bytesOut += bytesOut;
      return bytesOut;
    },
    heartbeat(): void {
      app.publish(nativeTopic('msgpack', HEARTBEAT_TOPIC), hbBinary, true);
      app.publish(nativeTopic('json', HEARTBEAT_TOPIC), hbText, false);
    },
  };
}
export type Fanout = ReturnType<typeof createFanout>;
