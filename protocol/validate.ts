/** Turns received bytes into a checked client frame, or a coded error saying what is wrong. */
import { jsonCodec, msgpackCodec, utf8Text } from './codec.ts';
import { ErrorCode } from './codes.ts';
import { CLIENT_FRAME_TYPES, ClientFrame } from './frames.ts';
import { unsafeIntegerLiteral } from './json-integers.ts';
import type { Encoding } from './version.ts';

export type DecodeResult = { ok: true; frame: ClientFrame } | { ok: false; code: ErrorCode; message: string; id?: number };

export function decodeClientFrame(encoding: Encoding, data: ArrayBuffer | Uint8Array | string): DecodeResult {
  let raw: unknown;
  // JSON: the text is kept for the integer check below (JSON.parse rounds big integers silently).
  let text: string | undefined;
  try {
    if (encoding === 'json') {
      text = utf8Text(data);
      raw = jsonCodec.decode(text);
    } else {
      raw = msgpackCodec.decode(data);
    }
  } catch (e) {
    return { ok: false, code: ErrorCode.BadFrame, message: `not a valid ${encoding} frame: ${(e as Error).message}` };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, code: ErrorCode.InvalidFrame, message: 'a frame must be a map (object) with a string field "t"' };
  }
  const parsed = ClientFrame.safeParse(raw);
  if (parsed.success) {
    // What msgpack refuses as a 64-bit integer (a BigInt fails the schema), JSON must refuse too.
    const unsafe = text === undefined ? null : unsafeIntegerLiteral(text);
    if (unsafe === null) return { ok: true, frame: parsed.data };
    const message = `invalid ${parsed.data.t} frame: integer ${unsafe.slice(0, 40)} is outside ±(2^53−1) (JSON would round it; send such numbers as strings)`;
    const valid = requestIdOf(raw);
    return { ok: false, code: ErrorCode.InvalidFrame, message, ...(valid === undefined ? {} : { id: valid }) };
  }
  const id = requestIdOf(raw);
  const t = (raw as { t?: unknown }).t;
  if (typeof t !== 'string' || !(CLIENT_FRAME_TYPES as string[]).includes(t)) {
    return {
      ok: false,
      code: ErrorCode.UnknownFrameType,
      message: `unknown frame type ${typeof t === 'string' ? JSON.stringify(t.slice(0, 40)) : typeof t}`,
      ...(id === undefined ? {} : { id }),
    };
  }
  const mismatch = schemaError(parsed.error, ErrorCode.InvalidFrame, t);
  return { ok: false, code: mismatch.code, message: `invalid ${t} frame: ${mismatch.message}`, ...(id === undefined ? {} : { id }) };
}

/**
 * The request id of a decoded frame, if it has a valid one (0 to 2^31-1), so an error about the
 * frame can answer the request. Also used on frames refused before validation (too large, over
 * the rate limit).
 */
export function requestIdOf(raw: unknown): number | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const id = (raw as { id?: unknown }).id;
  return typeof id === 'number' && Number.isInteger(id) && id >= 0 && id < 2 ** 31 ? id : undefined;
}

/** A failed schema check: what `schemaError` reads of a zod error (typed by shape). */
export interface SchemaIssues {
  readonly issues: readonly { readonly path: readonly PropertyKey[]; readonly message: string }[];
}

/**
 * What a schema mismatch tells the sender: the first issue, named by its field (`whole` when it
 * is about the value itself). A bad `topic` is BadTopic (2000), anything else `code`. Shared by
 * the WebSocket frames (InvalidFrame) and the HTTP API bodies (BadRequest).
 */
export function schemaError(error: SchemaIssues, code: ErrorCode, whole: string): { code: ErrorCode; message: string } {
  const issue = error.issues[0];
  const where = issue && issue.path.length ? issue.path.join('.') : whole;
  return {
    code: issue && issue.path[0] === 'topic' ? ErrorCode.BadTopic : code,
    message: `${where}: ${issue?.message ?? 'does not match the schema'}`,
  };
}
