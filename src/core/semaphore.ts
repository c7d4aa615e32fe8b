/**
 * Semaphore: a weighted semaphore with strictly FIFO waiters, like golang.org/x/sync/semaphore.
 *
 * Invariants:
 *  - `0 <= held <= size` at every step; `held` changes only in acquire/tryAcquire/release and
 *    when a parked waiter is granted.
 *  - Waiters are granted strictly in arrival order: a waiter is granted only when every waiter
 *    before it was, so a large request at the head is never starved by small ones behind it
 *    (small requests wait behind it even if they would fit).
 *  - A waiter leaves the queue exactly once: granted, or withdrawn by its signal. When the head
 *    is withdrawn, the waiters behind it are re-examined at once, as they may now fit; a waiter
 *    whose own signal has aborted is never granted (when one signal aborts several waiters,
 *    each is withdrawn in turn, none granted on the way).
 *  - `acquire(n)` with `n > size` can never succeed and is refused with RangeError (Go would
 *    wait forever); a refused call changes nothing.
 */
import { BusyError } from "./errors.js";
import { RESOLVED, WaitQueue, type Waiter } from "./waitq.js";
import { abortPending, unwatchAbort, watchAbort, type Abortable } from "./abort.js";
import { checkInteger, checkLimit, checkName, checkOptions, given, signalOf } from "./validate.js";
import type { WaitOptions } from "./channel.js";
import { observe } from "./registry.js";
import { publishReject, rejectChannel } from "./events.js";

/** Options of `new Semaphore(size, options)`. */
export interface SemaphoreOptions {
  /** Used in errors, warnings and the exit-time report. */
  name?: string;
  /** At most this many callers may wait at once (default Infinity); past it, `acquire` rejects with BusyError. */
  maxWaiters?: number;
  /** Warn once (`SLUICE_PARKED_WAITERS`) when more than this many wait (default 1000 when `maxWaiters` is not set). */
  warnWaiters?: number;
}

/** Counters of one semaphore: a fresh snapshot. */
export interface SemaphoreStats {
  readonly size: number;
  /** Units held now. */
  readonly held: number;
  /** Callers waiting now. */
  readonly waiting: number;
  /** Acquires that had to wait. */
  readonly waited: number;
  /** The most callers ever waiting at once. */
  readonly peakWaiting: number;
  /** Acquires refused with `BusyError` because `maxWaiters` callers already waited. */
  readonly rejected: number;
}

/** A parked acquire; flat (implements Waiter) because it is allocated on every acquire that waits. */
class SemWaiter implements Waiter {
  prev: Waiter | null = null;
  next: Waiter | null = null;
  queue: WaitQueue<Waiter> | null = null;
  abortPrev: Abortable | null = null;
  abortNext: Abortable | null = null;
  abortList: Abortable["abortList"] = null;
  constructor(
    readonly sem: Semaphore,
    readonly n: number,
    readonly resolve: () => void,
    readonly reject: (e: unknown) => void,
  ) {}

  onAbort(reason: unknown): void {
    this.sem.withdraw(this);
    this.reject(reason);
  }
}

/**
 * A weighted semaphore of `size` units. `acquire(n)` waits until `n` units are free and every
 * earlier waiter was served; `release(n)` gives units back and wakes the waiters that now fit,
 * in order.
 *
 * Bounded: `held <= size`, always; waiters are bounded by `maxWaiters` when set (else a warning
 * past 1000).
 *
 * @example
 * const db = new Semaphore(10, { name: "db" });
 * await db.acquire(1, { signal });
 * try { await query(); } finally { db.release(1); }
 */
export class Semaphore {
  readonly #size: number;
  #held = 0;
  readonly #waiters: WaitQueue<SemWaiter>;
  readonly #maxWaiters: number;
  readonly #name: string | undefined;
  #rejected = 0;

  /** @param size the number of units, a positive safe integer. */
  constructor(size: number, options?: SemaphoreOptions) {
    this.#size = checkInteger(size, "size", 1);
    checkOptions(options);
    this.#name = checkName(options?.name);
    this.#maxWaiters = checkLimit(given(options?.maxWaiters, Infinity), "options.maxWaiters", 0);
    const warn = given(options?.warnWaiters, this.#maxWaiters === Infinity ? 1000 : Infinity);
    this.#waiters = new WaitQueue(this, "acquire", checkLimit(warn, "options.warnWaiters", 0), "SLUICE_PARKED_WAITERS");
    observe("semaphore", this, this.#name !== undefined);
  }

  /** The name given in the options (undefined without one). */
  get name(): string | undefined {
    return this.#name;
  }

  /** The number of units. */
  get size(): number {
    return this.#size;
  }

  /** Units free now (`size - held`). */
  get available(): number {
    return this.#size - this.#held;
  }

  /** Callers waiting now. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /** A fresh snapshot of the counters. */
  get stats(): SemaphoreStats {
    return {
      size: this.#size,
      held: this.#held,
      waiting: this.#waiters.length,
      waited: this.#waiters.parkedTotal,
      peakWaiting: this.#waiters.peak,
      rejected: this.#rejected,
    };
  }

  /**
   * Acquires `n` units (default 1), waiting while they are not free or earlier callers wait.
   * Returns an already-resolved promise (one shared by every such call) when it needs no wait.
   *
   * Rejects, changing nothing: `signal.reason` if the signal is or becomes aborted first;
   * `RangeError` if `n` is not a positive safe integer or `n > size`; `BusyError` if
   * `maxWaiters` callers already wait.
   */
  acquire(n = 1, options?: WaitOptions): Promise<void> {
    let signal: AbortSignal | undefined;
    if (options !== undefined || n !== 1) {
      try {
        signal = signalOf(options);
        if (signal?.aborted) return Promise.reject(signal.reason);
        this.#checkN(n);
      } catch (e) {
        return Promise.reject(e);
      }
    }
    if (this.#waiters.length === 0 && this.#held + n <= this.#size) {
      this.#held += n;
      return RESOLVED;
    }
    if (this.#waiters.length >= this.#maxWaiters) {
      this.#rejected++;
      if (rejectChannel.hasSubscribers) publishReject("semaphore", this, "maxWaiters");
      return Promise.reject(new BusyError(`acquire refused: ${this.describe()} already has ${this.#maxWaiters} waiters`));
    }
    return new Promise<void>((resolve, reject) => {
      const w = new SemWaiter(this, n, resolve, reject);
      this.#waiters.push(w);
      if (signal !== undefined) watchAbort(signal, w);
    });
  }

  /**
   * Acquires `n` units only if that needs no waiting (they are free and nobody waits).
   * Returns whether it did. Returns false for `n > size` (it could never succeed), as Go does.
   *
   * @throws RangeError if `n` is not a positive safe integer.
   */
  tryAcquire(n = 1): boolean {
    if (n !== 1) checkInteger(n, "n", 1);
    if (this.#waiters.length === 0 && this.#held + n <= this.#size) {
      this.#held += n;
      return true;
    }
    return false;
  }

  /**
   * Releases `n` units (default 1) and grants waiting callers, oldest first, while they fit.
   *
   * @throws RangeError if `n` is not a positive safe integer or more than is held; nothing is
   *   released then.
   */
  release(n = 1): void {
    if (n !== 1) checkInteger(n, "n", 1);
    if (n > this.#held) {
      throw new RangeError(`release(${n}) on ${this.describe()} holding only ${this.#held}: released more than held`);
    }
    this.#held -= n;
    this.#grant();
  }

  /** @internal Removes an aborted waiter and lets those behind it proceed. */
  withdraw(w: SemWaiter): void {
    const wasHead = this.#waiters.head === w;
    this.#waiters.remove(w);
    if (wasHead) this.#grant();
  }

  /** @internal */
  describe(): string {
    return `semaphore${this.#name === undefined ? "" : ` ${JSON.stringify(this.#name)}`} (size ${this.#size})`;
  }

  #grant(): void {
    for (let w = this.#waiters.head; w !== null && this.#held + w.n <= this.#size && !abortPending(w); w = this.#waiters.head) {
      this.#waiters.shift();
      unwatchAbort(w);
      this.#held += w.n;
      w.resolve();
    }
  }

  #checkN(n: number): void {
    checkInteger(n, "n", 1);
    if (n > this.#size) {
      throw new RangeError(`acquire(${n}) on ${this.describe()} can never succeed: n > size`);
    }
  }
}

