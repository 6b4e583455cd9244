/**
 * What the native sink (sink.c) needs to know about a target's subscriber handshake, in generic
 * terms: frames to send, each with a reply to wait for; a reply that means refusal; a protocol
 * ping to answer; whether the payloads are a byte stream (NATS). The targets build it
 * (BenchClient.sink); the C side knows no protocol but WebSocket and the NATS line format.
 */

/** Bytes a reply must hold: at its start, or anywhere in it. A string is its UTF-8 bytes. */
export interface SinkMatch {
  readonly bytes: Uint8Array | string;
  readonly at: 'start' | 'anywhere';
}

/** One handshake step: send a message (a string as a text frame, bytes as a binary one), then wait for `expect`. */
export interface SinkStep {
  readonly send?: Uint8Array | string;
  readonly expect?: SinkMatch;
}

export interface SinkSpec {
  /** In order, right after the upgrade; the socket counts once the last `expect` came. */
  readonly steps: readonly SinkStep[];
  /** A handshake reply matching this fails the socket (e.g. an `error` frame). */
  readonly fail?: SinkMatch;
  /**
   * A data message exactly equal to `match` (shorter than the count threshold), or in stream mode a
   * protocol line equal to it, is answered with `reply` (string: text frame, bytes: binary).
   */
  readonly ping?: { readonly match: Uint8Array | string; readonly reply: Uint8Array | string };
  /** The payloads are the NATS protocol as a byte stream: count `MSG` lines (see lib/nats-stream.ts). */
  readonly stream?: 'nats';
}

const hex = (b: Uint8Array | string): string => Buffer.from(typeof b === 'string' ? Buffer.from(b, 'utf8') : b).toString('hex');
const op = (b: Uint8Array | string | undefined): string => (b === undefined ? '-' : typeof b === 'string' ? 't' : 'b');
const mode = (m: SinkMatch | undefined): string => (m?.at === 'start' ? '^' : '*');

/** The sink's command-line options for a spec (see the head of sink.c). */
export function sinkSpecArgs(spec: SinkSpec): string[] {
  if (spec.steps.length > 8) throw new Error('the sink takes at most 8 handshake steps');
  const args: string[] = [];
  for (const s of spec.steps)
    args.push('--step', `${op(s.send)},${s.send === undefined ? '' : hex(s.send)},${mode(s.expect)},${s.expect ? hex(s.expect.bytes) : ''}`);
  if (spec.fail) args.push('--fail', `${mode(spec.fail)},${hex(spec.fail.bytes)}`);
  if (spec.ping) args.push('--ping', `${hex(spec.ping.match)},${op(spec.ping.reply)},${hex(spec.ping.reply)}`);
  if (spec.stream) args.push('--stream', spec.stream);
  return args;
}
