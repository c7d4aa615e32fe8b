/**
 * RetryBudget: retries allowed as a ratio of recent successful calls plus a small floor per
 * second, so that retries cannot multiply load during an outage (the idea of Finagle's
 * RetryBudget and of gRPC's retry throttling).
 *
 * Invariants:
 *  - Memory is fixed: two rings of SLICES counters (successes, retries), each slice
 *    `windowMs / SLICES` wide. The window is the current slice and the SLICES - 1 before it;
 *    a slice is zeroed when time moves past it, so counts expire at slice granularity.
 *  - `sumSuccesses` / `sumRetries` equal the sums of their rings at every step.
 *  - The balance is `reserve + ratio * sumSuccesses - sumRetries`, with
 *    `reserve = minPerSecond * windowMs / 1000`. A withdrawal succeeds only when the balance is
 *    at least 1, so at each withdrawal, retries in the window (this one included) <= reserve +
 *    ratio * successes in the window. A retry is remembered as long as the successes that paid
 *    for it (it came no earlier than they did), so no success pays twice.
 *  - Time comes only from the clock. If it goes backwards, the current slice stays current
 *    (nothing expires early, nothing is counted twice).
 */
import { checkClock, type Clock } from "../core/clock.js";
import { checkName, checkNumber, checkOptions, given } from "../core/validate.js";
import { observe } from "../core/registry.js";
import { publishReject, rejectChannel } from "../core/events.js";

/** Slices in a window: the window's granularity is `windowMs / SLICES`. */
const SLICES = 10;
/** Tolerance for float rounding in `ratio * successes` (e.g. 0.1 * 30). */
const EPSILON = 1e-9;

/** Options of `new RetryBudget(options)`. */
export interface RetryBudgetOptions {
  /** Retries earned per successful call (default 0.1: one retry per ten successes). A finite number >= 0. */
  ratio?: number;
  /** Retries allowed per second even with no successes (default 10). A finite number >= 0. */
  minPerSecond?: number;
  /** How long a success or a retry is remembered, in ms (default 10 000). A finite number > 0. */
  windowMs?: number;
  /** Where time is read (default: the default clock). */
  clock?: Clock;
  /** Names the budget in `stats`. */
  name?: string;
}

/** Counters of one budget: a fresh snapshot. */
export interface RetryBudgetStats {
  readonly name: string | undefined;
  /** Whole retries that `tryWithdraw` would grant now. */
  readonly available: number;
  /** Successes ever deposited. */
  readonly deposits: number;
  /** Retries ever granted. */
  readonly withdrawals: number;
  /** Retries ever refused. */
  readonly refused: number;
}

/** What `retry` needs of a budget: a `RetryBudget`, or your own (e.g. one shared by processes). */
export interface RetryBudgetLike {
  /** Records one successful call. */
  deposit(): void;
  /** Takes one retry if the budget allows it; false otherwise. */
  tryWithdraw(): boolean;
}

/** The ring index of an absolute slice number (which may be negative for a clock before 1970). */
function slot(slice: number): number {
  return ((slice % SLICES) + SLICES) % SLICES;
}

function finiteAtLeast(value: unknown, name: string, min: number, strict: boolean): number {
  const n = checkNumber(value, name);
  if (!Number.isFinite(n) || (strict ? n <= min : n < min)) {
    throw new RangeError(`${name} must be a finite number ${strict ? ">" : ">="} ${min}, got ${String(n)}`);
  }
  return n;
}

/**
 * A budget for retries shared by many calls: each successful call deposits `ratio` of a retry,
 * each retry withdraws one, and a reserve of `minPerSecond` retries per second lets a client
 * that has seen no success yet still retry a little. Both expire after `windowMs`.
 *
 * Never blocks: `tryWithdraw()` answers at once. Bounded: fixed memory (10 counters per ring),
 * whatever the call rate. During an outage (no successes) retries are limited to the reserve,
 * `minPerSecond * windowMs / 1000` per window; with successes, to `ratio` of the window's
 * successes on top. So `N` calls in a window make at most `N * (1 + ratio)` attempts plus the
 * reserve, however many `attempts` each `retry` allows: retries cannot multiply load.
 *
 * Give one budget to every `retry` that calls the same dependency; `retry` deposits on each
 * success and withdraws before each retry (never for the first attempt).
 *
 * Note that the reserve is `minPerSecond * windowMs / 1000` retries per window: with a
 * `windowMs` under one second and `minPerSecond: 1` it is less than one retry, i.e. none.
 *
 * @example
 * const budget = new RetryBudget({ ratio: 0.1, minPerSecond: 10 });
 * const user = await retry((signal) => fetchUser(id, signal), { budget, signal });
 */
export class RetryBudget implements RetryBudgetLike {
  readonly #ratio: number;
  readonly #reserve: number;
  readonly #sliceMs: number;
  readonly #clock: Clock;
  readonly #name: string | undefined;
  readonly #successes = new Float64Array(SLICES);
  readonly #retries = new Float64Array(SLICES);
  #sumSuccesses = 0;
  #sumRetries = 0;
  /** Absolute number of the current slice: floor(now / sliceMs). */
  #slice: number;
  #deposits = 0;
  #withdrawals = 0;
  #refused = 0;

  /**
   * @throws TypeError / RangeError naming the option, for a bad option.
   */
  constructor(options?: RetryBudgetOptions) {
    checkOptions(options);
    this.#ratio = finiteAtLeast(given(options?.ratio, 0.1), "options.ratio", 0, false);
    const minPerSecond = finiteAtLeast(given(options?.minPerSecond, 10), "options.minPerSecond", 0, false);
    const windowMs = finiteAtLeast(given(options?.windowMs, 10_000), "options.windowMs", 0, true);
    this.#clock = checkClock(options?.clock);
    this.#name = checkName(options?.name);
    this.#reserve = (minPerSecond * windowMs) / 1000;
    this.#sliceMs = windowMs / SLICES;
    this.#slice = Math.floor(this.#clock.now() / this.#sliceMs);
    observe("retry-budget", this, this.#name !== undefined);
  }

  /** The name given in the options (undefined without one). */
  get name(): string | undefined {
    return this.#name;
  }

  /** Whole retries that `tryWithdraw()` would grant now (0 or more). */
  get available(): number {
    this.#advance();
    return Math.max(0, Math.floor(this.#balance() + EPSILON));
  }

  /** A fresh snapshot of the counters. */
  get stats(): RetryBudgetStats {
    return {
      name: this.#name,
      available: this.available,
      deposits: this.#deposits,
      withdrawals: this.#withdrawals,
      refused: this.#refused,
    };
  }

  /**
   * Records one successful call: it earns `ratio` of a retry for the next `windowMs`. Call it
   * once per call that succeeded (not per attempt); `retry` does so itself. Never blocks.
   */
  deposit(): void {
    this.#advance();
    const i = slot(this.#slice);
    this.#successes[i]!++;
    this.#sumSuccesses++;
    this.#deposits++;
  }

  /**
   * Takes one retry from the budget if at least one is available, and says whether it did. A
   * refusal changes nothing but the `refused` counter. Never blocks.
   *
   * @example
   * if (!budget.tryWithdraw()) throw lastError; // no retry: the dependency is struggling
   */
  tryWithdraw(): boolean {
    this.#advance();
    if (this.#balance() + EPSILON < 1) {
      this.#refused++;
      if (rejectChannel.hasSubscribers) publishReject("retry-budget", this, "exhausted");
      return false;
    }
    const i = slot(this.#slice);
    this.#retries[i]!++;
    this.#sumRetries++;
    this.#withdrawals++;
    return true;
  }

  #balance(): number {
    return this.#reserve + this.#ratio * this.#sumSuccesses - this.#sumRetries;
  }

  /** Moves the window to now: zeroes the slices time has moved past. */
  #advance(): void {
    const now = Math.floor(this.#clock.now() / this.#sliceMs);
    if (!(now > this.#slice)) return; // same slice, clock went back, or NaN from a broken clock
    const steps = Math.min(now - this.#slice, SLICES);
    for (let k = 1; k <= steps; k++) {
      const i = slot(this.#slice + k);
      this.#sumSuccesses -= this.#successes[i]!;
      this.#sumRetries -= this.#retries[i]!;
      this.#successes[i] = 0;
      this.#retries[i] = 0;
    }
    this.#slice = now;
  }
}
