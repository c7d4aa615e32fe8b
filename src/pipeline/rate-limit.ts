/**
 * `rateLimit(limiter)`: the stage that lets items through at a `RateLimiter`'s rate.
 */
import { RateLimiter } from "../flow/rate-limiter.js";
import { Meter, Stage, type StageOptions, type StageRun } from "./stage.js";

class RateLimitStage<T> extends Stage<T, T> {
  constructor(
    readonly limiter: RateLimiter,
    options: StageOptions | undefined,
  ) {
    super("rateLimit", options);
    if (!(limiter instanceof RateLimiter)) throw new TypeError("limiter must be a RateLimiter");
  }

  async run(r: StageRun<T, T>): Promise<void> {
    const { input, signal, counters: c } = r;
    const limiter = this.limiter;
    const m = new Meter(c, r.now, signal);
    for (;;) {
      if (signal.aborted) throw signal.reason;
      let got = input.tryRecv();
      if (got === undefined) got = await m.recv(input);
      if (!got.ok) {
        if (signal.aborted) throw signal.reason;
        break;
      }
      c.in++;
      if (!limiter.allow(1)) await limiter.wait(1, m.opts);
      const v = got.value;
      c.out++;
      const d = r.deliver(v, m);
      if (d !== undefined) {
        await d;
        m.unblock();
      }
    }
    m.end();
  }
}

/**
 * A stage that waits for one token of `limiter` per item (its time waiting counts as busy), then
 * hands the item on. Holds one item at a time; the limiter may be shared with other code, which
 * then shares the rate. A `BusyError` from the limiter (its `maxWaiters`) fails the pipeline.
 *
 * @example
 * pipeline(urls, rateLimit(new RateLimiter({ rate: 50, burst: 5 })), map(fetchPage))
 */
export function rateLimit<T>(limiter: RateLimiter, options?: StageOptions): Stage<T, T> {
  return new RateLimitStage<T>(limiter, options);
}
