/**
 * @internal A user's stage function `(input, signal) => AsyncIterable<O>` as a stage: its input
 * is the previous channel (counted in `in`), its output is pulled and sent into the next
 * channel (counted in `out`), one element per room there.
 */
import { Meter, Stage, isThenable, type StageRun } from "./stage.js";
import { InputIterator } from "./input.js";

/** A stage written as a function from one async iterable to another. */
export type StageFunction<I, O> = (input: AsyncIterable<I>, signal: AbortSignal) => AsyncIterable<O> | Iterable<O>;

export class FunctionStage<I, O> extends Stage<I, O> {
  constructor(readonly fn: StageFunction<I, O>) {
    super(fn.name === "" ? "stage" : fn.name, undefined);
  }

  async run(r: StageRun<I, O>): Promise<void> {
    const { signal, counters: c } = r;
    const m = new Meter(c, r.now, signal);
    const input = new InputIterator(r.input, c, signal, m);
    const out = this.fn(input, signal);
    const o = out as Partial<AsyncIterable<O> & Iterable<O>> | null;
    let it: AsyncIterator<O> | Iterator<O>;
    if (o != null && typeof o[Symbol.asyncIterator] === "function") it = o[Symbol.asyncIterator]!();
    else if (o != null && typeof o[Symbol.iterator] === "function") it = o[Symbol.iterator]!();
    else throw new TypeError("a stage function must return an async iterable (or an iterable)");
    let done = false;
    try {
      for (;;) {
        const p = it.next();
        const n = isThenable(p) ? await p : p;
        if (n.done === true) {
          done = true;
          break;
        }
        if (signal.aborted) throw signal.reason;
        c.out++;
        const d = r.deliver(n.value, m);
        if (d !== undefined) {
          await d;
          m.unblock();
        }
      }
    } finally {
      if (!done && typeof it.return === "function") {
        try {
          const p = it.return();
          if (isThenable(p)) await p;
        } catch {
          // The stage is being left because of a failure or an abort: that is the news.
        }
      }
    }
    m.end();
  }
}
