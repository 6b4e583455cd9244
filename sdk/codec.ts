/**
 * The SDK's two encodings, wire-identical to protocol/codec.ts but without msgpackr: binary frames
 * use the small msgpack in ./msgpack.ts, text frames JSON. The encoding is chosen by WebSocket
 * subprotocol; decoding goes by what actually arrived (binary or text).
 */
import { SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK, type Encoding } from '../protocol/version.ts';
import { decode as unpack, encode as pack } from './msgpack.ts';

export interface ClientCodec {
  readonly encoding: Encoding;
  readonly subprotocol: string;
  encode(frame: object): Uint8Array | string;
  decode(data: unknown): unknown;
}

const textDecoder = new TextDecoder();

function decodeAny(data: unknown): unknown {
  if (typeof data === 'string') return JSON.parse(data);
  if (data instanceof ArrayBuffer || data instanceof Uint8Array) return unpack(data);
  if (ArrayBuffer.isView(data)) return unpack(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  throw new Error(`cannot decode a frame of type ${Object.prototype.toString.call(data)}`);
}

export const msgpackClientCodec: ClientCodec = {
  encoding: 'msgpack',
  subprotocol: SUBPROTOCOL_MSGPACK,
  encode: (frame) => pack(frame),
  decode: decodeAny,
};

export const jsonClientCodec: ClientCodec = {
  encoding: 'json',
  subprotocol: SUBPROTOCOL_JSON,
  encode: (frame) => JSON.stringify(frame),
  // A JSON connection may still deliver text as bytes with some transports.
  decode: (data) => (data instanceof ArrayBuffer || data instanceof Uint8Array ? JSON.parse(textDecoder.decode(data)) : decodeAny(data)),
};

export function clientCodecFor(encoding: Encoding): ClientCodec {
  return encoding === 'json' ? jsonClientCodec : msgpackClientCodec;
}
