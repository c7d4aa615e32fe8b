/**
 * AIMD (additive increase, multiplicative decrease): the loss-based algorithm of an
 * `AdaptiveLimit` (`algorithm: "aimd"`), meant for the client side of a dependency, as TCP's
 * congestion window is (and as Netflix concurrency-limits' AIMDLimit).
 *
 * Invariants:
 *  - The estimate is an integer in `[minLimit, maxLimit]` at every step.
 *  - A success under the latency target, started while at least half the limit was in flight
 *    (counting itself), adds exactly 1 (capped at `maxLimit`); any other success changes nothing.
 *  - A drop, or a success slower than the latency target, of a unit that started after the last
 *    back-off sets the estimate to `max(minLimit, floor(estimate * backoffRatio))`: strictly
 *    lower unless already at `minLimit`. One of a unit already in flight at the last back-off
 *    changes nothing: it belongs to the same overload, which was already answered (TCP backs
 *    off once per loss event for the same reason). Without this, the many calls caught in one
 *    latency spike would each multiply the limit by 0.9 and collapse it to `minLimit`.
 */
import type { LimitAlgorithm } from "./adaptive-limit.js";
import { checkNumber } from "../core/validate.js";

/** Options of the AIMD algorithm (beside the common ones of `AdaptiveLimitOptions`). */
export interface AimdOptions {
  /**
   * The limit is multiplied by this on a drop (then floored, never below `minLimit`); a number
   * in (0, 1). Default 0.9.
   */
  backoffRatio?: number;
  /**
   * A success slower than this many milliseconds (from `start()` to `success()`) counts as a
   * drop: the limit backs off. A positive number or `Infinity` (the default: only drops back
   * off; Netflix's AIMDLimit uses 5000).
   */
  latencyTargetMs?: number;
}

/** @internal The AIMD update rule. */
export class Aimd implements LimitAlgorithm {
  #estimate: number;
  readonly #min: number;
  readonly #max: number;
  readonly #ratio: number;
  readonly #targetMs: number;
  #slow = 0;

  constructor(initial: number, min: number, max: number, options: AimdOptions) {
    this.#ratio = checkBackoffRatio(options.backoffRatio);
    this.#targetMs = checkLatencyTarget(options.latencyTargetMs);
    this.#estimate = initial;
    this.#min = min;
    this.#max = max;
  }

  get estimate(): number {
    return this.#estimate;
  }

  get slow(): number {
    return this.#slow;
  }

  get shortRttMs(): undefined {
    return undefined;
  }

  get longRttMs(): undefined {
    return undefined;
  }

  success(rttMs: number, inflight: number, fresh: boolean): boolean {
    if (rttMs > this.#targetMs) {
      this.#slow++;
      return fresh && this.#backOff();
    }
    if (inflight * 2 >= this.#estimate && this.#estimate < this.#max) {
      this.#estimate++;
    }
    return false;
  }

  drop(_rttMs: number, _inflight: number, fresh: boolean): boolean {
    return fresh && this.#backOff();
  }

  #backOff(): boolean {
    this.#estimate = Math.max(this.#min, Math.floor(this.#estimate * this.#ratio));
    return true;
  }
}

function checkBackoffRatio(value: unknown): number {
  if (value === undefined) return 0.9;
  const r = checkNumber(value, "options.backoffRatio");
  if (!(r > 0 && r < 1)) {
    throw new RangeError(`options.backoffRatio must be a number in (0, 1), got ${String(r)}`);
  }
  return r;
}

function checkLatencyTarget(value: unknown): number {
  if (value === undefined) return Infinity;
  const t = checkNumber(value, "options.latencyTargetMs");
  if (!(t > 0)) {
    throw new RangeError(`options.latencyTargetMs must be a number of milliseconds > 0 or Infinity, got ${String(t)}`);
  }
  return t;
}
