/**
 * Reconnect delays: full jitter (AWS "Exponential Backoff And Jitter"). Attempt n waits a uniformly
 * random time in [0, min(max, min * 2^n)], so a crowd of clients dropped together spreads out
 * instead of reconnecting in lockstep. Pure: the random source is a parameter.
 *
 * The same formula as nats-kit/backoff.ts, kept here on purpose: this module ships in the
 * browser bundle, which must not pull the Node-only kit, and its options are public SDK API.
 */
export interface BackoffOptions {
  /** Upper bound of the first attempt's window, ms (the window doubles per attempt). */
  min: number;
  /** The largest window, ms. */
  max: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { min: 500, max: 20_000 };

export function backoffDelay(attempt: number, opts: BackoffOptions, random: () => number = Math.random): number {
  const exp = Math.min(Math.max(attempt, 0), 30); // 2^30 already dwarfs any max
  const window = Math.min(opts.max, opts.min * 2 ** exp);
  return Math.floor(random() * Math.max(window, 0));
}

/**
 * Delay before reconnecting after a server closed the socket with ServerShutdown (restart or drain):
 * every client of that server reconnects at once otherwise, so the first attempt is spread over
 * the whole `spread` window, and later attempts back off as usual (never below the spread window).
 */
export function shutdownDelay(attempt: number, opts: BackoffOptions, spread: number, random: () => number = Math.random): number {
  const window = Math.max(spread, Math.min(opts.max, opts.min * 2 ** Math.min(Math.max(attempt, 0), 30)));
  return Math.floor(random() * window);
}
