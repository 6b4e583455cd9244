/**
 * What application data may be: the rule every way into the system applies (WebSocket and HTTP
 * publishes in the gateway, backends publishing straight onto the bus). No zod, no I/O, so the
 * server SDK can use it; protocol/frames.ts re-exports it and builds its `Data` schema on it.
 */

/** Deepest nesting of application data: bounds the stack work of every reader and merger. */
export const MAX_DATA_DEPTH = 32;

/**
 * Why `v` is not acceptable application data, or null: JSON values only (null, boolean, finite
 * number, string, array, plain object) plus binary (msgpack `bin`), at most MAX_DATA_DEPTH deep.
 * Anything else (BigInt from 64-bit msgpack ints, NaN, undefined, msgpack extensions) would break
 * another encoding or another client, so it is refused at the door.
 */
export function dataError(v: unknown, depth = 0): string | null {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return null;
  if (typeof v === 'number') return Number.isFinite(v) ? null : 'numbers must be finite';
  if (typeof v === 'bigint') return 'integers must be within ±2^53';
  if (typeof v !== 'object') return `unsupported value of type ${typeof v}`;
  if (v instanceof Uint8Array) return null;
  if (depth >= MAX_DATA_DEPTH) return `nested deeper than ${MAX_DATA_DEPTH} levels`;
  if (Array.isArray(v)) {
    for (const item of v) {
      const err = dataError(item, depth + 1);
      if (err) return err;
    }
    return null;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return 'unsupported value (not plain data)';
  for (const key of Object.keys(v)) {
    const err = dataError((v as Record<string, unknown>)[key], depth + 1);
    if (err) return err;
  }
  return null;
}
