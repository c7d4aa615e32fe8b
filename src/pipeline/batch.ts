/**
 * `batch({ size, maxWaitMs })`: the stage that groups items into arrays of at most `size`,
 * sending a partial batch once its first item has waited `maxWaitMs`.
 *
 * The wait is timed through the clock seam (the default clock at the run's start, replaceable
 * by `sluice/testing`'s virtual clock). A timer is armed only while the stage waits for input
 * with a partial batch in hand, and is cleared as soon as that wait ends: a stage that is not
 * waiting holds no timer.
 */
import { Channel, type RecvResult } from "../core/channel.js";
import { recv, select } from "../core/select.js";
import { checkDuration, checkInteger, checkOptions } from "../core/validate.js";
import { Meter, SKIP, Stage, type StageOptions, type StageRun } from "./stage.js";

/** Options of `batch`. */
export interface BatchOptions extends StageOptions {
  /** The most items in one batch: a positive safe integer. */
  size: number;
  /**
   * Send a partial batch once its first item has waited this long (ms, finite, >= 0). Default:
   * no time limit; a batch goes out when full or when the input ends.
   */
  maxWaitMs?: number;
}

class BatchStage<T> extends Stage<T, T[]> {
  readonly size: number;
  readonly maxWaitMs: number | undefined;

  constructor(options: BatchOptions) {
    if (options === undefined) throw new TypeError("batch(options): options.size is required");
    checkOptions(options);
    super("batch", options);
    this.size = checkInteger(options.size, "options.size", 1);
    this.maxWaitMs = options.maxWaitMs === undefined ? undefined : checkDuration(options.maxWaitMs, "options.maxWaitMs");
  }

  async run(r: StageRun<T, T[]>): Promise<void> {
    const { input, signal, counters: c, clock, state: st } = r;
    const { size, maxWaitMs } = this;
    const m = new Meter(c, r.now, signal);
    const timed = maxWaitMs !== undefined;
    const tick = timed ? new Channel<void>(1) : null;
    const cases = timed ? [recv(input), recv(tick)] : [];
    const bs = { items: [] as T[] };
    let deadline = 0;
    if (!timed) {
      st.step = (v: unknown): unknown => {
        c.in++;
        bs.items.push(v as T);
        if (bs.items.length < size) return SKIP;
        const b = bs.items;
        bs.items = [];
        c.out++;
        return b;
      };
    }
    const flush = async (): Promise<void> => {
      const b = bs.items;
      bs.items = [];
      c.out++;
      const d = r.deliver(b, m);
      if (d !== undefined) {
        await d;
        m.unblock();
      }
    };
    for (;;) {
      if (signal.aborted) throw signal.reason;
      let got: RecvResult<T> | undefined = input.tryRecv();
      if (got === undefined) {
        if (bs.items.length === 0 || !timed) {
          st.idle = true;
          got = await m.recv(input);
          st.idle = false;
        } else {
          const left = deadline - clock.now();
          if (left <= 0) {
            await flush();
            continue;
          }
          const handle = clock.setTimeout(() => tick!.trySend(undefined), left);
          let res;
          m.pause();
          try {
            res = await select(cases, m.opts);
          } finally {
            clock.clearTimeout(handle);
            tick!.tryRecv(); // a tick that fired as the input won is stale
            m.resume();
          }
          if (res.index === 1) {
            await flush();
            continue;
          }
          got = res as RecvResult<T>;
        }
      }
      if (!got.ok) {
        if (signal.aborted) throw signal.reason;
        break;
      }
      c.in++;
      if (bs.items.length === 0 && timed) deadline = clock.now() + maxWaitMs;
      bs.items.push(got.value);
      if (bs.items.length === size) await flush();
    }
    st.step = null;
    if (bs.items.length > 0) await flush();
    m.end();
  }
}

/**
 * A stage that hands on arrays of at most `size` items, in order: full batches as they fill, a
 * partial one when `maxWaitMs` has passed since its first item (if set), and the rest when the
 * input ends. Bounded: it holds at most one batch being filled (and one waiting for room).
 * Counts items in `in`, batches in `out`.
 *
 * @example
 * pipeline(rows, batch({ size: 100, maxWaitMs: 50 }), map((rows) => db.insertMany(rows)))
 */
export function batch<T>(options: BatchOptions): Stage<T, T[]> {
  return new BatchStage<T>(options);
}
