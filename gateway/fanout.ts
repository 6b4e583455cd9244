/**
 * The hot path: one bus message becomes one frame per encoding, encoded once, handed to
 * uWebSockets.js topic publish, which writes the same bytes to every local subscriber natively.
 * No per-subscriber JavaScript runs here.
 */
import type { TemplatedApp } from 'uWebSockets.js';
import { jsonCodec, msgpackCodec, type Encoding } from '../protocol/index.ts';
import type { BusMessage } from './bus/bus.ts';

/** uWS topic names: one per encoding, so each socket gets the bytes of its own encoding. */
export function nativeTopic(encoding: Encoding, topic: string): string {
  return (encoding === 'json' ? 'j:' : 'm:') + topic;
}
/** The heartbeat channel every socket joins. */
export const HEARTBEAT_TOPIC = '$hb';

export function createFanout(app: TemplatedApp) {
  return {
    publish(m: BusMessage): void {
      const frame = { t: 'msg', topic: m.topic, seq: m.seq, prev: m.prev, kind: m.kind, data: m.data, ts: m.ts };
      const bin = nativeTopic('msgpack', m.topic);
      if (app.numSubscribers(bin) > 0) app.publish(bin, msgpackCodec.encode(frame), true);
      const text = nativeTopic('json', m.topic);
      if (app.numSubscribers(text) > 0) app.publish(text, jsonCodec.encode(frame), false);
    },
    heartbeat(): void {
      app.publish(nativeTopic('msgpack', HEARTBEAT_TOPIC), msgpackCodec.encode({ t: 'hb' }), true);
      app.publish(nativeTopic('json', HEARTBEAT_TOPIC), jsonCodec.encode({ t: 'hb' }), false);
    },
  };
}
export type Fanout = ReturnType<typeof createFanout>;
