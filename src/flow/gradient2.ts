/**
 * Gradient2: the latency-based algorithm of an `AdaptiveLimit` (`algorithm: "gradient2"`),
 * meant for the server side (or any pool whose work slows down when overloaded), after Netflix
 * concurrency-limits' Gradient2Limit run behind its WindowedLimit.
 *
 * Successes are gathered in windows; a window closes at the first success that finds it at
 * least `windowMs` old and holding at least `windowSamples` successes. Each closed window is one
 * update: its mean RTT is the short RTT; the long RTT is an exponential moving average of the
 * short ones over about `longWindow` windows (a plain mean over the first ten while it warms
 * up). While the short RTT stays within `tolerance` times the long one there is no queueing and
 * the limit grows by up to `queueSize` per window (smoothed); above it, the gradient
 * `tolerance * long / short`, kept within [0.5, 1], shrinks it.
 *
 * Invariants:
 *  - The estimate is a finite number in `[minLimit, maxLimit]` at every step; the limit the
 *    enforcer sees is its floor.
 *  - An update moves the estimate to
 *    `estimate * (1 - smoothing) + (estimate * gradient + queueSize) * smoothing`, except that it
 *    never grows while app-limited: when the most units in flight during the window (counted at
 *    each unit's start, itself included) were fewer than half the estimate.
 *  - When the long RTT exceeds twice the short one (latency fell back after a long overload) the
 *    long RTT decays by 5% per update, so the limit can grow again without waiting for the
 *    average to forget the overload.
 *  - A drop is not windowed and does not touch the RTTs (a rejection's or a timeout's duration
 *    is not a latency). If its unit started after the last back-off, it moves the estimate at
 *    once as a gradient of 0.5 without queue allowance would: `estimate * (1 - smoothing / 2)`,
 *    strictly lower unless already at `minLimit`; drops of units already in flight at the last
 *    back-off belong to the same overload and change nothing.
 *  - `queueSize(limit)` is called before an update changes anything; if it throws or returns
 *    something other than a finite number >= 0, that window is discarded and nothing else
 *    changes.
 */
import type { LimitAlgorithm } from "./adaptive-limit.js";
import { checkDuration, checkInteger, checkNumber } from "../core/validate.js";

/** Options of the Gradient2 algorithm (beside the common ones of `AdaptiveLimitOptions`). */
export interface Gradient2Options {
  /**
   * How much the short RTT may exceed the long one before the limit shrinks: a finite number
   * >= 1. Default 1.5 (a 50% rise in latency is tolerated).
   */
  tolerance?: number;
  /** How much of each new estimate is taken: a number in (0, 1]. Default 0.2. */
  smoothing?: number;
  /** The long RTT averages over about this many windows: a positive safe integer. Default 600. */
  longWindow?: number;
  /**
   * How much the limit may grow per window while latency is flat (before smoothing): a finite
   * number >= 0, or a function of the current limit returning one. Default 4. Latency alone
   * cannot push the limit below about `2 * queueSize`; for small limits use a function such as
   * `(limit) => Math.max(1, Math.sqrt(limit))`.
   */
  queueSize?: number | ((limit: number) => number);
  /**
   * The shortest window, in milliseconds: a finite number >= 0. Default 1000 (as Netflix's
   * WindowedLimit). With `windowMs: 0, windowSamples: 1` every success is an update, as Netflix's
   * bare Gradient2Limit: fast to react, but it overshoots under steady saturation and its long
   * RTT then remembers only the last `longWindow` calls.
   */
  windowMs?: number;
  /** The fewest successes in a window: a positive safe integer. Default 10. */
  windowSamples?: number;
}

const WARMUP = 10;
const DRIFT_RATIO = 2;
const DRIFT_DECAY = 0.95;

/** @internal The Gradient2 update rule. */
export class Gradient2 implements LimitAlgorithm {
  #estimate: number;
  readonly #min: number;
  readonly #max: number;
  readonly #tolerance: number;
  readonly #smoothing: number;
  readonly #factor: number;
  readonly #warmup: number;
  readonly #queueSize: (limit: number) => number;
  readonly #windowMs: number;
  readonly #windowSamples: number;
  #long = 0;
  #updates = 0;
  #short: number | undefined;
  // The open window: when its first success ended, the sum and count of its RTTs, the most in flight.
  #winStart = 0;
  #winSum = 0;
  #winCount = 0;
  #winInflight = 0;

  constructor(initial: number, min: number, max: number, options: Gradient2Options) {
    this.#tolerance = checkTolerance(options.tolerance);
    this.#smoothing = checkSmoothing(options.smoothing);
    const longWindow = options.longWindow === undefined ? 600 : checkInteger(options.longWindow, "options.longWindow", 1);
    this.#factor = 2 / (longWindow + 1);
    this.#warmup = Math.min(WARMUP, longWindow);
    this.#queueSize = checkQueueSize(options.queueSize);
    this.#windowMs = options.windowMs === undefined ? 1000 : checkDuration(options.windowMs, "options.windowMs");
    this.#windowSamples = options.windowSamples === undefined
      ? 10
      : checkInteger(options.windowSamples, "options.windowSamples", 1);
    this.#estimate = initial;
    this.#min = min;
    this.#max = max;
  }

  get estimate(): number {
    return this.#estimate;
  }

  get slow(): number {
    return 0;
  }

  get shortRttMs(): number | undefined {
    return this.#short;
  }

  get longRttMs(): number | undefined {
    return this.#updates === 0 ? undefined : this.#long;
  }

  success(rttMs: number, inflight: number, _fresh: boolean, now: number): boolean {
    if (this.#winCount === 0) this.#winStart = now;
    this.#winSum += rttMs;
    this.#winCount++;
    if (inflight > this.#winInflight) this.#winInflight = inflight;
    if (this.#winCount < this.#windowSamples || now - this.#winStart < this.#windowMs) return false;
    const short = this.#winSum / this.#winCount;
    const most = this.#winInflight;
    this.#winSum = this.#winCount = this.#winInflight = 0;
    this.#update(short, most);
    return false;
  }

  drop(_rttMs: number, _inflight: number, fresh: boolean): boolean {
    if (!fresh) return false;
    this.#estimate = Math.max(this.#min, this.#estimate * (1 - this.#smoothing / 2));
    return true;
  }

  /** One update from a closed window: its mean RTT, and the most units in flight during it. */
  #update(short: number, inflight: number): void {
    const queue = this.#queueSize(Math.floor(this.#estimate));
    if (typeof queue !== "number" || !Number.isFinite(queue) || queue < 0) {
      throw new RangeError(`options.queueSize(limit) must return a finite number >= 0, got ${String(queue)}`);
    }
    this.#short = short;
    const long = this.#addLong(short);
    if (long > DRIFT_RATIO * short) this.#long *= DRIFT_DECAY;

    const gradient = short > 0 ? Math.max(0.5, Math.min(1, (this.#tolerance * long) / short)) : 1;
    const s = this.#smoothing;
    let next = this.#estimate * (1 - s) + (this.#estimate * gradient + queue) * s;
    if (inflight < this.#estimate / 2) next = Math.min(next, this.#estimate); // app-limited
    this.#estimate = Math.max(this.#min, Math.min(this.#max, next));
  }

  /** Adds a short RTT to the long one and returns it (before any drift correction). */
  #addLong(rtt: number): number {
    this.#updates++;
    const weight = this.#updates <= this.#warmup ? 1 / this.#updates : this.#factor;
    this.#long += (rtt - this.#long) * weight;
    return this.#long;
  }
}

function checkTolerance(value: unknown): number {
  if (value === undefined) return 1.5;
  const t = checkNumber(value, "options.tolerance");
  if (!(t >= 1 && Number.isFinite(t))) {
    throw new RangeError(`options.tolerance must be a finite number >= 1, got ${String(t)}`);
  }
  return t;
}

function checkSmoothing(value: unknown): number {
  if (value === undefined) return 0.2;
  const s = checkNumber(value, "options.smoothing");
  if (!(s > 0 && s <= 1)) {
    throw new RangeError(`options.smoothing must be a number in (0, 1], got ${String(s)}`);
  }
  return s;
}

function checkQueueSize(value: unknown): (limit: number) => number {
  if (value === undefined) return () => 4;
  if (typeof value === "function") return value as (limit: number) => number;
  if (typeof value !== "number") {
    throw new TypeError(`options.queueSize must be a number or a function of the limit, got ${typeof value}`);
  }
  if (!(value >= 0 && Number.isFinite(value))) {
    throw new RangeError(`options.queueSize must be a finite number >= 0, got ${String(value)}`);
  }
  return () => value;
}
