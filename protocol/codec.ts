/**
 * The two encodings. Both map a frame object to bytes and back with no schema knowledge, so the
 * SDK can use them without zod. Binary: msgpack (msgpackr, plain maps so any msgpack library
 * reads it). Text: JSON; `data` values that JSON cannot carry (binary) are msgpack-only.
 */
import { C1, Packr, Unpackr } from 'msgpackr';
import type { Encoding } from './version.ts';

export interface Codec {
  readonly encoding: Encoding;
  /** Whether frames travel as binary WebSocket messages. */
  readonly binary: boolean;
  encode(frame: object): Uint8Array | string;
  /** Throws on undecodable input. */
  decode(data: Uint8Array | ArrayBuffer | string): unknown;
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
// copyBuffers: binary values must not alias the transport's buffer (uWS reuses it after the callback).
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, copyBuffers: true });
const textDecoder = new TextDecoder('utf-8', { fatal: true });

/** A JSON frame's text; throws on invalid UTF-8. */
export function utf8Text(data: Uint8Array | ArrayBuffer | string): string {
  return typeof data === 'string' ? data : textDecoder.decode(data);
}

export const msgpackCodec: Codec = {
  encoding: 'msgpack',
  binary: true,
  encode: (frame) => packr.pack(frame),
  decode(data) {
    if (typeof data === 'string') throw new Error('text frame on a binary (msgpack) connection');
    const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
    const value = unpackr.unpack(bytes);
    // msgpackr decodes the never-used byte 0xc1 to a marker object instead of failing; any other
    // library would refuse it, so do we. Only frames holding that byte somewhere are walked.
    if (bytes.includes(0xc1) && holdsC1(value)) throw new Error('byte 0xc1 (never used in msgpack)');
    return value;
  },
};

/** Whether msgpackr's 0xc1 marker occurs anywhere in a decoded value (iterative: any depth). */
function holdsC1(value: unknown): boolean {
  const stack = [value];
  while (stack.length) {
    const v = stack.pop();
    if (v === C1) return true;
    if (typeof v !== 'object' || v === null || v instanceof Uint8Array) continue;
    for (const item of Array.isArray(v) ? v : Object.values(v)) stack.push(item);
  }
  return false;
}

export const jsonCodec: Codec = {
  encoding: 'json',
  binary: false,
  encode: (frame) => JSON.stringify(frame),
  decode(data) {
    return JSON.parse(utf8Text(data));
  },
};

export function codecFor(encoding: Encoding): Codec {
  return encoding === 'json' ? jsonCodec : msgpackCodec;
}
