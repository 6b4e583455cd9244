/**
 * Allowed Origins for WebSocket upgrades. Browsers always send `Origin` on a WebSocket
 * handshake, so checking it stops other sites' pages from using a visitor's cookies or network
 * position against the gateway. Entries: an exact origin (`https://app.example.com`), a
 * wildcard subdomain (`https://*.example.com`, which does not match the bare domain), or `*`.
 * An empty list allows every origin. Requests without `Origin` (not browsers) are allowed
 * unless `requireOrigin` is set.
 *
 * Origins and entries are parsed, never compared as raw strings (a string suffix let
 * `https://evil.com#.example.org` through): `scheme://host[:port]` only, scheme and host
 * lowercased, the scheme's default port dropped, one trailing slash ignored. Anything else
 * (a path, query, fragment, userinfo, backslash or whitespace) matches nothing.
 */
export interface OriginPolicy {
  allowed(origin: string): boolean;
}

/** An origin reduced to what a browser compares: scheme, host, port (a default port dropped). */
interface Origin {
  readonly scheme: string;
  readonly host: string;
  /** '' for the scheme's default port (or a scheme without one and no port given). */
  readonly port: string;
}

const DEFAULT_PORTS: Readonly<Record<string, string>> = { http: '80', https: '443', ws: '80', wss: '443' };

/** `scheme://host[:port]`; host = DNS labels (or an IPv4 address) or a bracketed IPv6 address. */
const ORIGIN_RE = /^([a-z][a-z0-9+.-]*):\/\/((?:[a-z0-9_-]+(?:\.[a-z0-9_-]+)*)|\[[0-9a-f:.]+\])(?::(\d{1,5}))?$/;

/** Parses an origin, or says why it is not one. */
export function parseOrigin(text: string): Origin | string {
  if (/[\s\\@?#]/.test(text)) return 'an origin has no whitespace, backslash, userinfo ("@"), query or fragment';
  const m = ORIGIN_RE.exec(text.toLowerCase().replace(/\/$/, ''));
  if (!m) return 'an origin is scheme://host[:port], without a path';
  const [, scheme, host, port] = m as unknown as [string, string, string, string | undefined];
  if (port !== undefined && Number(port) > 65535) return `port ${port} is out of range`;
  const normalized = port === undefined || String(Number(port)) === DEFAULT_PORTS[scheme] ? '' : String(Number(port));
  return { scheme, host, port: normalized };
}

const key = (o: Origin) => `${o.scheme}://${o.host}${o.port ? `:${o.port}` : ''}`;

/** Throws an Error naming the first invalid entry (the caller turns it into a config error). */
export function createOriginPolicy(allowed: readonly string[], requireOrigin = false): OriginPolicy {
  if (allowed.length === 0 || allowed.some((e) => e.trim() === '*')) return { allowed: (o) => !requireOrigin || o !== '' };
  const exact = new Set<string>();
  // `scheme://*.domain[:port]`: any host with at least one more label, same scheme, same port.
  const wildcards: { scheme: string; suffix: string; port: string }[] = [];
  for (const raw of allowed) {
    const entry = raw.trim();
    // `null` (sandboxed frames, file: pages) is never matched by a wildcard; only an exact entry allows it.
    if (entry === 'null') {
      exact.add('null');
      continue;
    }
    const wild = /^([a-z][a-z0-9+.-]*:\/\/)\*\.(.*)$/i.exec(entry);
    const parsed = parseOrigin(wild ? wild[1]! + wild[2]! : entry);
    if (typeof parsed === 'string') throw new Error(`${JSON.stringify(raw)} is not an allowed-origin entry: ${parsed}`);
    if (wild && parsed.host.startsWith('[')) throw new Error(`${JSON.stringify(raw)} is not an allowed-origin entry: a wildcard needs a domain name`);
    if (wild) wildcards.push({ scheme: parsed.scheme, suffix: `.${parsed.host}`, port: parsed.port });
    else exact.add(key(parsed));
  }
  return {
    allowed(origin) {
      if (origin === '') return !requireOrigin;
      if (origin === 'null') return exact.has('null');
      const o = parseOrigin(origin);
      if (typeof o === 'string') return false;
      if (exact.has(key(o))) return true;
      // The host's labels end with the domain's, and at least one label comes before them.
      return wildcards.some((w) => w.scheme === o.scheme && w.port === o.port && o.host.endsWith(w.suffix) && o.host.length > w.suffix.length);
    },
  };
}
