/**
 * Token buckets for message rates: `capacity` tokens (the burst), refilled continuously at
 * `perSec`. One per connection, one per user (shared by the user's connections on this gateway).
 * Checked once per client frame on the ingress side; never on delivery.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly perSec: number,
    readonly capacity: number,
    now = Date.now(),
  ) {
    this.tokens = capacity;
    this.last = now;
  }

  /** Takes one token; false when the bucket is empty (the caller rejects the frame). */
  take(now = Date.now()): boolean {
    if (now > this.last) {
      this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) * this.perSec) / 1000);
      this.last = now;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Gives one token back (when another bucket refused the same frame). */
  refund(): void {
    this.tokens = Math.min(this.capacity, this.tokens + 1);
  }
}

/** A bucket that never runs out: the limit is switched off (rate 0). */
export const UNLIMITED = { take: () => true, refund: () => {} } as const;
export type Bucket = Pick<TokenBucket, 'take' | 'refund'>;

export function bucket(perSec: number, burst: number, now = Date.now()): Bucket {
  return perSec > 0 ? new TokenBucket(perSec, Math.max(1, burst), now) : UNLIMITED;
}
