/**
 * Waiting between attempts. Full jitter (AWS "Exponential Backoff And Jitter"): a fleet of
 * gateways or backends retrying together spreads out instead of stampeding a restarted server.
 */

/** Full jitter: uniform in [0, min(cap, base * 2^attempt)]. Pure, so it is unit-tested. */
export function backoffDelay(attempt: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/**
 * Resolves after `ms`. The timer does not hold the process open (a gateway shutting down must
 * not wait out a retry), unless `keepAlive`: a library whose caller awaits the result must not
 * let the process exit under it.
 */
export function pause(ms: number, keepAlive = false): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, Math.max(0, ms));
    if (!keepAlive) timer.unref();
  });
}
