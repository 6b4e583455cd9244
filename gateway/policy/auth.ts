/**
 * JWT verification (jose): HS256/384/512 with shared secrets, RS/PS/ES/EdDSA with PEM public keys
 * or a local JWKS file. Claims used: `sub` (user id), `exp`, `subs` / `pubs` (topic patterns the
 * token may subscribe / publish to), `channels` (extra ids counted as the user's own in personal
 * namespaces), `rpc` (method patterns the token may call, for methods with `allow: "token"`),
 * the claims named in `rpc.claims` (forwarded to RPC services) and, on subscription tokens,
 * `topic`. Tokens are never logged or echoed.
 */
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, decodeProtectedHeader, errors, importSPKI, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { ErrorCode } from '../../protocol/index.ts';
import { compilePatterns, EMPTY_PATTERNS, type PatternSet } from './patterns.ts';

export interface AuthConfig {
  anonymous: boolean;
  secrets: readonly string[];
  publicKeys: readonly string[];
  jwksFile?: string | undefined;
  algorithms: readonly string[];
  issuer?: string | undefined;
  audience?: string | undefined;
  clockToleranceSec: number;
  /** Claims kept on the identity to forward to RPC services (config `rpc.claims`). */
  forwardClaims?: readonly string[];
}

/** Who a connection is, from its token (or anonymous). */
export interface Identity {
  /** The token's `sub`; null for anonymous connections. */
  readonly user: string | null;
  /** Token expiry, seconds since the epoch; null when the token has none (or anonymous). */
  readonly exp: number | null;
  readonly subs: PatternSet;
  readonly pubs: PatternSet;
  readonly channels: readonly string[];
  /** The token's `info` claim: what the user shows on presence topics (bounded at hello). */
  readonly info?: unknown;
  /** RPC method patterns the token may call (methods with `allow: "token"`). */
  readonly rpc: PatternSet;
  /** The token claims named in `rpc.claims`, as the token had them: forwarded to RPC services. */
  readonly claims: Readonly<Record<string, unknown>>;
}

export const ANONYMOUS: Identity = { user: null, exp: null, subs: EMPTY_PATTERNS, pubs: EMPTY_PATTERNS, channels: [], rpc: EMPTY_PATTERNS, claims: {} };

/** Claims of a verified subscription token. */
export interface SubscriptionGrant {
  readonly user: string | null;
  readonly exp: number | null;
  readonly topic: string | null;
  readonly subs: PatternSet;
}

export type Verified<T> = { ok: true; value: T } | { ok: false; code: ErrorCode; message: string };

export interface Authenticator {
  /** Whether any key is configured (tokens can be verified at all). */
  readonly enabled: boolean;
  readonly anonymous: boolean;
  readonly clockToleranceSec: number;
  /** Verifies a connection token (hello, refresh): `sub` is required. */
  identity(token: string): Promise<Verified<Identity>>;
  /** Verifies a subscription token (sub.token, history.token). */
  grant(token: string): Promise<Verified<SubscriptionGrant>>;
}

const MAX_ID = 256;
const CHANNEL_RE = /^[A-Za-z0-9_-]{1,128}$/;

interface Candidate {
  readonly alg: string | null; // null: any alg of the JWKS
  readonly key: Uint8Array | CryptoKey | JWTVerifyGetKey;
}

/** Loads the configured keys (async: PEM import); throws a readable error on a bad key. */
export async function createAuthenticator(cfg: AuthConfig): Promise<Authenticator> {
  const algorithms = [...cfg.algorithms];
  const hmac: Candidate[] = [];
  const asym: Candidate[] = [];
  for (const s of cfg.secrets) {
    for (const alg of algorithms.filter((a) => a.startsWith('HS'))) hmac.push({ alg, key: new TextEncoder().encode(s) });
  }
  for (const [i, entry] of cfg.publicKeys.entries()) {
    const pem = entry.includes('-----BEGIN') ? entry : readKeyFile(entry, `auth.publicKeys[${i}]`);
    let algs: string[];
    try {
      algs = algorithmsFor(pem).filter((a) => algorithms.includes(a));
    } catch (e) {
      throw new Error(`auth.publicKeys[${i}]: not a PEM public key (${(e as Error).message})`);
    }
    if (algs.length === 0) throw new Error(`auth.publicKeys[${i}]: no allowed algorithm (auth.algorithms) fits this key type`);
    for (const alg of algs) asym.push({ alg, key: await importSPKI(pem, alg) });
  }
  if (cfg.jwksFile) {
    let jwks: unknown;
    try {
      jwks = JSON.parse(readKeyFile(cfg.jwksFile, 'auth.jwksFile'));
    } catch (e) {
      throw new Error(`auth.jwksFile: not valid JSON (${(e as Error).message})`);
    }
    try {
      asym.push({ alg: null, key: createLocalJWKSet(jwks as Parameters<typeof createLocalJWKSet>[0]) });
    } catch (e) {
      throw new Error(`auth.jwksFile: not a JWKS (${(e as Error).message})`);
    }
  }
  const enabled = hmac.length + asym.length > 0;
  const forwarded = cfg.forwardClaims ?? [];
  const options = {
    algorithms,
    clockTolerance: cfg.clockToleranceSec,
    ...(cfg.issuer ? { issuer: cfg.issuer } : {}),
    ...(cfg.audience ? { audience: cfg.audience } : {}),
  };

  async function verify(token: string): Promise<Verified<JWTPayload>> {
    if (!enabled) return deny(ErrorCode.Unauthorized, 'this gateway does not accept tokens (no auth keys configured)');
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      return deny(ErrorCode.Unauthorized, 'malformed token');
    }
    if (typeof alg !== 'string' || !algorithms.includes(alg))
      return deny(ErrorCode.Unauthorized, `token algorithm ${JSON.stringify(alg)?.slice(0, 20)} is not accepted`);
    const candidates = (alg.startsWith('HS') ? hmac : asym).filter((c) => c.alg === null || c.alg === alg);
    for (const c of candidates) {
      try {
        const { payload } =
          typeof c.key === 'function' ? await jwtVerify(token, c.key as JWTVerifyGetKey, options) : await jwtVerify(token, c.key as Uint8Array, options);
        return { ok: true, value: payload };
      } catch (e) {
        if (e instanceof errors.JWSSignatureVerificationFailed || e instanceof errors.JWKSNoMatchingKey || e instanceof errors.JWKSMultipleMatchingKeys)
          continue;
        if (e instanceof errors.JWTExpired) return deny(ErrorCode.TokenExpired, 'token expired: get a new token');
        if (e instanceof errors.JWTClaimValidationFailed) return deny(ErrorCode.Unauthorized, `token rejected: ${e.message}`);
        return deny(ErrorCode.Unauthorized, 'invalid token');
      }
    }
    return deny(ErrorCode.Unauthorized, 'token signature does not verify with any configured key');
  }

  return {
    enabled,
    anonymous: cfg.anonymous,
    clockToleranceSec: cfg.clockToleranceSec,
    async identity(token) {
      const v = await verify(token);
      if (!v.ok) return v;
      const c = v.value;
      if (typeof c.sub !== 'string' || c.sub.length === 0 || c.sub.length > MAX_ID)
        return deny(ErrorCode.Unauthorized, 'token has no valid "sub" claim (the user id)');
      const subs = patternsClaim(c, 'subs');
      const pubs = patternsClaim(c, 'pubs');
      const rpc = patternsClaim(c, 'rpc');
      const channels = c.channels === undefined ? [] : c.channels;
      if (typeof subs === 'string') return deny(ErrorCode.Unauthorized, subs);
      if (typeof pubs === 'string') return deny(ErrorCode.Unauthorized, pubs);
      if (typeof rpc === 'string') return deny(ErrorCode.Unauthorized, rpc);
      if (!Array.isArray(channels) || channels.length > 256 || !channels.every((x) => typeof x === 'string' && CHANNEL_RE.test(x))) {
        return deny(ErrorCode.Unauthorized, 'invalid "channels" claim: a list of topic tokens');
      }
      const info = c.info === undefined || c.info === null ? {} : { info: c.info };
      const claims: Record<string, unknown> = {};
      for (const name of forwarded) if (c[name] !== undefined) claims[name] = c[name];
      return {
        ok: true,
        value: { user: c.sub, exp: typeof c.exp === 'number' ? Math.floor(c.exp) : null, subs, pubs, channels: channels as string[], rpc, claims, ...info },
      };
    },
    async grant(token) {
      const v = await verify(token);
      if (!v.ok) return v;
      const c = v.value;
      if (c.sub !== undefined && (typeof c.sub !== 'string' || c.sub.length > MAX_ID)) return deny(ErrorCode.Unauthorized, 'invalid "sub" claim');
      const subs = patternsClaim(c, 'subs');
      if (typeof subs === 'string') return deny(ErrorCode.Unauthorized, subs);
      if (c.topic !== undefined && typeof c.topic !== 'string') return deny(ErrorCode.Unauthorized, 'invalid "topic" claim');
      if (c.topic === undefined && subs.patterns.length === 0)
        return deny(ErrorCode.Unauthorized, 'subscription token names no topic ("topic" or "subs" claim)');
      return {
        ok: true,
        value: { user: c.sub ?? null, exp: typeof c.exp === 'number' ? c.exp : null, topic: (c.topic as string | undefined) ?? null, subs },
      };
    },
  };
}

function deny(code: ErrorCode, message: string): { ok: false; code: ErrorCode; message: string } {
  return { ok: false, code, message };
}

function patternsClaim(c: JWTPayload, name: 'subs' | 'pubs' | 'rpc'): PatternSet | string {
  const v = c[name];
  if (v === undefined) return EMPTY_PATTERNS;
  if (!Array.isArray(v)) return `invalid "${name}" claim: a list of ${name === 'rpc' ? 'method' : 'topic'} patterns`;
  try {
    return compilePatterns(v as string[]);
  } catch (e) {
    return `invalid "${name}" claim: ${(e as Error).message}`;
  }
}

function readKeyFile(path: string, field: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`${field}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** The JWS algorithms a PEM public key can verify. */
function algorithmsFor(pem: string): string[] {
  const key = createPublicKey(pem);
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
    case 'rsa-pss':
      return ['PS256', 'PS384', 'PS512'];
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      return curve === 'prime256v1' ? ['ES256'] : curve === 'secp384r1' ? ['ES384'] : curve === 'secp521r1' ? ['ES512'] : [];
    }
    case 'ed25519':
      return ['EdDSA', 'Ed25519'];
    default:
      return [];
  }
}
