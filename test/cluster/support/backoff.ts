/** A retry pause (backoff between attempts); never used to wait for something to happen. */
export function backoff(attempt: number, capMs = 500): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.min(capMs, 25 * 2 ** attempt)));
}
