/** Latency samples of one step, in milliseconds; bounded, percentiles by sorting at the end. */
export class LatencyRecorder {
  private samples: Float64Array;
  private n = 0;
  /** Samples that arrived after the buffer was full (counted, not kept). */
  dropped = 0;

  constructor(capacity = 2_000_000) {
    this.samples = new Float64Array(capacity);
  }

  record(ms: number): void {
    if (this.n < this.samples.length) this.samples[this.n++] = ms;
    else this.dropped++;
  }

  get count(): number {
    return this.n;
  }

  reset(): void {
    this.n = 0;
    this.dropped = 0;
  }

  /** Percentiles (0..100) of the recorded samples; NaN when there are none. */
  percentiles(ps: readonly number[]): number[] {
    if (this.n === 0) return ps.map(() => NaN);
    const sorted = this.samples.slice(0, this.n).sort();
    return ps.map((p) => sorted[Math.min(this.n - 1, Math.max(0, Math.ceil((p / 100) * this.n) - 1))]!);
  }
}
