/**
 * RateLimiter: a token bucket with the semantics of Go's golang.org/x/time/rate.
 *
 * The bucket holds up to `burst` tokens and refills at `rate` tokens per second. A call takes
 * `n` tokens: `allow` only if they are there now, `reserve` and `wait` by borrowing against the
 * refill and being told (or made to wait) how long the refill needs to pay the debt back.
 *
 * Invariants (of `TokenBucket`, driven by `BucketEngine` with the engine's `rate` and `burst`):
 *  - The bucket stores `tokens` as of clock time `last`. At a later time `t` it holds
 *    `min(burst, tokens + (t - last) * rate / 1000)`: no timer refills it; the level is
 *    computed from two clock readings when needed. Floating point: each grant re-bases
 *    (`tokens`, `last`), adding at most an ulp of a token of rounding, and a delay too small
 *    for the clock to resolve is reported as 0 while its tiny debt stays in the bucket, so
 *    errors do not build up into drift over millions of calls (tested).
 *  - `tokens <= burst` always. `tokens < 0` is a debt: reservations taken ahead of the refill.
 *    A reservation of `n` at `now` subtracts `n` (after bringing the level to `now`) and is
 *    ready at `now + delay`, `delay` being the time the refill needs to bring the level back to
 *    0. So, at a fixed rate, ready times never go backwards, and `lastEvent` is the latest one.
 *  - A refused call (`allow` false, `reserve` not ok, a rejected `wait`) changes nothing.
 *  - Cancelling a reservation gives back its tokens minus those that later reservations were
 *    granted on the strength of them (Go's `CancelAt`): never more than it took, at most once,
 *    and nothing once its ready time has passed.
 *  - Each parked `wait` holds one reservation and exactly one armed clock timer (`systemClock`
 *    arms delays past Node's 2^31-1 ms limit in chunks itself). It leaves the
 *    wait queue exactly once: its timer fires (resolves), or its signal aborts (timer cleared,
 *    reservation cancelled, rejects with the reason).
 *  - `rate === Infinity`: nothing is taken and the bucket counts as full; `rate === 0`: no
 *    refill, only what is in the bucket.
 *  - A clock that goes backwards (a wall clock stepped back) counts as no time elapsed, and the
 *    next grant re-bases the bucket on the earlier reading, as Go does: the limiter neither
 *    stalls until the clock catches up nor mints tokens for the lost interval.
 */
import { BusyError } from "../core/errors.js";
import { Waiter, WaitQueue } from "../core/waitq.js";
import { unwatchAbort, watchAbort } from "../core/abort.js";
import { checkClock, type Clock } from "../core/clock.js";
import { checkInteger, checkLimit, checkName, checkNumber, checkOptions, given, signalOf } from "../core/validate.js";
import type { Boundary } from "../core/diagnostics.js";
import { observe } from "../core/registry.js";
import { publishReject, rejectChannel } from "../core/events.js";

/** A delay shorter than a nanosecond counts as none (Go measures delays in whole nanoseconds). */
const SUB_NS_MS = 1e-6;
/** So does one the clock cannot resolve: a few ulps of `now` (0.0015 ms at Date.now() scale). */
const CLOCK_ULPS = 2 ** -50;

/**
 * Options of `new RateLimiter(options)`.
 *
 * @example
 * new RateLimiter({ rate: 100, burst: 20, name: "github-api", maxWaiters: 1000 });
 */
export interface RateLimiterOptions {
  /** Tokens added per second, `>= 0`: 0 means only the initial burst; `Infinity` means unlimited (burst ignored). */
  rate: number;
  /** Bucket size: the most tokens one call can take, and the most that can be taken at once. A non-negative safe integer. */
  burst: number;
  /** Where time is read and timers are armed (default: the default clock, see `sluice/testing`). */
  clock?: Clock;
  /** Used in errors, warnings and the exit-time report. */
  name?: string;
  /** At most this many `wait` calls may wait at once (default Infinity); past it, `wait` rejects with `BusyError`. */
  maxWaiters?: number;
  /** Warn once (`SLUICE_PARKED_WAITERS`) when more than this many wait (default 1000 when `maxWaiters` is not set). */
  warnWaiters?: number;
}

/**
 * Options of `reserve`.
 *
 * @example
 * limiter.reserve(1, { maxDelayMs: 500 }); // not ok if the token is more than 500 ms away
 */
export interface ReserveOptions {
  /** Refuse (not ok, nothing taken) when the tokens would be ready only after this many ms (default Infinity). */
  maxDelayMs?: number;
}

/**
 * Options of `wait`.
 *
 * @example
 * await limiter.wait(1, { signal: AbortSignal.timeout(5000), maxDelayMs: 1000 });
 */
export interface RateWaitOptions {
  /** Aborting it cancels the reservation (giving back what it can) and rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** Reject at once with `BusyError` (nothing taken) when the wait would be longer than this (default Infinity). */
  maxDelayMs?: number;
}

/**
 * Tokens taken ahead of time by `reserve`: act after `delayMs`, or `cancel()`.
 *
 * When not `ok`, nothing was taken, `cancel()` does nothing, and `delayMs` is the delay the
 * request would have needed (`Infinity` when it can never be granted: `n > burst`, or rate 0
 * with too few tokens left), which is what to send as a retry hint.
 *
 * @example
 * const r = limiter.reserve();
 * if (!r.ok) return reply429(r.delayMs);
 * const t = setTimeout(doIt, r.delayMs);
 * onClientGone(() => { clearTimeout(t); r.cancel(); });
 */
export interface Reservation {
  /** Whether the tokens were reserved. */
  readonly ok: boolean;
  /** Milliseconds from the `reserve` call until the tokens are yours (0: now). */
  readonly delayMs: number;
  /**
   * Gives the tokens back, minus those that reservations made after this one were already
   * granted against (Go's `Reservation.Cancel`). Does nothing once the reservation's time has
   * come, when not ok, and on any call after the first. Returns the tokens given back.
   */
  cancel(): number;
}

/**
 * Counters of one limiter: a fresh snapshot, cheap to take, always on.
 *
 * @example
 * const { allowed, refused, waiting } = limiter.stats;
 */
export interface RateLimiterStats {
  readonly rate: number;
  readonly burst: number;
  /** Tokens in the bucket now (negative while reservations are outstanding; `burst` when the rate is Infinity). */
  readonly tokens: number;
  /** `allow` calls that returned true. */
  readonly allowed: number;
  /** `allow` calls that returned false, plus `reserve` calls that were not ok. */
  readonly refused: number;
  /** `reserve` calls that were ok. */
  readonly reserved: number;
  /** Ok reservations cancelled (first `cancel()` call). */
  readonly cancelled: number;
  /** `wait` calls that resolved (at once or after waiting). */
  readonly passed: number;
  /** `wait` calls that had to wait (including those aborted later). */
  readonly waited: number;
  /** `wait` calls rejected with `BusyError` (nothing taken). */
  readonly rejected: number;
  /** `wait` calls whose signal aborted while they waited (their reservation cancelled). */
  readonly aborted: number;
  /** `wait` calls waiting now. */
  readonly waiting: number;
  /** The most `wait` calls ever waiting at once. */
  readonly peakWaiting: number;
}

/** @internal Checks a rate: a number `>= 0` (tokens per second), `Infinity` allowed. */
export function checkRate(value: unknown, name: string): number {
  checkNumber(value, name);
  const r = value as number;
  if (Number.isNaN(r) || r < 0) {
    throw new RangeError(`${name} must be a number of tokens per second >= 0 (or Infinity), got ${String(r)}`);
  }
  return r;
}

/** @internal `undefined` (Infinity) or a number of ms `>= 0` (`Infinity` allowed). */
export function checkMaxDelay(value: unknown, name = "options.maxDelayMs"): number {
  if (value === undefined) return Infinity;
  checkNumber(value, name);
  const d = value as number;
  if (Number.isNaN(d) || d < 0) {
    throw new RangeError(`${name} must be a number of milliseconds >= 0 (or Infinity), got ${String(d)}`);
  }
  return d;
}

/**
 * Milliseconds the refill needs to produce `deficit` (> 0) tokens; Infinity at rate 0. A delay
 * below a nanosecond, or below what the clock can resolve at `now`, is 0: such a deficit comes
 * from rounding (e.g. `(now + d) - now !== d` in floating point). It stays in the bucket as a
 * debt, so rounding it away moves no grant by more than that and adds no long-run drift.
 */
function msForTokens(deficit: number, rate: number, now: number): number {
  if (rate <= 0) return Infinity;
  const ms = (deficit * 1000) / rate;
  return ms < SUB_NS_MS || ms <= Math.abs(now) * CLOCK_ULPS ? 0 : ms;
}

/**
 * @internal One token bucket's state (see the invariants above). The rate and burst live in
 * the engine, so that a keyed limiter can keep one small bucket per key.
 */
export class TokenBucket {
  /** Level as of `last`; may be negative (a debt of reservations). */
  tokens: number;
  /** Clock time of the last update of `tokens`. */
  last: number;
  /** The latest ready time of a reservation (past or future). */
  lastEvent: number;

  constructor(tokens: number, now: number) {
    this.tokens = tokens;
    this.last = now;
    this.lastEvent = now;
  }

  /** The level at `now` (nothing stored). */
  at(now: number, rate: number, burst: number): number {
    if (rate === Infinity) return burst;
    let t = this.tokens;
    const elapsed = now - this.last;
    if (elapsed > 0 && rate > 0) t += (elapsed * rate) / 1000;
    return t < burst ? t : burst;
  }

  /** Records a grant made at `now`: the level left and when it is ready. */
  take(now: number, left: number, readyAt: number): void {
    this.last = now;
    this.tokens = left;
    this.lastEvent = readyAt;
  }

  /** Brings the stored level to `now` under the given rate and burst (Go's SetLimitAt). */
  settle(now: number, rate: number, burst: number): void {
    this.tokens = this.at(now, rate, burst);
    this.last = now;
  }
}

/** @internal A `wait` parked until its reservation is ready. */
export class BucketWaiter extends Waiter {
  #handle: unknown = undefined;

  constructor(
    readonly engine: BucketEngine,
    readonly bucket: TokenBucket,
    readonly n: number,
    readonly readyAt: number,
    readonly rateThen: number,
    /** Milliseconds until the reservation is ready (the clock arms long delays itself). */
    readonly remaining: number,
    readonly resolve: () => void,
    readonly reject: (e: unknown) => void,
  ) {
    super();
  }

  arm(): void {
    this.#handle = this.engine.clock.setTimeout(this.#fire, this.remaining);
  }

  readonly #fire = (): void => {
    this.#handle = undefined;
    this.engine.waiters.remove(this);
    unwatchAbort(this);
    this.engine.passed++;
    this.resolve();
  };

  onAbort(reason: unknown): void {
    const e = this.engine;
    e.clock.clearTimeout(this.#handle);
    this.#handle = undefined;
    e.waiters.remove(this);
    e.restore(this.bucket, this.n, this.readyAt, this.rateThen);
    e.aborted++;
    this.reject(reason);
  }
}

class BucketReservation implements Reservation {
  #engine: BucketEngine | null;
  readonly #bucket: TokenBucket | null;
  readonly #n: number;
  readonly #readyAt: number;
  readonly #rateThen: number;

  constructor(
    readonly ok: boolean,
    readonly delayMs: number,
    engine: BucketEngine | null,
    bucket: TokenBucket | null,
    n: number,
    readyAt: number,
    rateThen: number,
  ) {
    this.#engine = engine;
    this.#bucket = bucket;
    this.#n = n;
    this.#readyAt = readyAt;
    this.#rateThen = rateThen;
  }

  /** An own property, so that `const { cancel } = limiter.reserve()` works. */
  readonly cancel = (): number => {
    const e = this.#engine;
    if (e === null) return 0;
    this.#engine = null;
    e.cancelled++;
    return this.#bucket === null ? 0 : e.restore(this.#bucket, this.#n, this.#readyAt, this.#rateThen);
  };
}

/**
 * @internal The token-bucket arithmetic and the waiting machinery shared by `RateLimiter` (one
 * bucket) and `KeyedRateLimiter` (one bucket per key): Go's reserveN, CancelAt and WaitN.
 * Arguments are validated by the callers.
 */
export class BucketEngine {
  rate: number;
  burst: number;
  readonly clock: Clock;
  readonly waiters: WaitQueue<BucketWaiter>;
  readonly maxWaiters: number;
  allowed = 0;
  refused = 0;
  reserved = 0;
  cancelled = 0;
  passed = 0;
  rejected = 0;
  aborted = 0;

  constructor(
    readonly owner: Boundary & { readonly name: string | undefined },
    /** The owner's kind in events: "rate-limiter" or "keyed-rate-limiter". */
    readonly kind: string,
    rate: number, burst: number, clock: Clock, maxWaiters: number, warnWaiters: number,
  ) {
    this.rate = rate;
    this.burst = burst;
    this.clock = clock;
    this.maxWaiters = maxWaiters;
    this.waiters = new WaitQueue(owner, "wait", warnWaiters, "SLUICE_PARKED_WAITERS");
  }

  /** Whether taking `n` changes a bucket (so a keyed limiter must keep one for the key). */
  takes(n: number): boolean {
    return n > 0 && n <= this.burst && this.rate !== Infinity;
  }

  tokens(b: TokenBucket): number {
    return b.at(this.clock.now(), this.rate, this.burst);
  }

  allow(b: TokenBucket, n: number): boolean {
    if (this.rate === Infinity) {
      this.allowed++;
      return true;
    }
    if (n > this.burst) {
      this.refused++;
      return false;
    }
    const now = this.clock.now();
    const left = b.at(now, this.rate, this.burst) - n;
    if (left < 0 && msForTokens(-left, this.rate, now) > 0) {
      this.refused++;
      return false;
    }
    b.take(now, left, now);
    this.allowed++;
    return true;
  }

  reserve(b: TokenBucket, n: number, maxDelay: number): Reservation {
    const rate = this.rate;
    if (rate === Infinity) {
      this.reserved++;
      return new BucketReservation(true, 0, this, null, n, 0, rate); // nothing taken, nothing to give back
    }
    if (n > this.burst) {
      this.refused++;
      return new BucketReservation(false, Infinity, null, null, n, 0, rate);
    }
    const now = this.clock.now();
    const left = b.at(now, rate, this.burst) - n;
    const delay = left < 0 ? msForTokens(-left, rate, now) : 0;
    if (delay === Infinity || delay > maxDelay) {
      this.refused++;
      return new BucketReservation(false, delay, null, null, n, 0, rate);
    }
    const readyAt = now + delay;
    b.take(now, left, readyAt);
    this.reserved++;
    return new BucketReservation(true, delay, this, b, n, readyAt, rate);
  }

  /** `n` validated and the signal not aborted. */
  wait(b: TokenBucket, n: number, signal: AbortSignal | undefined, maxDelay: number): Promise<void> {
    const rate = this.rate;
    if (rate === Infinity) {
      this.passed++;
      return Promise.resolve();
    }
    if (n > this.burst) {
      return Promise.reject(new RangeError(`wait(${n}) on ${this.owner.describe()} can never succeed: n > burst`));
    }
    const now = this.clock.now();
    const left = b.at(now, rate, this.burst) - n;
    const delay = left < 0 ? msForTokens(-left, rate, now) : 0;
    if (delay === Infinity) {
      this.rejected++;
      if (rejectChannel.hasSubscribers) publishReject(this.kind, this.owner, "noRate");
      return Promise.reject(new BusyError(
        `wait(${n}) on ${this.owner.describe()} refused: the rate is 0 and only ${Math.max(0, left + n)} tokens are left`));
    }
    if (delay > maxDelay) {
      this.rejected++;
      if (rejectChannel.hasSubscribers) publishReject(this.kind, this.owner, "maxDelay");
      return Promise.reject(new BusyError(
        `wait(${n}) on ${this.owner.describe()} refused: it would wait ${delay} ms, past maxDelayMs ${maxDelay}`,
        { retryAfterMs: delay }));
    }
    if (delay === 0) {
      b.take(now, left, now);
      this.passed++;
      return Promise.resolve();
    }
    if (this.waiters.length >= this.maxWaiters) {
      this.rejected++;
      if (rejectChannel.hasSubscribers) publishReject(this.kind, this.owner, "maxWaiters");
      return Promise.reject(new BusyError(
        `wait(${n}) on ${this.owner.describe()} refused: ${this.maxWaiters} callers already wait`, { retryAfterMs: delay }));
    }
    const readyAt = now + delay;
    b.take(now, left, readyAt);
    return new Promise<void>((resolve, reject) => {
      const w = new BucketWaiter(this, b, n, readyAt, rate, delay, resolve, reject);
      this.waiters.push(w);
      w.arm();
      if (signal !== undefined) watchAbort(signal, w);
    });
  }

  /** Go's CancelAt, at the clock's now; returns the tokens given back. */
  restore(b: TokenBucket, n: number, readyAt: number, rateThen: number): number {
    if (this.rate === Infinity || n === 0) return 0;
    const now = this.clock.now();
    if (readyAt < now) return 0;
    // Tokens granted to reservations made after this one, on the strength of its tokens.
    const later = rateThen > 0 ? ((b.lastEvent - readyAt) * rateThen) / 1000 : 0;
    const give = n - (later > 0 ? later : 0);
    if (give <= 0) return 0;
    const before = b.at(now, this.rate, this.burst);
    let t = before + give;
    if (t > this.burst) t = this.burst;
    b.last = now;
    b.tokens = t;
    if (readyAt === b.lastEvent) {
      const prev = readyAt - (n * 1000) / rateThen;
      if (prev >= now) b.lastEvent = prev;
    }
    return t - before;
  }
}

/** @internal Reads and checks the options shared by both limiters. */
export function readLimiterOptions(options: RateLimiterOptions): {
  rate: number; burst: number; clock: Clock; name: string | undefined; maxWaiters: number; warnWaiters: number;
} {
  if (options === undefined || options === null || typeof options !== "object") {
    throw new TypeError(`options must be an object { rate, burst }, got ${options === null ? "null" : typeof options}`);
  }
  checkOptions(options);
  const rate = checkRate(options.rate, "options.rate");
  const burst = checkInteger(options.burst, "options.burst", 0);
  const clock = checkClock(options.clock);
  const name = checkName(options.name);
  const maxWaiters = checkLimit(given(options.maxWaiters, Infinity), "options.maxWaiters", 0);
  const warnWaiters = checkLimit(given(options.warnWaiters, maxWaiters === Infinity ? 1000 : Infinity), "options.warnWaiters", 0);
  return { rate, burst, clock, name, maxWaiters, warnWaiters };
}

function showRate(rate: number): string {
  return rate === Infinity ? "unlimited" : `${rate}/s`;
}

/** @internal */
export function describeLimiter(kind: string, name: string | undefined, rate: number, burst: number): string {
  return `${kind}${name === undefined ? "" : ` ${JSON.stringify(name)}`} (rate ${showRate(rate)}, burst ${burst})`;
}

/**
 * A token-bucket rate limiter with Go's `x/time/rate` semantics: a bucket of `burst` tokens,
 * full at the start, refilled at `rate` tokens per second. Three ways to take `n` tokens:
 * `allow(n)` (now or not at all: drop or shed the event), `reserve(n)` (take them ahead of the
 * refill and learn how long to wait), and `wait(n, { signal })` (reserve, then wait for them).
 *
 * Bounded: the bucket never holds more than `burst`; a single call never takes more than
 * `burst` (`allow`/`reserve` refuse, `wait` rejects with `RangeError`); how far ahead `wait`
 * may borrow is bounded by `maxDelayMs` (per call) and how many may wait by `maxWaiters`.
 * Reservations and waits are served in the order they were made (each waits for the refill of
 * the debt in front of it). Time is read, and timers armed, only through `clock`.
 *
 * @example
 * const limiter = new RateLimiter({ rate: 10, burst: 5 });   // 10 req/s, bursts of 5
 * await limiter.wait(1, { signal, maxDelayMs: 2000 });        // BusyError if > 2 s away
 * await callUpstream();
 * if (!limiter.allow()) return reply429();                    // or shed at once
 */
export class RateLimiter {
  readonly #e: BucketEngine;
  readonly #b: TokenBucket;
  readonly #name: string | undefined;

  constructor(options: RateLimiterOptions) {
    const o = readLimiterOptions(options);
    this.#name = o.name;
    this.#e = new BucketEngine(this, "rate-limiter", o.rate, o.burst, o.clock, o.maxWaiters, o.warnWaiters);
    this.#b = new TokenBucket(o.burst, o.clock.now());
    observe("rate-limiter", this, o.name !== undefined);
  }

  /** The name given in the options (undefined without one). */
  get name(): string | undefined {
    return this.#name;
  }

  /** Tokens added per second (`Infinity`: unlimited). */
  get rate(): number {
    return this.#e.rate;
  }

  /** The bucket size: the most tokens one call may take. */
  get burst(): number {
    return this.#e.burst;
  }

  /**
   * Tokens in the bucket now: fractional, and negative while reservations taken ahead of the
   * refill are outstanding. `burst` when the rate is Infinity.
   */
  get tokens(): number {
    return this.#e.tokens(this.#b);
  }

  /** `wait` calls waiting now. */
  get waiting(): number {
    return this.#e.waiters.length;
  }

  /** A fresh snapshot of the counters. */
  get stats(): RateLimiterStats {
    const e = this.#e;
    return {
      rate: e.rate,
      burst: e.burst,
      tokens: e.tokens(this.#b),
      allowed: e.allowed,
      refused: e.refused,
      reserved: e.reserved,
      cancelled: e.cancelled,
      passed: e.passed,
      waited: e.waiters.parkedTotal,
      rejected: e.rejected,
      aborted: e.aborted,
      waiting: e.waiters.length,
      peakWaiting: e.waiters.peak,
    };
  }

  /**
   * Takes `n` tokens (default 1) if the bucket holds them now; returns whether it did. Never
   * waits. `false` (nothing taken) when they are not there, always when `n > burst`.
   * `allow(0)` is true unless reservations have put the bucket in debt (as Go's `AllowN`).
   *
   * @throws TypeError / RangeError if `n` is not a non-negative safe integer.
   * @example
   * if (!limiter.allow()) { res.statusCode = 429; return res.end(); }
   */
  allow(n = 1): boolean {
    checkInteger(n, "n", 0);
    return this.#e.allow(this.#b, n);
  }

  /**
   * Takes `n` tokens (default 1) now, ahead of the refill if need be, and says how long until
   * they are yours: act after `delayMs`, or `cancel()` to give back what you can. Never waits.
   * Not ok, nothing taken, when `n > burst`, when the rate is 0 and the bucket is short, or
   * when the delay would exceed `maxDelayMs`. Later calls queue behind this reservation.
   *
   * @throws TypeError / RangeError if `n` or `options.maxDelayMs` is invalid.
   * @example
   * const r = limiter.reserve(1, { maxDelayMs: 1000 });
   * if (!r.ok) return reply429(r.delayMs);
   * setTimeout(send, r.delayMs); // or r.cancel() if you change your mind
   */
  reserve(n = 1, options?: ReserveOptions): Reservation {
    checkInteger(n, "n", 0);
    const maxDelay = checkMaxDelay(checkOptions(options)?.maxDelayMs);
    return this.#e.reserve(this.#b, n, maxDelay);
  }

  /**
   * Waits until `n` tokens (default 1) are yours. The reservation is made at the call, so
   * callers are served in call order; resolves at once (an already-resolved promise) when the
   * bucket holds them. Arms one clock timer while waiting.
   *
   * Rejects: with `signal.reason`, taking nothing, if the signal is already aborted; with
   * `signal.reason` if it aborts while waiting, after cancelling the reservation (its tokens
   * go back to the bucket, less what later callers were granted on them); with `RangeError`
   * if `n > burst` (unless the rate is Infinity) or `n` is invalid; with `BusyError`, taking
   * nothing, if the wait would exceed `maxDelayMs` (`retryAfterMs` is that wait), if the rate
   * is 0 and the bucket is short (no `retryAfterMs`: it would never come), or if
   * `maxWaiters` callers already wait.
   *
   * @example
   * for (const job of jobs) {
   *   await limiter.wait(1, { signal });
   *   await send(job);
   * }
   */
  wait(n = 1, options?: RateWaitOptions): Promise<void> {
    let signal: AbortSignal | undefined;
    let maxDelay: number;
    try {
      signal = signalOf(options);
      if (signal?.aborted) return Promise.reject(signal.reason);
      checkInteger(n, "n", 0);
      maxDelay = checkMaxDelay(options?.maxDelayMs);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#e.wait(this.#b, n, signal, maxDelay);
  }

  /**
   * Changes the rate. The bucket is first brought up to now under the old rate (Go's
   * `SetLimitAt`), so tokens earned so far are kept; reservations already made keep their
   * times (callers already waiting are not sped up or slowed down).
   *
   * @throws TypeError / RangeError if `rate` is not a number `>= 0`.
   * @example
   * limiter.setRate(upstreamSaysSlowDown ? 1 : 10);
   */
  setRate(rate: number): void {
    checkRate(rate, "rate");
    const e = this.#e;
    this.#b.settle(e.clock.now(), e.rate, e.burst);
    e.rate = rate;
  }

  /**
   * Changes the bucket size. The bucket is first brought up to now under the old values (Go's
   * `SetBurstAt`); a smaller burst caps the tokens held; a larger one does not add tokens.
   *
   * @throws TypeError / RangeError if `burst` is not a non-negative safe integer.
   * @example
   * limiter.setBurst(20);
   */
  setBurst(burst: number): void {
    checkInteger(burst, "burst", 0);
    const e = this.#e;
    this.#b.settle(e.clock.now(), e.rate, e.burst);
    e.burst = burst;
    if (this.#b.tokens > burst) this.#b.tokens = burst;
  }

  /** @internal */
  describe(): string {
    return describeLimiter("rate limiter", this.#name, this.#e.rate, this.#e.burst);
  }
}
