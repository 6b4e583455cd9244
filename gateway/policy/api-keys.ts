/**
 * HTTP API keys with scopes. Config `api.keys` holds plain strings (publish scope, the original
 * form) or `{key, scopes, name}` objects. Keys are compared in constant time against every
 * configured key (no early exit, so timing tells nothing about which or how much matched) and
 * are never logged: a key is referred to by its `name` (default `key-<index>`).
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export const SCOPES = ['publish', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];
export type ApiKeyConfig = string | { key: string; scopes?: Scope[] | undefined; name?: string | undefined };

interface Entry {
  readonly digest: Buffer;
  readonly scopes: ReadonlySet<Scope>;
  readonly name: string;
  readonly id: string;
}

export type KeyCheck =
  /** `id`: the key's stable identity (a hash, not the key; the same on every gateway), e.g. to scope idempotency keys. */
  { ok: true; name: string; id: string } | { ok: false; reason: 'disabled' | 'unauthorized' | 'forbidden' };

export interface ApiKeys {
  readonly size: number;
  /** Checks `Authorization: Bearer <key>` for a key holding `scope`. */
  check(authorization: string, scope: Scope): KeyCheck;
}

// Comparing fixed-size digests makes the comparison independent of the keys' lengths too.
const digest = (s: string) => createHash('sha256').update(s).digest();

export function createApiKeys(keys: readonly ApiKeyConfig[]): ApiKeys {
  const entries: Entry[] = keys.map((k, i) => {
    const c = typeof k === 'string' ? { key: k, scopes: undefined, name: undefined } : k;
    const d = digest(c.key);
    // The id comes from the key itself: a name or position (`key-<i>`) may differ between gateways.
    return { digest: d, id: d.toString('hex'), scopes: new Set<Scope>(c.scopes ?? ['publish']), name: c.name ?? `key-${i}` };
  });
  return {
    size: entries.length,
    check(authorization, scope) {
      if (entries.length === 0) return { ok: false, reason: 'disabled' };
      const m = /^Bearer (.+)$/.exec(authorization);
      const given = digest(m ? m[1]! : '');
      let found: Entry | null = null;
      for (const e of entries) {
        if (timingSafeEqual(e.digest, given) && m) found = e;
      }
      if (!found) return { ok: false, reason: 'unauthorized' };
      if (!found.scopes.has(scope)) return { ok: false, reason: 'forbidden' };
      return { ok: true, name: found.name, id: found.id };
    },
  };
}
