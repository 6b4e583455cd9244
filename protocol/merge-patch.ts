/**
 * JSON Merge Patch (RFC 7386): the delta format of `patch` messages. An object patch merges
 * into the target key by key, `null` deletes a key, anything else replaces the target whole.
 * Pure and non-mutating: shares unchanged branches with the input.
 */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return patch;
  const out: Record<string, unknown> = isPlainObject(target) ? copy(target) : {};
  for (const key of Object.keys(patch)) {
    const value = patch[key];
    if (value === null) delete out[key];
    // defineProperty, not assignment: a member named "__proto__" must stay a plain member.
    else Object.defineProperty(out, key, { value: applyMergePatch(out[key], value), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function copy(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(o)) Object.defineProperty(out, key, { value: o[key], enumerable: true, writable: true, configurable: true });
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** Applies a message to a topic's state: `set` replaces, `patch` merges, `event` leaves it. */
export function applyMessage(state: unknown, kind: 'event' | 'set' | 'patch', data: unknown): unknown {
  if (kind === 'set') return data;
  if (kind === 'patch') return applyMergePatch(state, data);
  return state;
}
