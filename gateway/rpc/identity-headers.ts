/**
 * The caller's identity as the gateway tells it to services. Only the gateway sets these headers:
 * a client has no way to add headers to a call, and whatever it puts in `data` is only data.
 */
import type { Identity } from '../policy/auth.ts';

export const HEADER_USER = 'Symphonic-User';
export const HEADER_SESSION = 'Symphonic-Session';
export const HEADER_NODE = 'Symphonic-Node';
export const HEADER_CLAIMS = 'Symphonic-Claims';

export interface Caller {
  readonly identity: Identity;
  /** The caller's session id. */
  readonly session: string;
}

export function identityHeaders(caller: Caller, node: string): Record<string, string> {
  const h: Record<string, string> = { [HEADER_SESSION]: caller.session, [HEADER_NODE]: node };
  if (caller.identity.user !== null) h[HEADER_USER] = asciiSafe(caller.identity.user);
  h[HEADER_CLAIMS] = asciiJson(caller.identity.claims);
  return h;
}

/** JSON with every non-ASCII character escaped: header values must be plain ASCII. */
function asciiJson(v: unknown): string {
  return JSON.stringify(v).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A user id outside printable ASCII is sent percent-encoded (it cannot travel raw in a header). */
function asciiSafe(s: string): string {
  return /^[\x20-\x7e]*$/.test(s) ? s : encodeURIComponent(s);
}
