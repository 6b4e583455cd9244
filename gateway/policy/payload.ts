/**
 * What a namespace allows a topic name and published data to be: topic length, payload size and
 * the namespace schema. Shared by client `pub` (and the topic checks of `sub` and `history`) and
 * the HTTP API, so a backend's publish meets the same rules as a client's. (That data is plain
 * JSON-like data within the depth limit is checked by the protocol schema already.)
 */
import { ErrorCode } from '../../protocol/index.ts';
import type { Namespace } from './namespaces.ts';
import type { Denial } from './permissions.ts';

export function topicTooLong(ns: Namespace, topic: string): Denial | null {
  return topic.length > ns.maxTopicLength ? { ok: false, code: ErrorCode.BadTopic, message: `topic longer than ${ns.maxTopicLength} characters` } : null;
}

/**
 * Checks published `data` against its namespace: at most `maxPayloadBytes` as encoded by the
 * publisher (`frameBytes`, the whole frame's or body's size, is an upper bound that spares the
 * re-encode for most publishes), then the namespace schema.
 */
export function checkPayload(ns: Namespace, data: unknown, frameBytes: number, encode: (d: unknown) => Uint8Array | string): Denial | null {
  if (frameBytes > ns.maxPayloadBytes) {
    const encoded = encode(data);
    const size = typeof encoded === 'string' ? Buffer.byteLength(encoded) : encoded.byteLength;
    if (size > ns.maxPayloadBytes) return { ok: false, code: ErrorCode.PayloadTooLarge, message: `data larger than ${ns.maxPayloadBytes} bytes` };
  }
  const mismatch = ns.schema?.(data);
  if (mismatch) return { ok: false, code: ErrorCode.InvalidPayload, message: `data does not match the schema of namespace "${ns.name}": ${mismatch}` };
  return null;
}
