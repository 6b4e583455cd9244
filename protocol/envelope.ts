/**
 * The bus envelope: what a topic message is, byte for byte, when it is stored in NATS. Gateways
 * (gateway/bus/nats/) and backends publishing straight onto the bus (sdk/server/) both use this
 * module, so there is one definition of the format. Pure: no I/O.
 *
 *   msgpack map { kind: 'event' | 'set' | 'patch', data: <any msgpack value>, ts: <ms since epoch> }
 *
 * `ts` may be omitted (the reader falls back to the stream's store time, or the receive time on
 * the live path). For tools like `nats pub`, a JSON object with the same keys is accepted too:
 * a payload starting with `{` is JSON (a msgpack map never starts with that byte).
 * Anything else is still delivered, never dropped (dropping would break the prev chain): as an
 * `event` whose `data` is the raw bytes. Such messages never touch a topic's state.
 *
 * Also here, because a backend needs them to publish exactly like a gateway does: the subject
 * names of a deployment and the stream epoch (`epochFromCreated`).
 *
 * Node only (msgpackr): the browser SDK never imports this module (scripts/build-sdk.mjs checks).
 */
import { Packr, Unpackr } from 'msgpackr';
import { dataError } from './data.ts';
import type { MessageKind } from './frames.ts';

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

/**
 * Never throws: undecodable or foreign payloads, and data no client encoding could carry (see
 * dataError: 64-bit integers, NaN, deep nesting — possible from a backend publishing to NATS
 * directly), become events carrying the raw bytes, so the topic's chain and fan-out stay intact.
 */
export function decodeEnvelope(bytes: Uint8Array, fallbackTs: number): Envelope {
  let value: unknown;
  try {
    value = bytes.length > 0 && bytes[0] === OPEN_BRACE ? JSON.parse(utf8.decode(bytes)) : unpackr.unpack(bytes);
  } catch {
    return { kind: 'event', data: bytes, ts: fallbackTs };
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const v = value as { kind?: unknown; data?: unknown; ts?: unknown };
    if (isKind(v.kind) && dataError(v.data ?? null) === null) {
      const ts = typeof v.ts === 'number' && Number.isFinite(v.ts) ? v.ts : fallbackTs;
      return { kind: v.kind, data: v.data ?? null, ts };
    }
  }
  return { kind: 'event', data: bytes, ts: fallbackTs };
}

// ---- names of a deployment ----------------------------------------------------------------------

/** A deployment prefix names its stream, buckets and subjects: 1-32 characters of [A-Za-z0-9_-]. */
export const BUS_PREFIX_RE = /^[A-Za-z0-9_-]{1,32}$/;
export const DEFAULT_BUS_PREFIX = 'symphonic';

/** The stream holding every topic of the deployment. */
export function busStreamName(prefix: string): string {
  return `${prefix}_topics`;
}

/** Where a topic's messages are published (a JetStream publish: the ack carries the sequence). */
export function busInSubject(prefix: string, topic: string): string {
  return `${prefix}.in.${topic}`;
}

/** Where the stream republishes a topic's stored messages, with their sequence and the previous one. */
export function busOutSubject(prefix: string, topic: string): string {
  return `${prefix}.out.${topic}`;
}

// ---- epoch --------------------------------------------------------------------------------------

const CREATED_RE = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

/**
 * The epoch of a topic position: a short, stable name for the stream's identity, its creation
 * time (`StreamInfo.created`) in ns, base 36. The same on every replica and across restarts; new
 * when the stream is recreated (sequences restart).
 */
export function epochFromCreated(created: string | Date): string {
  const text = typeof created === 'string' ? created : created.toISOString();
  const m = CREATED_RE.exec(text);
  if (m) {
    const ms = Date.parse(`${m[1]}${m[3]}`);
    if (Number.isFinite(ms)) {
      const frac = BigInt((m[2] ?? '').padEnd(9, '0'));
      return (BigInt(ms) * 1_000_000n + frac).toString(36);
    }
  }
  // Unknown format: still a function of `created`, so it changes when the stream is recreated.
  let h = 0xcbf29ce484222325n;
  for (const c of text) h = BigInt.asUintN(64, (h ^ BigInt(c.codePointAt(0)!)) * 0x100000001b3n);
  return `h${h.toString(36)}`;
}
