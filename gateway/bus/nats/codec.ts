/**
 * What is stored in NATS, byte for byte.
 *
 * Messages: the bus envelope, defined once in protocol/envelope.ts (backends publishing straight
 * onto the bus use the same module): msgpack `{ kind, data, ts }`, JSON accepted on decode,
 * anything else delivered as an `event` carrying the raw bytes.
 *
 * Snapshots in the KV bucket: msgpack { v: 1, seq, epoch, state, ts }.
 */
import { Packr, Unpackr } from 'msgpackr';

export { decodeEnvelope, encodeEnvelope, type Envelope } from '../../../protocol/envelope.ts';

const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export interface SnapshotRecord {
  /** The last message applied to `state`. */
  readonly seq: number;
  /** The stream epoch `seq` belongs to: a snapshot from another epoch is ignored. */
  readonly epoch: string;
  readonly state: unknown;
  /** When it was written (ms). */
  readonly ts: number;
}

export function encodeSnapshot(s: SnapshotRecord): Uint8Array {
  return packr.pack({ v: 1, seq: s.seq, epoch: s.epoch, state: s.state, ts: s.ts });
}

/** Undefined for anything that is not a valid v1 snapshot (it is then ignored and rewritten). */
export function decodeSnapshot(bytes: Uint8Array): SnapshotRecord | undefined {
  try {
    const v = unpackr.unpack(bytes) as { v?: unknown; seq?: unknown; epoch?: unknown; state?: unknown; ts?: unknown };
    if (v?.v !== 1 || !Number.isSafeInteger(v.seq) || typeof v.epoch !== 'string') return undefined;
    return { seq: v.seq as number, epoch: v.epoch, state: v.state, ts: typeof v.ts === 'number' ? v.ts : 0 };
  } catch {
    return undefined;
  }
}
