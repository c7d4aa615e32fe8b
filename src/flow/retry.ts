/**
 * retry: call a function again after it fails, with exponential backoff and jitter, within a
 * bounded number of attempts, an optional shared `RetryBudget`, and the caller's signal.
 *
 * Invariants:
 *  - At most one attempt runs at a time, and at most `attempts` run in all. Attempt `n + 1`
 *    starts only after attempt `n` settled and its backoff elapsed.
 *  - At most one backoff timer is armed per call, only through the clock, and it is cleared
 *    when the signal aborts. A call is linked to its signal once (O(1)) from its start until it
 *    settles, so long-lived signals shared by many calls accumulate nothing.
 *  - The signal wins: an already-aborted signal rejects with `signal.reason` without calling
 *    `fn`; an abort during an attempt or a backoff rejects at once with `signal.reason`, and no
 *    further attempt starts.
 *  - Every other rejection is the error of the last attempt itself, unchanged (same object).
 *  - With a budget, every retry (never the first attempt) is withdrawn from it before its
 *    backoff; each call that succeeds deposits once.
 */
import { Abortable, unwatchAbort, watchAbort } from "../core/abort.js";
import { checkClock, type Clock } from "../core/clock.js";
import { BusyError, ChannelClosedError } from "../core/errors.js";
import { checkDuration, checkFunction, checkLimit, checkOptions, checkSignal, given } from "../core/validate.js";
import { BreakerOpenError } from "./errors.js";
import type { RetryBudgetLike } from "./retry-budget.js";

/**
 * How a backoff is randomised, with `cap = min(maxMs, baseMs * 2 ** k)` before retry `k + 1`:
 *  - `"full"` (default): a uniform draw from `[0, cap)`. Spreads retries of many clients best
 *    (the "full jitter" of the AWS architecture blog), at the cost of sometimes retrying early.
 *  - `"equal"`: `cap / 2` plus a uniform draw from `[0, cap / 2)`: never less than half the cap.
 *  - `"none"`: exactly `cap`. Deterministic; clients that failed together retry together.
 */
export type Jitter = "full" | "equal" | "none";

/** What `onRetry` is told before each backoff. */
export interface RetryEvent {
  /** The error of the attempt that just failed. */
  readonly error: unknown;
  /** The number of that attempt (1 for the first call). */
  readonly attempt: number;
  /** How long retry will now wait before attempt `attempt + 1`. */
  readonly delayMs: number;
}

/** Options of `retry(fn, options)`. */
export interface RetryOptions {
  /** Attempts in all, the first included: a positive safe integer, or Infinity (default 3). */
  attempts?: number;
  /** Backoff cap before the first retry, in ms (default 100); doubles for each further retry. */
  baseMs?: number;
  /** The largest backoff, in ms (default 10 000); also the longest `retryAfterMs` hint honoured. */
  maxMs?: number;
  /** How backoffs are randomised (default `"full"`). */
  jitter?: Jitter;
  /**
   * Whether the error of attempt `attempt` may be retried (default `defaultRetryIf`). Not
   * called after the last attempt. If it throws, `retry` rejects with what it threw.
   */
  retryIf?: (error: unknown, attempt: number) => boolean;
  /** Cancels the whole call: the running attempt (through `fn`'s signal) and any backoff. */
  signal?: AbortSignal;
  /** A budget shared by many calls, limiting how many retries they make together. */
  budget?: RetryBudgetLike;
  /** Where backoffs are timed (default: the default clock). */
  clock?: Clock;
  /** A source of uniform numbers in `[0, 1)` for jitter (default `Math.random`). */
  random?: () => number;
  /** Told before each backoff (logging, metrics). If it throws, `retry` rejects with what it threw. */
  onRetry?: (event: RetryEvent) => void;
}

/**
 * The default `retryIf`: retries every error except those that retrying cannot fix:
 *  - `BreakerOpenError`: a circuit breaker asks callers to fail fast; retrying into it would
 *    defeat it (pass a `retryIf` that accepts it to wait out its `retryAfterMs` instead);
 *  - `ChannelClosedError`: a closed channel stays closed;
 *  - programming errors: `ReferenceError`, `SyntaxError`, `RangeError`, and `TypeError`,
 *    except a `TypeError` that has a `cause`, which is how Node's `fetch` reports a network
 *    failure (`TypeError: fetch failed`, cause `ECONNRESET`...), and that is retried.
 * Timeouts and aborts from other signals (e.g. a per-attempt `AbortSignal.timeout`), `BusyError`,
 * `DroppedError`, non-Error values: all retried. (An abort of retry's own signal never gets
 * here: it ends the call at once.)
 *
 * @example
 * retry(fn, { retryIf: (e, n) => defaultRetryIf(e, n) && !(e instanceof NotFoundError) });
 */
export function defaultRetryIf(error: unknown, _attempt?: number): boolean {
  if (error instanceof BreakerOpenError || error instanceof ChannelClosedError) return false;
  if (error instanceof TypeError) return error.cause !== undefined;
  return !(error instanceof RangeError || error instanceof ReferenceError || error instanceof SyntaxError);
}

const JITTERS: readonly string[] = ["full", "equal", "none"];

interface Plan {
  attempts: number;
  baseMs: number;
  maxMs: number;
  jitter: Jitter;
  retryIf: (error: unknown, attempt: number) => boolean;
  budget: RetryBudgetLike | undefined;
  clock: Clock;
  random: () => number;
  onRetry: ((event: RetryEvent) => void) | undefined;
}

function plan(options: RetryOptions | undefined): Plan {
  const attempts = checkLimit(given(options?.attempts, 3), "options.attempts", 1);
  const baseMs = checkDuration(given(options?.baseMs, 100), "options.baseMs");
  const maxMs = checkDuration(given(options?.maxMs, 10_000), "options.maxMs");
  if (maxMs < baseMs) {
    throw new RangeError(`options.maxMs (${maxMs}) must be >= options.baseMs (${baseMs})`);
  }
  const jitter = given(options?.jitter, "full");
  if (typeof jitter !== "string") throw new TypeError(`options.jitter must be a string, got ${typeof jitter}`);
  if (!JITTERS.includes(jitter)) {
    throw new RangeError(`options.jitter must be "full", "equal" or "none", got ${JSON.stringify(jitter)}`);
  }
  const retryIf = checkFunction(given(options?.retryIf, defaultRetryIf), "options.retryIf");
  const budget = options?.budget;
  if (budget !== undefined) {
    const b = budget as Partial<RetryBudgetLike> | null;
    if (b === null || typeof b !== "object" || typeof b.deposit !== "function" || typeof b.tryWithdraw !== "function") {
      throw new TypeError("options.budget must be a RetryBudget (or have deposit() and tryWithdraw())");
    }
  }
  const clock = checkClock(options?.clock);
  const random = checkFunction(given(options?.random, Math.random), "options.random");
  const onRetry = options?.onRetry === undefined ? undefined : checkFunction(options.onRetry, "options.onRetry");
  return { attempts, baseMs, maxMs, jitter, retryIf, budget, clock, random, onRetry };
}

/** A usable `retryAfterMs` hint of a sluice overload error, else undefined. */
function hintOf(error: unknown): number | undefined {
  if (!(error instanceof BusyError || error instanceof BreakerOpenError)) return undefined;
  const ms = error.retryAfterMs;
  return typeof ms === "number" && Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

function backoff(p: Plan, k: number): number {
  const cap = Math.min(p.maxMs, p.baseMs * 2 ** Math.min(k, 1000));
  if (p.jitter === "none") return cap;
  const r = p.random();
  if (typeof r !== "number" || !(r >= 0 && r <= 1)) {
    throw new RangeError(`options.random must return a number in [0, 1), got ${String(r)}`);
  }
  return p.jitter === "full" ? r * cap : cap / 2 + (r * cap) / 2;
}

/**
 * Calls `fn(signal, attempt)` (attempt 1, 2, ...) until it succeeds, and resolves with its
 * value. After a failed attempt it waits a backoff and tries again, unless:
 *  - that was attempt number `attempts` (default 3), or
 *  - `retryIf(error, attempt)` says no (default `defaultRetryIf`), or
 *  - the error is a `BusyError` (or `BreakerOpenError`) whose `retryAfterMs` exceeds `maxMs`:
 *    trying earlier than the boundary asked would be refused again, and waiting longer than
 *    `maxMs` would break the bound the caller set, or
 *  - the `budget` refuses the retry.
 * Then it rejects with that attempt's error, unchanged (the same object, not wrapped: its
 * class and fields are intact; the attempt number is what `fn` and `onRetry` were told).
 *
 * Backoff before attempt `k + 2` (k = 0, 1, ...): `cap = min(maxMs, baseMs * 2 ** k)`,
 * randomised by `jitter` (default "full": uniform in `[0, cap)`). When the error carries a
 * `retryAfterMs` hint (`BusyError`, `BreakerOpenError`), the wait is at least the hint.
 *
 * Waits only on the clock and never past its signal: an already-aborted signal rejects with
 * `signal.reason` without calling `fn`; an abort during a backoff clears its timer and rejects
 * at once with `signal.reason`; an abort during an attempt rejects at once too (the attempt
 * sees it on the signal it was given, which is `options.signal`, or a signal that never aborts
 * when there is none; its late outcome is ignored). A synchronous throw from `fn` counts as a
 * failed attempt. Bad options reject with `TypeError`/`RangeError` naming the option, before
 * `fn` is called.
 *
 * Bounded: nothing accumulates across attempts; at most one timer is armed.
 *
 * @example
 * const budget = new RetryBudget();
 * const body = await retry(
 *   async (signal) => (await fetch(url, { signal })).json(),
 *   { attempts: 5, baseMs: 50, maxMs: 2_000, budget, signal: AbortSignal.timeout(10_000) },
 * );
 */
export function retry<T>(
  fn: (signal: AbortSignal, attempt: number) => T | PromiseLike<T>,
  options?: RetryOptions,
): Promise<T> {
  let signal: AbortSignal | undefined;
  let p: Plan;
  try {
    checkOptions(options);
    signal = checkSignal(options?.signal);
    if (signal?.aborted) return Promise.reject(signal.reason);
    checkFunction(fn, "fn");
    p = plan(options);
  } catch (e) {
    return Promise.reject(e);
  }
  return new Promise<T>((resolve, reject) => {
    const call = new RetryCall<T>(fn, p, signal, resolve, reject);
    if (signal !== undefined) watchAbort(signal, call);
    call.attempt(1);
  });
}

/**
 * One call of `retry`: linked to its signal (if any) from start to end, running at most one
 * attempt or one backoff at a time. `done` is set exactly once, when the call settles.
 */
class RetryCall<T> extends Abortable {
  #done = false;
  #timer: unknown = undefined;
  readonly #fnSignal: AbortSignal;

  constructor(
    readonly fn: (signal: AbortSignal, attempt: number) => T | PromiseLike<T>,
    readonly plan: Plan,
    readonly signal: AbortSignal | undefined,
    readonly resolve: (value: T) => void,
    readonly reject: (reason: unknown) => void,
  ) {
    super();
    this.#fnSignal = signal ?? new AbortController().signal;
  }

  /** Starts attempt number `n`; a synchronous throw counts as its rejection. */
  attempt(n: number): void {
    if (this.#done) return;
    let result: PromiseLike<T>;
    try {
      result = Promise.resolve(this.fn(this.#fnSignal, n));
    } catch (e) {
      result = Promise.reject(e);
    }
    if (this.#done) {
      // fn aborted retry's own signal before returning: its outcome is ignored
      Promise.resolve(result).catch(() => {});
      return;
    }
    result.then(
      (value) => this.#succeeded(value),
      (error: unknown) => this.#failed(error, n),
    );
  }

  /** The signal aborted (during an attempt or a backoff): reject now, clear the backoff. */
  onAbort(reason: unknown): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#timer !== undefined) this.plan.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.reject(reason);
  }

  #succeeded(value: T): void {
    if (this.#done) return;
    this.#finish();
    try {
      this.plan.budget?.deposit();
    } catch (e) {
      this.reject(e);
      return;
    }
    this.resolve(value);
  }

  #failed(error: unknown, n: number): void {
    if (this.#done) return;
    let delayMs: number;
    try {
      delayMs = this.#backoffOrGiveUp(error, n);
    } catch (e) {
      this.#finish();
      this.reject(e);
      return;
    }
    if (delayMs < 0) {
      this.#finish();
      this.reject(error);
      return;
    }
    this.#timer = this.plan.clock.setTimeout(() => {
      this.#timer = undefined;
      this.attempt(n + 1);
    }, delayMs);
  }

  /** The backoff before attempt `n + 1`, or -1 to give up. Throws what a user callback threw. */
  #backoffOrGiveUp(error: unknown, n: number): number {
    const p = this.plan;
    if (n >= p.attempts || !p.retryIf(error, n)) return -1;
    let delayMs = backoff(p, n - 1);
    const hint = hintOf(error);
    if (hint !== undefined) {
      if (hint > p.maxMs) return -1;
      delayMs = Math.max(delayMs, hint);
    }
    if (p.budget !== undefined && !p.budget.tryWithdraw()) return -1;
    p.onRetry?.({ error, attempt: n, delayMs });
    return delayMs;
  }

  #finish(): void {
    this.#done = true;
    unwatchAbort(this);
  }
}
