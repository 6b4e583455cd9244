/** What an RPC call came to: the service's answer, or a protocol error for the client. */
import { ErrorCode } from '../../protocol/index.ts';

export type RpcOutcome = { ok: true; data: unknown } | { ok: false; code: ErrorCode; message: string; data?: unknown };

/** The metric label of an outcome (symphonic_rpc_calls_total). */
export function outcomeLabel(o: RpcOutcome): string {
  if (o.ok) return 'ok';
  switch (o.code) {
    case ErrorCode.ServiceError:
      return 'service_error';
    case ErrorCode.ServiceTimeout:
      return 'timeout';
    case ErrorCode.NoResponders:
      return 'no_responders';
    case ErrorCode.ReplyTooLarge:
      return 'too_large';
    case ErrorCode.UnknownMethod:
      return 'unknown_method';
    case ErrorCode.Unauthorized:
    case ErrorCode.Forbidden:
      return 'denied';
    default:
      return 'error';
  }
}

export const fail = (code: ErrorCode, message: string, data?: unknown): RpcOutcome =>
  data === undefined ? { ok: false, code, message } : { ok: false, code, message, data };

/** An answer body (JSON, empty = null), or a 2012 when the service sent something else. */
export function parseAnswer(bytes: Uint8Array): RpcOutcome {
  if (bytes.length === 0) return { ok: true, data: null };
  try {
    return { ok: true, data: JSON.parse(new TextDecoder().decode(bytes)) };
  } catch {
    return fail(ErrorCode.ServiceError, 'the service answered something that is not JSON');
  }
}
