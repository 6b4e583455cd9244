/**
 * Errors the NATS engine throws, with a code the gateway can map to protocol codes:
 * `unavailable` (NATS or the stream cannot answer now: retry later, ErrorCode.Unavailable),
 * `bad_topic`, `rejected` (NATS refused the message, e.g. over max_payload), `closed`,
 * `not_started`, `bad_state`, `misconfigured`, `conflict` (an idempotency key already named a
 * different publish: ErrorCode.IdempotencyKeyReused). Which NATS errors are worth retrying is
 * the same for every JetStream client of the project: nats-kit/errors.ts `isRetryable`.
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

/** JetStream could not write the message to its store (JSStreamStoreFailedF, e.g. missing block files). */
export function isStoreFailure(e: unknown): boolean {
  return (e as { api_error?: { err_code?: number } })?.api_error?.err_code === 10077;
}
