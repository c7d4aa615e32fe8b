/**
 * AdaptiveLimit: a concurrency limit that learns from the work it admits (latency, drops) and
 * moves at run time: AIMD for the client side of a dependency, Gradient2 for the server side.
 * A `Pool` (and later HTTP admission control) follows it through the `ConcurrencyLimit`
 * contract: it reads `limit` before starting work, calls `start()` as each unit starts and one
 * method of the returned sample as the unit ends.
 *
 * Invariants:
 *  - `minLimit <= limit <= maxLimit`, and `limit` is the floor of the algorithm's estimate (less
 *    a 1e-9 allowance for float noise): a positive safe integer, always.
 *  - `started === successes + drops + ignored + inflight`; a sample ends exactly once (its first
 *    call counts, later calls do nothing), so `inflight >= 0`.
 *  - `limit` changes only while a sample ends with `success()` or `dropped()`, at most once per
 *    sample; never in `start()` or `ignore()`. A back-off happens only for a unit numbered after
 *    `backoffSeq` (the `started` count at the previous back-off). `inflight` may exceed `limit` after a decrease:
 *    the limit never cancels work, the enforcer just starts less.
 *  - Listeners run after the state is consistent, synchronously, in subscription order, once per
 *    change. A change made by a listener (it ended a sample) is not nested: the round in progress
 *    finishes, then listeners run again with the newest limit. A listener that throws is
 *    skipped, and reported once by a `SluiceWarning` (`SLUICE_CALLBACK_ERROR`); the limit and
 *    the other listeners are unaffected.
 *  - Time is read through `options.clock` only at `start()` and when a sample ends. When that
 *    clock is the real one (`systemClock`), `performance.now()` measures the RTT instead of
 *    `Date.now()`, for sub-millisecond resolution.
 */
import type { ConcurrencyLimit, LimitSample } from "./concurrency-limit.js";
import { Aimd, type AimdOptions } from "./aimd.js";
import { Gradient2, type Gradient2Options } from "./gradient2.js";
import { checkClock, systemClock, type Clock } from "../core/clock.js";
import { checkFunction, checkInteger, checkName, checkOptions, given } from "../core/validate.js";
import { observe } from "../core/registry.js";
import { limitChangeChannel, type LimitChangeEvent } from "../core/events.js";

/** Options common to both algorithms. */
export interface AdaptiveLimitCommonOptions {
  /** The limit before any sample: a positive safe integer in [minLimit, maxLimit]. Default 20 (brought within the bounds). */
  initialLimit?: number;
  /** The limit never goes below this: a positive safe integer. Default 1. */
  minLimit?: number;
  /** The limit never goes above this: a positive safe integer. Default 200 (or more, to fit minLimit and initialLimit). */
  maxLimit?: number;
  /** Where RTTs are read (default: the default clock, which `sluice/testing`'s `useClock` replaces). */
  clock?: Clock;
  /** Shown in stats and warnings. */
  name?: string;
}

/** Options of an AIMD limit (client side). */
export interface AimdLimitOptions extends AdaptiveLimitCommonOptions, AimdOptions {
  algorithm: "aimd";
}

/** Options of a Gradient2 limit (server side); the default algorithm. */
export interface Gradient2LimitOptions extends AdaptiveLimitCommonOptions, Gradient2Options {
  algorithm?: "gradient2";
}

/** Options of `new AdaptiveLimit(options)`. */
export type AdaptiveLimitOptions = AimdLimitOptions | Gradient2LimitOptions;

/** Counters of one adaptive limit: a fresh snapshot, for a metrics registry. */
export interface AdaptiveLimitStats {
  readonly name: string | undefined;
  readonly algorithm: "aimd" | "gradient2";
  /** The current limit. */
  readonly limit: number;
  readonly minLimit: number;
  readonly maxLimit: number;
  /** Units started and not yet ended. */
  readonly inflight: number;
  /** The most units ever in flight at once. */
  readonly peakInflight: number;
  /** Units started (`started === successes + drops + ignored + inflight`). */
  readonly started: number;
  /** Samples the algorithm learned from: `successes + drops`. */
  readonly samples: number;
  /** Units that ended with `success()`. */
  readonly successes: number;
  /** Units that ended with `dropped()`. */
  readonly drops: number;
  /** Units that ended with `ignore()`. */
  readonly ignored: number;
  /** AIMD: successes slower than `latencyTargetMs`, which backed off as drops do (0 for Gradient2). */
  readonly slow: number;
  /** Samples that raised the limit. */
  readonly increases: number;
  /** Samples that lowered the limit. */
  readonly decreases: number;
  /** The RTT of the latest success in milliseconds; undefined before any. */
  readonly lastRttMs: number | undefined;
  /** Gradient2: the short RTT (mean of the last window) in milliseconds; undefined before the first window closed, and for AIMD. */
  readonly shortRttMs: number | undefined;
  /** Gradient2: the long (average) RTT in milliseconds; undefined before the first window closed, and for AIMD. */
  readonly longRttMs: number | undefined;
}

/** @internal What an algorithm offers `AdaptiveLimit`. */
export interface LimitAlgorithm {
  /** Within [minLimit, maxLimit]; the limit is its floor. */
  readonly estimate: number;
  readonly slow: number;
  readonly shortRttMs: number | undefined;
  readonly longRttMs: number | undefined;
  /**
   * A unit succeeded after `rttMs`; `inflight` were in flight when it started, itself included;
   * `fresh`: it started after the last back-off. Returns whether it backed off.
   */
  success(rttMs: number, inflight: number, fresh: boolean, now: number): boolean;
  /** A unit was dropped, timed out or refused. Returns whether it backed off. */
  drop(rttMs: number, inflight: number, fresh: boolean): boolean;
}

/** How a sample ended. */
type Outcome = 0 | 1 | 2;
const SUCCESS = 0;
const DROPPED = 1;
const IGNORED = 2;

interface Subscription {
  readonly fn: (limit: number) => void;
  active: boolean;
  warned: boolean;
}

const ALGORITHM_OPTIONS = {
  aimd: ["backoffRatio", "latencyTargetMs"],
  gradient2: ["tolerance", "smoothing", "longWindow", "queueSize", "windowMs", "windowSamples"],
} as const;

let endSample: (owner: AdaptiveLimit, sample: Sample, outcome: Outcome) => void;

/** One unit of work in flight; the first of its three methods to be called counts. */
class Sample implements LimitSample {
  #owner: AdaptiveLimit | null;
  constructor(
    owner: AdaptiveLimit,
    readonly startedAt: number,
    readonly inflight: number,
    readonly seq: number,
  ) {
    this.#owner = owner;
  }

  success(): void {
    this.#end(SUCCESS);
  }

  dropped(): void {
    this.#end(DROPPED);
  }

  ignore(): void {
    this.#end(IGNORED);
  }

  #end(outcome: Outcome): void {
    const owner = this.#owner;
    if (owner === null) return;
    this.#owner = null;
    endSample(owner, this, outcome);
  }
}

/** Warn once when a limit has more listeners than this (a subscribe-per-call leak). */
const WARN_SUBSCRIBERS = 100;

/**
 * A concurrency limit that adapts to the work it admits. Give it to a `Pool` as its
 * `concurrency` (the pool then starts at most `limit` tasks at once and reports each one's end),
 * or drive it by hand: read `limit`, call `start()` when a unit starts, and exactly one of
 * `success()`, `dropped()` or `ignore()` on the sample when it ends.
 *
 * - `"aimd"` (client side): +1 per success under `latencyTargetMs` (default none) by a unit that
 *   started with at least half the limit in flight (itself included); times `backoffRatio`
 *   (0.9, floored) on a drop, a timeout or a `BusyError`, or a success over the latency target.
 * - `"gradient2"` (server side, the default): once per window (1 s and 10 successes by default)
 *   compares the window's mean RTT with a long-run average; shrinks when it rises above
 *   `tolerance` (1.5) times that average, grows by `queueSize` (4, smoothed by 0.2) while it
 *   does not, and never grows while app-limited. A drop shrinks it by 10% at once.
 *
 * Either way, a drop (or an AIMD success over target) backs off once per overload: the ones of
 * units already in flight at the last back-off change nothing, so a burst of timeouts from one
 * spike does not collapse the limit to `minLimit`.
 *
 * Nothing here blocks or waits: every method is synchronous and O(1) (listeners aside). Bounded:
 * the limit stays within [minLimit, maxLimit]; each sample changes it at most once, so listeners
 * run at most once per sample; the state is a few numbers whatever the traffic.
 *
 * @example
 * const limit = new AdaptiveLimit({ algorithm: "gradient2", minLimit: 4, maxLimit: 200 });
 * const pool = new Pool({ concurrency: limit, queue: 1000 });
 * limit.subscribe((n) => gauge.set(n));
 *
 * @example
 * // By hand, around calls to a dependency:
 * const aimd = new AdaptiveLimit({ algorithm: "aimd", latencyTargetMs: 250 });
 * if (aimd.inflight < aimd.limit) {
 *   const sample = aimd.start();
 *   try { await callUpstream(); sample.success(); }
 *   catch (e) { if (e instanceof BusyError) sample.dropped(); else sample.ignore(); throw e; }
 * }
 */
export class AdaptiveLimit implements ConcurrencyLimit {
  readonly #algorithm: LimitAlgorithm;
  readonly #kind: "aimd" | "gradient2";
  readonly #min: number;
  readonly #max: number;
  readonly #now: () => number;
  readonly #name: string | undefined;
  readonly #subs = new Set<Subscription>();
  #warnedSubs = false;
  #limit: number;
  #inflight = 0;
  #peakInflight = 0;
  #started = 0;
  #successes = 0;
  #drops = 0;
  #ignored = 0;
  #increases = 0;
  #decreases = 0;
  #lastRtt: number | undefined;
  /** `started` at the last back-off: samples numbered up to it were in flight then. */
  #backoffSeq = 0;
  #notifying = false;
  #renotify = false;
  #callbackWarned = false;

  static {
    endSample = (owner, sample, outcome) => owner.#end(sample, outcome);
  }

  /**
   * Throws `TypeError` or `RangeError` (naming the option) for a bad option, an option of the
   * other algorithm, or `minLimit <= initialLimit <= maxLimit` not holding.
   */
  constructor(options: AdaptiveLimitOptions = {}) {
    checkOptions(options);
    const kind = given(options.algorithm, "gradient2");
    if (kind !== "aimd" && kind !== "gradient2") {
      throw new TypeError(`options.algorithm must be "aimd" or "gradient2", got ${JSON.stringify(kind)}`);
    }
    const other = kind === "aimd" ? "gradient2" : "aimd";
    for (const key of ALGORITHM_OPTIONS[other]) {
      if ((options as Record<string, unknown>)[key] !== undefined) {
        throw new TypeError(`options.${key} applies only to algorithm "${other}", not "${kind}"`);
      }
    }
    const o = options as AdaptiveLimitCommonOptions;
    const min = o.minLimit === undefined ? 1 : checkInteger(o.minLimit, "options.minLimit", 1);
    const initialGiven = o.initialLimit === undefined ? undefined : checkInteger(o.initialLimit, "options.initialLimit", 1);
    const max = o.maxLimit === undefined
      ? Math.max(200, min, initialGiven ?? 0)
      : checkInteger(o.maxLimit, "options.maxLimit", 1);
    if (min > max) {
      throw new RangeError(`options.minLimit (${min}) must be <= options.maxLimit (${max})`);
    }
    const initial = initialGiven ?? Math.min(max, Math.max(min, 20));
    if (initial < min || initial > max) {
      throw new RangeError(
        `options.initialLimit (${initial}) must be within [options.minLimit, options.maxLimit] = [${min}, ${max}]`,
      );
    }
    const clock = checkClock(o.clock);
    this.#name = checkName(o.name);
    this.#algorithm = kind === "aimd"
      ? new Aimd(initial, min, max, options as AimdOptions)
      : new Gradient2(initial, min, max, options as Gradient2Options);
    this.#kind = kind;
    this.#min = min;
    this.#max = max;
    this.#limit = initial;
    this.#now = clock === systemClock ? () => performance.now() : () => clock.now();
    observe("adaptive-limit", this, this.#name !== undefined);
  }

  /** The name given in the options (undefined without one). */
  get name(): string | undefined {
    return this.#name;
  }

  /** The current limit: a positive safe integer within [minLimit, maxLimit]. */
  get limit(): number {
    return this.#limit;
  }

  /** Units started and not yet ended (may exceed `limit` right after it shrank). */
  get inflight(): number {
    return this.#inflight;
  }

  /** A fresh snapshot of the counters. */
  get stats(): AdaptiveLimitStats {
    return {
      name: this.#name,
      algorithm: this.#kind,
      limit: this.#limit,
      minLimit: this.#min,
      maxLimit: this.#max,
      inflight: this.#inflight,
      peakInflight: this.#peakInflight,
      started: this.#started,
      samples: this.#successes + this.#drops,
      successes: this.#successes,
      drops: this.#drops,
      ignored: this.#ignored,
      slow: this.#algorithm.slow,
      increases: this.#increases,
      decreases: this.#decreases,
      lastRttMs: this.#lastRtt,
      shortRttMs: this.#algorithm.shortRttMs,
      longRttMs: this.#algorithm.longRttMs,
    };
  }

  /**
   * Records that a unit of work starts now and returns its sample; call exactly one of
   * `success()`, `dropped()` or `ignore()` on it when the unit ends (later calls do nothing).
   * Never refuses and never waits: keeping `inflight <= limit` is the enforcer's job. A sample
   * that is never ended stays counted in `inflight`.
   *
   * @example
   * const sample = limit.start();
   * try { await work(); sample.success(); } catch { sample.dropped(); }
   */
  start(): LimitSample {
    const inflight = ++this.#inflight;
    this.#started++;
    if (inflight > this.#peakInflight) this.#peakInflight = inflight;
    return new Sample(this, this.#now(), inflight, this.#started);
  }

  /**
   * Calls `listener(limit)` synchronously after every change of `limit`, until the returned
   * function is called (calling it again does nothing). Subscribing the same function twice
   * makes two subscriptions. A listener that throws is reported once (a `SluiceWarning`) and does
   * not affect the limit or the other listeners.
   *
   * @example
   * const unsubscribe = limit.subscribe((n) => console.log("limit", n));
   */
  subscribe(listener: (limit: number) => void): () => void {
    checkFunction(listener, "listener");
    const sub: Subscription = { fn: listener, active: true, warned: false };
    this.#subs.add(sub);
    if (this.#subs.size > WARN_SUBSCRIBERS && !this.#warnedSubs) {
      // Nothing bounds the listeners but the callers: one subscribe per request is a leak.
      this.#warnedSubs = true;
      process.emitWarning(
        `${this.#subs.size} listeners subscribed to adaptive limit${this.#name === undefined ? "" : ` ${JSON.stringify(this.#name)}`} ` +
          `(threshold ${WARN_SUBSCRIBERS}): a subscribe without its unsubscribe leaks`,
        { type: "SluiceWarning", code: "SLUICE_LIMIT_LISTENERS" },
      );
    }
    return () => {
      sub.active = false;
      this.#subs.delete(sub);
    };
  }

  #end(sample: Sample, outcome: Outcome): void {
    this.#inflight--;
    if (outcome === IGNORED) {
      this.#ignored++;
      return;
    }
    const now = this.#now();
    const rtt = Math.max(0, now - sample.startedAt);
    if (outcome === SUCCESS) {
      this.#successes++;
      this.#lastRtt = rtt;
    } else {
      this.#drops++;
    }
    const fresh = sample.seq > this.#backoffSeq;
    try {
      const backedOff = outcome === SUCCESS
        ? this.#algorithm.success(rtt, sample.inflight, fresh, now)
        : this.#algorithm.drop(rtt, sample.inflight, fresh);
      if (backedOff) this.#backoffSeq = this.#started;
    } catch (e) {
      if (!this.#callbackWarned) {
        this.#callbackWarned = true;
        this.#warn("options.queueSize", e);
      }
      return;
    }
    // The epsilon keeps float noise (23.999999999999996 for 24) from costing a whole unit.
    const next = Math.min(this.#max, Math.floor(this.#algorithm.estimate + 1e-9));
    if (next === this.#limit) return;
    if (next > this.#limit) this.#increases++;
    else this.#decreases++;
    const from = this.#limit;
    this.#limit = next;
    if (limitChangeChannel.hasSubscribers) {
      const e: LimitChangeEvent = { kind: "adaptive-limit", name: this.#name, boundary: this, from, to: next };
      limitChangeChannel.publish(e);
    }
    this.#notify();
  }

  #notify(): void {
    if (this.#subs.size === 0) return;
    if (this.#notifying) {
      this.#renotify = true;
      return;
    }
    this.#notifying = true;
    try {
      let told: number;
      do {
        this.#renotify = false;
        told = this.#limit;
        for (const sub of [...this.#subs]) {
          if (!sub.active) continue;
          try {
            sub.fn(told);
          } catch (e) {
            if (!sub.warned) {
              sub.warned = true;
              this.#warn("a listener", e);
            }
          }
        }
      } while (this.#renotify && this.#limit !== told);
    } finally {
      this.#notifying = false;
      this.#renotify = false;
    }
  }

  #warn(what: string, error: unknown): void {
    const name = this.#name === undefined ? "" : ` "${this.#name}"`;
    const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
    process.emitWarning(
      `${what} of AdaptiveLimit${name} threw; the limit ignored it and carries on (reported once): ${detail}`,
      { type: "SluiceWarning", code: "SLUICE_CALLBACK_ERROR" },
    );
  }
}
