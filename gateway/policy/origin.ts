/**
 * Allowed Origins for WebSocket upgrades. Browsers always send `Origin` on a WebSocket
 * handshake, so checking it stops other sites' pages from using a visitor's cookies or network
 * position against the gateway. Entries: an exact origin (`https://app.example.com`), a
 * wildcard subdomain (`https://*.example.com`, which does not match the bare domain), or `*`.
 * An empty list allows every origin. Requests without `Origin` (not browsers) are allowed
 * unless `requireOrigin` is set.
 */
export interface OriginPolicy {
  allowed(origin: string): boolean;
}

export function createOriginPolicy(allowed: readonly string[], requireOrigin = false): OriginPolicy {
  if (allowed.length === 0 || allowed.includes('*')) return { allowed: (o) => !requireOrigin || o !== '' };
  const exact = new Set<string>();
  const suffixes: { scheme: string; suffix: string }[] = [];
  for (const entry of allowed) {
    const e = entry.trim().toLowerCase().replace(/\/+$/, '');
    const m = /^([a-z][a-z0-9+.-]*:\/\/)\*\.(.+)$/.exec(e);
    if (m) suffixes.push({ scheme: m[1]!, suffix: `.${m[2]!}` });
    else exact.add(e);
  }
  return {
    allowed(origin) {
      if (origin === '') return !requireOrigin;
      const o = origin.toLowerCase();
      if (exact.has(o)) return true;
      return suffixes.some(({ scheme, suffix }) => o.startsWith(scheme) && o.endsWith(suffix)
        && o.length > scheme.length + suffix.length && !o.slice(scheme.length, o.length - suffix.length).includes('/'));
    },
  };
}
