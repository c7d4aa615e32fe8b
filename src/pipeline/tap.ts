/**
 * `tap(fn)`: the stage that calls `fn` on each item for its effect and hands the item on
 * unchanged.
 */
import type { Channel } from "../core/channel.js";
import { checkFunction } from "../core/validate.js";
import { checkDeadLetter } from "./map.js";
import { Meter, Stage, isThenable, itemStep, type DeadLetter, type ItemStageOptions, type StageRun } from "./stage.js";

class TapStage<T> extends Stage<T, T> {
  readonly fn: (item: T, signal: AbortSignal) => unknown;
  readonly deadLetter: Channel<DeadLetter<T>> | undefined;

  constructor(fn: (item: T, signal: AbortSignal) => unknown, options: ItemStageOptions<T> | undefined) {
    super("tap", options);
    this.fn = checkFunction(fn, "fn");
    this.deadLetter = checkDeadLetter<T>(options?.deadLetter);
  }

  async run(r: StageRun<T, T>): Promise<void> {
    const { input, signal, counters: c, state: st } = r;
    const { fn, deadLetter } = this;
    const m = new Meter(c, r.now, signal);
    st.step = itemStep(r as StageRun<T, unknown>, fn, (item) => (c.out++, item), deadLetter);
    for (;;) {
      if (signal.aborted) throw signal.reason;
      let got = input.tryRecv();
      if (got === undefined) {
        st.idle = true;
        got = await m.recv(input);
        st.idle = false;
      }
      if (!got.ok) {
        if (signal.aborted) throw signal.reason;
        break;
      }
      if (signal.aborted) throw signal.reason; // taken as the run stopped: not started
      c.in++;
      const v = got.value;
      try {
        const p = fn(v, signal);
        if (isThenable(p)) await p;
      } catch (e) {
        await m.fail(deadLetter, v, e);
        continue;
      }
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
 * A stage that calls `fn(item, signal)` (awaited when it returns a promise) and hands `item`
 * on unchanged: logging, metrics, side effects. Blocks while the next stage is full; holds one
 * item at a time. A failure fails the pipeline (or, with `deadLetter`, routes the item there
 * instead of handing it on).
 *
 * @example
 * pipeline(jobs, tap((j) => log.debug("job", j.id)), map(handle))
 */
export function tap<T>(fn: (item: T, signal: AbortSignal) => unknown, options?: ItemStageOptions<T>): Stage<T, T> {
  return new TapStage(fn, options);
}
