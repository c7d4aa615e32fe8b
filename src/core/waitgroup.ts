/**
 * WaitGroup: waits for a counted set of operations to finish, like Go's `sync.WaitGroup`.
 *
 * Invariants:
 *  - `count >= 0` at every step; an `add` that would take it below zero throws RangeError and
 *    changes nothing.
 *  - Waiters are parked only while `count > 0`; the step that brings `count` to 0 wakes all of
 *    them, oldest first. A withdrawn (aborted) waiter is unlinked in O(1).
 */
import { WaitQueue, parkUntilWoken, wakeAll, type WakeQueue } from "./waitq.js";
import { checkInteger, checkName, checkOptions, signalOf } from "./validate.js";
import type { WaitOptions } from "./channel.js";

/**
 * A counter of outstanding operations and a way to wait until it is zero.
 *
 * Blocks: `wait()` only, until the counter is zero (or its signal aborts). Bounded: callers
 * waiting are warned about once past 1000 (`SLUICE_PARKED_WAITERS`).
 *
 * @example
 * const wg = new WaitGroup();
 * for (const f of files) { wg.add(1); void upload(f).finally(() => wg.done()); }
 * await wg.wait();
 */
export class WaitGroup {
  #count = 0;
  readonly #waiters: WakeQueue;
  readonly #name: string | undefined;

  constructor(options?: { name?: string }) {
    checkOptions(options);
    this.#name = checkName(options?.name);
    this.#waiters = new WaitQueue(this, "wait", 1000, "SLUICE_PARKED_WAITERS");
  }

  /** The counter now. */
  get count(): number {
    return this.#count;
  }

  /**
   * Adds `n` (default 1; may be negative) to the counter. When it reaches zero, every waiter
   * is released.
   *
   * @throws TypeError/RangeError if `n` is not a safe integer, or the counter would go below
   *   zero (then nothing is added).
   */
  add(n = 1): void {
    if (n !== 1 && n !== -1) checkInteger(n, "n", Number.MIN_SAFE_INTEGER);
    const next = this.#count + n;
    if (next < 0) {
      throw new RangeError(`${this.describe()}: negative counter (${this.#count} ${n < 0 ? "-" : "+"} ${Math.abs(n)})`);
    }
    if (!Number.isSafeInteger(next)) throw new RangeError(`${this.describe()}: counter overflow`);
    this.#count = next;
    if (next === 0) {
      wakeAll(this.#waiters);
    }
  }

  /** Subtracts one: `add(-1)`. @throws RangeError if the counter is already zero. */
  done(): void {
    this.add(-1);
  }

  /**
   * Resolves when the counter is zero (at once, already resolved, if it is zero now).
   * Rejects with `signal.reason` if the signal is or becomes aborted first.
   */
  wait(options?: WaitOptions): Promise<void> {
    let signal: AbortSignal | undefined;
    try {
      signal = signalOf(options);
    } catch (e) {
      return Promise.reject(e);
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#count === 0) return Promise.resolve();
    return parkUntilWoken(this.#waiters, signal);
  }

  /** @internal */
  describe(): string {
    return `wait group${this.#name === undefined ? "" : ` ${JSON.stringify(this.#name)}`} (count ${this.#count})`;
  }
}
