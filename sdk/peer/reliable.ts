/**
 * Exactly once, in order, across a path switch. Every message of a peer channel gets a number
 * `n` (1, 2, …). The sender keeps what it sent over the data channel until the other side
 * acknowledges it, so when that path fails it resends exactly what may be missing over the relay;
 * the receiver delivers in `n` order and drops what it already has, whichever path (or both)
 * carried it. A message the relay took is acknowledged by the gateway itself: it stores it in the
 * recipient's inbox and delivers it once, in order, even across reconnects.
 */
export interface Numbered<T> {
  readonly n: number;
  readonly d: T;
}

export class Outbox<T> {
  private next = 1;
  private kept: Numbered<T>[] = [];

  /** Numbers a message; `keep`: hold it until acknowledged (it went over the data channel). */
  number(d: T, keep: boolean): Numbered<T> {
    const m = { n: this.next++, d };
    if (keep) this.kept.push(m);
    return m;
  }

  /** The other side has every message up to `n`. */
  ack(n: number): void {
    let i = 0;
    while (i < this.kept.length && this.kept[i]!.n <= n) i++;
    if (i > 0) this.kept = this.kept.slice(i);
  }

  /** Sent over the data channel and not yet acknowledged, oldest first: what a fallback resends. */
  unacked(): readonly Numbered<T>[] {
    return this.kept;
  }

  /** Numbers handed out so far. */
  get sent(): number {
    return this.next - 1;
  }
}

export class Reorder<T> {
  /** Every message up to this one has been delivered. */
  delivered = 0;
  private held = new Map<number, T>();

  constructor(private readonly maxHeld = 10_000) {}

  /**
   * Takes message `n`; returns what can be delivered now, in order (nothing for a duplicate or
   * for one that waits on an earlier message). Throws when more than `maxHeld` wait: a gap that
   * never fills is a bug, not something to buffer forever.
   */
  accept(n: number, d: T): T[] {
    if (n <= this.delivered || this.held.has(n)) return [];
    if (n !== this.delivered + 1) {
      if (this.held.size >= this.maxHeld) throw new Error(`peer channel: ${this.held.size} messages wait for message ${this.delivered + 1}`);
      this.held.set(n, d);
      return [];
    }
    const out = [d];
    while (this.held.has(n + 1)) {
      n++;
      out.push(this.held.get(n) as T);
      this.held.delete(n);
    }
    this.delivered = n;
    return out;
  }

  get waiting(): number {
    return this.held.size;
  }
}
