/** What a NATS or JetStream error says: its codes, and whether asking again may succeed. */

/** nats.js error codes that mean "not now" rather than "never". */
const TRANSIENT = new Set(['503', 'TIMEOUT', 'DISCONNECT', 'CONNECTION_REFUSED', 'CONNECTION_TIMEOUT', '408']);

/** JetStream API errors worth retrying: no leader yet, cluster busy, stream temporarily unavailable. */
const TRANSIENT_API = new Set([10008, 10023, 10039, 10074]);

/** The nats.js error code (`'503'`, `'TIMEOUT'`, `'MAX_PAYLOAD_EXCEEDED'`...), if any. */
export function errorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown })?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The JetStream API error's own code (`err_code`, e.g. 10059 stream not found), if any. */
export function apiErrCode(e: unknown): number | undefined {
  return (e as { api_error?: { err_code?: number } })?.api_error?.err_code;
}

export function isRetryable(e: unknown): boolean {
  const code = errorCode(e);
  if (code !== undefined && TRANSIENT.has(code)) return true;
  const api = (e as { api_error?: { code?: number; err_code?: number } })?.api_error;
  if (!api) return false;
  return api.code === 503 || (api.err_code !== undefined && TRANSIENT_API.has(api.err_code));
}
