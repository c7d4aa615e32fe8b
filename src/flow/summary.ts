/**
 * A latency summary over a bounded window (internal to flow's counters).
 *
 * Invariants:
 *  - It keeps at most `size` samples, in a fixed ring: memory does not grow with traffic.
 *  - `count` and `sum` cover every sample ever recorded (so `mean` is the all-time mean);
 *    percentiles cover the most recent `min(count, size)` samples.
 *  - `snapshot()` sorts a copy of the window (at most `size` numbers) and changes nothing.
 */

/** A summary of durations in milliseconds. */
export interface SummarySnapshot {
  /** Samples recorded, all time. */
  readonly count: number;
  /** Mean of all samples, all time (0 when none). */
  readonly mean: number;
  /** Median of the recent window (0 when none). */
  readonly p50: number;
  /** 99th percentile of the recent window (0 when none). */
  readonly p99: number;
  /** Largest sample of the recent window (0 when none). */
  readonly max: number;
}

/** @internal */
export class Summary {
  readonly #ring: Float64Array;
  #next = 0;
  #count = 0;
  #sum = 0;

  constructor(size = 1024) {
    this.#ring = new Float64Array(size);
  }

  record(ms: number): void {
    this.#ring[this.#next] = ms;
    this.#next = this.#next + 1 === this.#ring.length ? 0 : this.#next + 1;
    this.#count++;
    this.#sum += ms;
  }

  get count(): number {
    return this.#count;
  }

  get mean(): number {
    return this.#count === 0 ? 0 : this.#sum / this.#count;
  }

  snapshot(): SummarySnapshot {
    const n = Math.min(this.#count, this.#ring.length);
    if (n === 0) return { count: 0, mean: 0, p50: 0, p99: 0, max: 0 };
    const w = this.#ring.slice(0, n).sort();
    const at = (q: number): number => w[Math.min(n - 1, Math.ceil(q * n) - 1)]!;
    return { count: this.#count, mean: this.mean, p50: at(0.5), p99: at(0.99), max: w[n - 1]! };
  }
}
