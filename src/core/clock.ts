/**
 * The one seam through which sluice reads time and waits on it (DESIGN principle 7). Every
 * timer, ticker, deadline and limiter takes its `now()` and its timers from a `Clock`: the
 * `clock` option where one is offered, otherwise the default clock, which a test can replace
 * with a virtual one (`sluice/testing`) to run time-driven code instantly and deterministically.
 */

/**
 * A source of time: `now()` in milliseconds and one-shot timers. `setTimeout` returns a handle
 * that `clearTimeout` accepts; clearing a fired or cleared handle does nothing.
 *
 * @example
 * const limiter = new RateLimiter({ rate: 10, burst: 1, clock: myVirtualClock });
 */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Node's timers take at most 2^31 - 1 ms (longer ones fire after 1 ms, with a warning). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A timer longer than Node allows, armed in chunks; `unref()` holds for every chunk. */
class LongTimeout {
  handle: ReturnType<typeof setTimeout>;
  #refed = true;
  constructor(
    readonly fn: () => void,
    public remaining: number,
  ) {
    this.handle = this.#arm();
  }
  #arm(): ReturnType<typeof setTimeout> {
    const step = Math.min(this.remaining, MAX_TIMER_MS);
    this.remaining -= step;
    const h = setTimeout(() => {
      if (this.remaining > 0) this.handle = this.#arm();
      else this.fn();
    }, step);
    if (!this.#refed) h.unref();
    return h;
  }
  unref(): this {
    this.#refed = false;
    this.handle.unref();
    return this;
  }
}

/**
 * The real clock: `Date.now()` and Node's timers (which keep the process alive while armed;
 * delays past Node's 2^31 - 1 ms limit are armed in chunks instead of firing at once).
 */
export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  setTimeout: (fn: () => void, ms: number): unknown => (ms > MAX_TIMER_MS ? new LongTimeout(fn, ms) : setTimeout(fn, ms)),
  clearTimeout: (handle: unknown): void =>
    clearTimeout((handle instanceof LongTimeout ? handle.handle : handle) as ReturnType<typeof setTimeout>),
});

let current: Clock = systemClock;

/** @internal The clock used where no `clock` option is given. */
export function defaultClock(): Clock {
  return current;
}

/**
 * @internal Replaces the default clock (exported to users by `sluice/testing`); returns the
 * previous one.
 */
export function swapDefaultClock(clock: Clock): Clock {
  checkClock(clock, "clock");
  const previous = current;
  current = clock;
  return previous;
}

/** @internal `undefined` (the default clock) or something shaped like a `Clock`. */
export function checkClock(value: unknown, name = "options.clock"): Clock {
  if (value === undefined) return current;
  const c = value as Partial<Clock> | null;
  if (c === null || typeof c !== "object" || typeof c.now !== "function" ||
      typeof c.setTimeout !== "function" || typeof c.clearTimeout !== "function") {
    throw new TypeError(`${name} must be a Clock { now(), setTimeout(fn, ms), clearTimeout(handle) }`);
  }
  return c as Clock;
}
