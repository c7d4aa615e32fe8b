/**
 * VirtualClock: a `Clock` whose time moves only when a test says so, so that code built on
 * sluice's timers, tickers, deadlines and limiters runs instantly and deterministically (the
 * idea of Go's `testing/synctest`).
 *
 * Invariants:
 *  - `now()` never goes backwards; it moves only in `advance`/`advanceAsync`/`runNext`.
 *  - Armed timers live in a binary min-heap ordered by (due time, arming order), so timers due
 *    at the same instant fire in the order they were armed, as Node's do.
 *  - A cleared timer is marked dead and skipped when it reaches the top; when dead entries
 *    outnumber live ones the heap is rebuilt, so arming and clearing in a loop stays bounded
 *    by the number of live timers.
 */
import type { Clock } from "../core/clock.js";

interface Entry {
  due: number;
  seq: number;
  fn: (() => void) | null; // null once cleared or fired
}

/**
 * A manually advanced clock for tests.
 *
 * @example
 * const clock = new VirtualClock();
 * const limiter = new RateLimiter({ rate: 1, burst: 1, clock });
 * const p = limiter.wait(2 - 1); limiter.wait(1); // ...
 * await clock.advanceAsync(1000); // fires every timer due within the next second, in order
 */
export class VirtualClock implements Clock {
  #now: number;
  #seq = 0;
  #heap: Entry[] = [];
  #dead = 0;

  /** @param start the initial `now()` in milliseconds (default 0). */
  constructor(start = 0) {
    if (typeof start !== "number" || !Number.isFinite(start)) throw new TypeError("start must be a finite number");
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    if (typeof fn !== "function") throw new TypeError("fn must be a function");
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
    const e: Entry = { due: this.#now + delay, seq: this.#seq++, fn };
    this.#push(e);
    return e;
  }

  clearTimeout(handle: unknown): void {
    const e = handle as Entry | null | undefined;
    if (e == null || typeof e !== "object" || e.fn === null || !("due" in e)) return;
    e.fn = null;
    if (++this.#dead > 16 && this.#dead * 2 > this.#heap.length) this.#compact();
  }

  /** Armed timers not yet fired or cleared. */
  get pending(): number {
    return this.#heap.length - this.#dead;
  }

  /** When the next armed timer is due, or undefined. */
  nextDue(): number | undefined {
    this.#dropDeadTop();
    return this.#heap[0]?.due;
  }

  /**
   * Moves time forward by `ms`, firing every timer due by then in order (time stands at each
   * timer's due instant while it runs; timers armed by those callbacks fire too if due). Runs
   * synchronously: promise callbacks queued by the timers run after it returns.
   */
  advance(ms: number): void {
    const target = this.#target(ms);
    while (this.#fireNext(target));
    this.#now = target;
  }

  /**
   * Like `advance`, but lets promise reactions run after each timer fires, so that async code
   * woken by one timer can arm the next within the same call. Use this for async code under test.
   */
  async advanceAsync(ms: number): Promise<void> {
    const target = this.#target(ms);
    await flush();
    while (this.#fireNext(target)) await flush();
    this.#now = target;
    await flush();
  }

  /** Fires the next armed timer, whatever its due time; false when none is armed. */
  runNext(): boolean {
    return this.#fireNext(Infinity);
  }

  #target(ms: number): number {
    if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) {
      throw new RangeError(`ms must be a finite number >= 0, got ${String(ms)}`);
    }
    return this.#now + ms;
  }

  #fireNext(target: number): boolean {
    this.#dropDeadTop();
    const top = this.#heap[0];
    if (top === undefined || top.due > target) return false;
    this.#pop();
    const fn = top.fn!;
    top.fn = null;
    if (top.due > this.#now) this.#now = top.due;
    fn();
    return true;
  }

  #dropDeadTop(): void {
    while (this.#heap.length > 0 && this.#heap[0]!.fn === null) {
      this.#pop();
      this.#dead--;
    }
  }

  #compact(): void {
    const live = this.#heap.filter((e) => e.fn !== null);
    this.#heap = [];
    this.#dead = 0;
    for (const e of live) this.#push(e);
  }

  #less(a: Entry, b: Entry): boolean {
    return a.due < b.due || (a.due === b.due && a.seq < b.seq);
  }

  #push(e: Entry): void {
    const h = this.#heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  #pop(): void {
    const h = this.#heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.#less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.#less(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}

/** Lets queued promise reactions run (a macrotask turn drains the microtask queue). */
function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
