/**
 * `filter(pred)`: the stage that keeps the items `pred` accepts; the others are counted as
 * `dropped`.
 */
import { checkFunction } from "../core/validate.js";
import { checkDeadLetter } from "./map.js";
import { Meter, SKIP, Stage, isThenable, itemStep, type DeadLetter, type ItemStageOptions, type StageRun } from "./stage.js";
import type { Channel } from "../core/channel.js";

class FilterStage<T> extends Stage<T, T> {
  readonly pred: (item: T, signal: AbortSignal) => unknown;
  readonly deadLetter: Channel<DeadLetter<T>> | undefined;

  constructor(pred: (item: T, signal: AbortSignal) => unknown, options: ItemStageOptions<T> | undefined) {
    super("filter", options);
    this.pred = checkFunction(pred, "pred");
    this.deadLetter = checkDeadLetter<T>(options?.deadLetter);
  }

  async run(r: StageRun<T, T>): Promise<void> {
    const { input, signal, counters: c, state: st } = r;
    const { pred, deadLetter } = this;
    const m = new Meter(c, r.now, signal);
    st.step = itemStep(r as StageRun<T, unknown>, pred, (item, keep) => (keep ? (c.out++, item) : (c.dropped++, SKIP)), deadLetter);
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
      let keep: unknown;
      try {
        const p = pred(v, signal);
        keep = isThenable(p) ? await p : p;
      } catch (e) {
        await m.fail(deadLetter, v, e);
        continue;
      }
      if (!keep) {
        c.dropped++;
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
 * A stage that hands on the items for which `pred(item, signal)` is truthy (awaited when it
 * returns a promise) and counts the others as `dropped`. Blocks while the next stage is full;
 * holds one item at a time. A throwing `pred` fails the pipeline (or, with `deadLetter`, routes
 * the item there).
 *
 * @example
 * pipeline(orders, filter((o) => o.total > 0))
 */
export function filter<T, S extends T>(pred: (item: T, signal: AbortSignal) => item is S, options?: ItemStageOptions<T>): Stage<T, S>;
export function filter<T>(pred: (item: T, signal: AbortSignal) => unknown, options?: ItemStageOptions<T>): Stage<T, T>;
export function filter<T>(pred: (item: T, signal: AbortSignal) => unknown, options?: ItemStageOptions<T>): Stage<T, T> {
  return new FilterStage(pred, options);
}
