/** Who may call a method: its `allow` mode against the caller's verified identity. */
import { ErrorCode } from '../../protocol/index.ts';
import type { Identity } from '../policy/auth.ts';
import type { Decision } from '../policy/permissions.ts';
import type { ResolvedMethod } from './methods.ts';

export function canCall(identity: Identity, method: string, m: ResolvedMethod): Decision {
  if (m.allow === 'anyone') return { ok: true };
  if (identity.user === null) return { ok: false, code: ErrorCode.Unauthorized, message: `calling ${method} needs a token` };
  if (m.allow === 'authenticated' || identity.rpc.matches(method)) return { ok: true };
  return { ok: false, code: ErrorCode.Forbidden, message: `the token's "rpc" claim does not allow calling ${method}` };
}
