/**
 * Errors the NATS engine throws, with a code the gateway can map to protocol codes:
 * `unavailable` (NATS or the stream cannot answer now: retry later, ErrorCode.Unavailable),
 * `bad_topic`, `rejected` (NATS refused the message, e.g. over max_payload), `closed`,
 * `not_started`, `bad_state`, `misconfigured`, `conflict` (an idempotency key already named a
 * different publish: ErrorCode.IdempotencyKeyReused).
 */
export type NatsBusErrorCode = 'unavailable' | 'bad_topic' | 'rejected' | 'closed' | 'not_started' | 'bad_state' | 'misconfigured' | 'conflict' | 'unsupported';

export class NatsBusError extends Error {
  override readonly name = 'NatsBusError';
  constructor(
    readonly code: NatsBusErrorCode,
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
  }
}

/** nats.js error codes that mean "not now" rather than "never". */
const TRANSIENT = new Set(['503', 'TIMEOUT', 'DISCONNECT', 'CONNECTION_REFUSED', 'CONNECTION_TIMEOUT', '408']);

/** JetStream API errors worth retrying: no leader yet, cluster busy, stream temporarily unavailable. */
const TRANSIENT_API = new Set([10008, 10023, 10039, 10074]);

export function isRetryable(e: unknown): boolean {
  const err = e as { code?: unknown; api_error?: { code?: number; err_code?: number } };
  if (typeof err?.code === 'string' && TRANSIENT.has(err.code)) return true;
  const api = err?.api_error;
  if (api && (api.code === 503 || (api.err_code !== undefined && TRANSIENT_API.has(api.err_code)))) return true;
  return false;
}

/** JetStream could not write the message to its store (JSStreamStoreFailedF, e.g. missing block files). */
export function isStoreFailure(e: unknown): boolean {
  return (e as { api_error?: { err_code?: number } })?.api_error?.err_code === 10077;
}
