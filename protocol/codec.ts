/**
 * The two encodings. Both map a frame object to bytes and back with no schema knowledge, so the
 * SDK can use them without zod. Binary: msgpack (msgpackr, plain maps so any msgpack library
 * reads it). Text: JSON; `data` values that JSON cannot carry (binary) are msgpack-only.
 */
import { Packr, Unpackr } from 'msgpackr';
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

export const msgpackCodec: Codec = {
  encoding: 'msgpack',
  binary: true,
  encode: (frame) => packr.pack(frame),
  decode(data) {
    if (typeof data === 'string') throw new Error('text frame on a binary (msgpack) connection');
    return unpackr.unpack(data instanceof Uint8Array ? data : new Uint8Array(data));
  },
};

export const jsonCodec: Codec = {
  encoding: 'json',
  binary: false,
  encode: (frame) => JSON.stringify(frame),
  decode(data) {
    const text = typeof data === 'string' ? data : textDecoder.decode(data);
    return JSON.parse(text);
  },
};

export function codecFor(encoding: Encoding): Codec {
  return encoding === 'json' ? jsonCodec : msgpackCodec;
}
