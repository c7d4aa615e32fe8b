/**
 * `sluice/testing`: virtual time for tests of code built on sluice.
 *
 * @example
 * import { VirtualClock, useClock } from "sluice/testing";
 * const clock = new VirtualClock();
 * const restore = useClock(clock); // after(), tickers, timers now read `clock`
 * try { ... await clock.advanceAsync(1000); ... } finally { restore(); }
 */
import { swapDefaultClock, type Clock } from "../core/clock.js";

export { VirtualClock } from "./virtual-clock.js";

/**
 * Makes `clock` the default clock of every sluice timer, ticker and deadline created without a
 * `clock` option, until the returned function is called (which restores the previous one).
 */
export function useClock(clock: Clock): () => void {
  const previous = swapDefaultClock(clock);
  let restored = false;
  return () => {
    if (restored) return;
    restored = true;
    swapDefaultClock(previous);
  };
}
