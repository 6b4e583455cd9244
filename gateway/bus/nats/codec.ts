/**
 * What is stored in NATS, byte for byte. Backends may publish to `<prefix>.in.<topic>` directly
 * (a JetStream publish, so they get the stream sequence in the ack) using this envelope:
 *
 *   msgpack map { kind: 'event' | 'set' | 'patch', data: <any msgpack value>, ts: <ms since epoch> }
 *
 * `ts` may be omitted (the reader falls back to the stream's store time, or the receive time on
 * the live path). For tools like `nats pub`, a JSON object with the same keys is accepted too:
 * a payload starting with `{` is JSON (a msgpack map never starts with that byte).
 * Anything else is still delivered, never dropped (dropping would break the prev chain): as an
 * `event` whose `data` is the raw bytes. Such messages never touch a topic's state.
 *
 * Snapshots in the KV bucket: msgpack { v: 1, seq, epoch, state, ts }.
 */
import { Packr, Unpackr } from 'msgpackr';
import type { MessageKind } from '../../../protocol/index.ts';

const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const utf8 = new TextDecoder('utf-8', { fatal: true });
const OPEN_BRACE = 0x7b;

export interface Envelope {
  readonly kind: MessageKind;
  readonly data: unknown;
  readonly ts: number;
}

export function encodeEnvelope(kind: MessageKind, data: unknown, ts: number): Uint8Array {
  return packr.pack({ kind, data, ts });
}

function isKind(k: unknown): k is MessageKind {
  return k === 'event' || k === 'set' || k === 'patch';
}

/** Never throws: undecodable or foreign payloads become events carrying the raw bytes. */
export function decodeEnvelope(bytes: Uint8Array, fallbackTs: number): Envelope {
  let value: unknown;
  try {
    value = bytes.length > 0 && bytes[0] === OPEN_BRACE ? JSON.parse(utf8.decode(bytes)) : unpackr.unpack(bytes);
  } catch {
    return { kind: 'event', data: bytes, ts: fallbackTs };
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const v = value as { kind?: unknown; data?: unknown; ts?: unknown };
    if (isKind(v.kind)) {
      const ts = typeof v.ts === 'number' && Number.isFinite(v.ts) ? v.ts : fallbackTs;
      return { kind: v.kind, data: v.data, ts };
    }
  }
  return { kind: 'event', data: bytes, ts: fallbackTs };
}

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
