/** Test tokens signed with jose: HS256 with a shared secret, RS256/ES256 with generated key pairs. */
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWTPayload } from 'jose';

export const SECRET = 'test-secret-0123456789-abcdefghijklmnop';
const secretKey = new TextEncoder().encode(SECRET);

/** Seconds since the epoch, `offset` seconds from now. */
export const inSeconds = (offset: number) => Math.floor(Date.now() / 1000) + offset;

export async function hs256(claims: JWTPayload, opts: { secret?: string; alg?: string } = {}): Promise<string> {
  const key = opts.secret ? new TextEncoder().encode(opts.secret) : secretKey;
  return new SignJWT(claims).setProtectedHeader({ alg: opts.alg ?? 'HS256' }).sign(key);
}

export interface KeyPairSigner {
  readonly publicPem: string;
  readonly jwk: Record<string, unknown>;
  sign(claims: JWTPayload, kid?: string): Promise<string>;
}

export async function keyPair(alg: 'RS256' | 'ES256'): Promise<KeyPairSigner> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), alg, use: 'sig' };
  return {
    publicPem: await exportSPKI(publicKey),
    jwk,
    sign: (claims, kid) => new SignJWT(claims).setProtectedHeader({ alg, ...(kid ? { kid } : {}) }).sign(privateKey),
  };
}
