/**
 * Idempotent publishes, shared by the engines: the id a key is stored under (scoped to whoever
 * sent it) and the digest of what it named, so a key reused for another publish is refused
 * instead of silently answered with the first publish's result.
 */
import { createHash } from 'node:crypto';
import type { MessageKind } from '../../protocol/index.ts';
import type { PublishOptions } from './bus.ts';

/**
 * The engine's id for an idempotency key: `<scope hash>.<key>`. The scope (e.g. the API key's
 * identity) is hashed so that two senders never share keys and the id stays short and opaque.
 */
export function idempotencyId(key: string, scope: PublishOptions['idempotencyScope']): string {
  const hash = createHash('sha256')
    .update(`symphonic idempotency scope\0${scope ?? ''}`)
    .digest('hex')
    .slice(0, 16);
  return `${hash}.${key}`;
}

/**
 * sha256 (hex) of topic, kind and data in a canonical JSON encoding (object keys sorted, binary
 * tagged): the same publish gives the same digest on every gateway, whatever its key order.
 */
export function publishDigest(topic: string, kind: MessageKind, data: unknown): string {
  return createHash('sha256')
    .update(JSON.stringify([topic, kind, canonical(data)]))
    .digest('hex');
}

function canonical(v: unknown): unknown {
  if (v instanceof Uint8Array) return { '\u0000bin': Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
  if (Array.isArray(v)) return v.map(canonical);
  if (typeof v !== 'object' || v === null) return v;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v).sort()) out[k] = canonical((v as Record<string, unknown>)[k]);
  return out;
}

/** Thrown (rejected) by `publish` when its idempotency key already named another publish. */
export class IdempotencyConflictError extends Error {
  override readonly name = 'IdempotencyConflictError';
  readonly code = 'conflict';
}

/** Whether a publish failed because its idempotency key was reused for a different publish (any engine). */
export function isIdempotencyConflict(e: unknown): boolean {
  return (e as { code?: unknown } | null)?.code === 'conflict';
}
