/**
 * A FIFO queue over one array whose slots are reused: nothing is allocated per push or shift once
 * the array has grown to the longest backlog. A Set (or an array emptied with `length = 0`)
 * allocates a new backing store per burst, and V8 promotes it when the burst outlives a young GC;
 * `Array.prototype.shift` moves every element. Used where a steady stream passes through: the
 * NATS session registry's write queue (one entry per session refresh), and the requests a reply
 * mux holds back (reply-mux.ts: thousands in a resume storm).
 */
export class SlotQueue<T> {
  private readonly slots: (T | undefined)[] = [];
  private head = 0;
  private tail = 0;

  get size(): number {
    return this.tail - this.head;
  }

  push(item: T): void {
    this.slots[this.tail++] = item;
  }

  /** The oldest item, removed; undefined when empty. */
  shift(): T | undefined {
    if (this.head === this.tail) return undefined;
    const item = this.slots[this.head];
    this.slots[this.head++] = undefined; // no reference kept to what left
    if (this.head === this.tail) this.head = this.tail = 0;
    // Never empty (a backlog that never drains): move what is left to the front once most of the
    // array is spent, so it cannot grow by every push forever.
    else if (this.head >= 1024 && this.head * 2 >= this.tail) {
      this.slots.copyWithin(0, this.head, this.tail);
      this.slots.fill(undefined, this.tail - this.head, this.tail);
      this.tail -= this.head;
      this.head = 0;
    }
    return item;
  }

  /** How many slots the array holds (for tests: it stays bounded by the longest backlog). */
  get capacity(): number {
    return this.slots.length;
  }
}
