/**
 * `flatMap(fn)`: the stage that expands each item into zero or more, pulled lazily: the
 * expansion of one item is read only as fast as the next stage takes it.
 */
import type { Channel } from "../core/channel.js";
import { checkFunction } from "../core/validate.js";
import { checkDeadLetter } from "./map.js";
import { Meter, Stage, isThenable, type DeadLetter, type ItemStageOptions, type StageRun } from "./stage.js";

class FlatMapStage<I, O> extends Stage<I, O> {
  readonly fn: (item: I, signal: AbortSignal) => Iterable<O> | AsyncIterable<O> | PromiseLike<Iterable<O> | AsyncIterable<O>>;
  readonly deadLetter: Channel<DeadLetter<I>> | undefined;

  constructor(fn: FlatMapStage<I, O>["fn"], options: ItemStageOptions<I> | undefined) {
    super("flatMap", options);
    this.fn = checkFunction(fn, "fn");
    this.deadLetter = checkDeadLetter<I>(options?.deadLetter);
  }

  async run(r: StageRun<I, O>): Promise<void> {
    const { input, signal, counters: c } = r;
    const { fn, deadLetter } = this;
    const m = new Meter(c, r.now, signal);
    for (;;) {
      if (signal.aborted) throw signal.reason;
      let got = input.tryRecv();
      if (got === undefined) got = await m.recv(input);
      if (!got.ok) {
        if (signal.aborted) throw signal.reason;
        break;
      }
      if (signal.aborted) throw signal.reason; // taken as the run stopped: not started
      c.in++;
      const item = got.value;
      let it: Iterator<O> | AsyncIterator<O>;
      try {
        const p = fn(item, signal);
        const xs = isThenable(p) ? await p : p;
        it = iteratorOf(xs);
      } catch (e) {
        await m.fail(deadLetter, item, e);
        continue;
      }
      // The expansion is pulled one element at a time, each sent before the next is asked for.
      let finished = false;
      try {
        for (;;) {
          let n: IteratorResult<O>;
          try {
            const p = it.next();
            n = isThenable(p) ? await p : p;
          } catch (e) {
            finished = true;
            throw new ExpansionError(e);
          }
          if (n.done === true) {
            finished = true;
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
      } catch (e) {
        if (!finished && typeof it.return === "function") {
          try {
            const p = it.return();
            if (isThenable(p)) await p;
          } catch {
            // Closing an expansion we leave because of another failure: that failure is the news.
          }
        }
        if (!(e instanceof ExpansionError)) throw e;
        await m.fail(deadLetter, item, e.cause);
      }
    }
    m.end();
  }
}

/** A failure of the expansion itself (not of sending its elements on). */
class ExpansionError {
  constructor(readonly cause: unknown) {}
}

function iteratorOf<O>(xs: Iterable<O> | AsyncIterable<O>): Iterator<O> | AsyncIterator<O> {
  const x = xs as Partial<Iterable<O> & AsyncIterable<O>> | null;
  if (x != null && typeof x[Symbol.asyncIterator] === "function") return x[Symbol.asyncIterator]!();
  if (x != null && typeof x[Symbol.iterator] === "function") return x[Symbol.iterator]!();
  throw new TypeError("flatMap's fn must return an iterable or an async iterable");
}

/**
 * A stage that calls `fn(item, signal)` and hands on every element of the iterable or async
 * iterable it returns, in order. The expansion is pulled lazily, one element per room in the
 * next stage's buffer, so a large (or endless) expansion never piles up. A failure of `fn` or of
 * the expansion fails the pipeline (or, with `deadLetter`, routes the item there; elements
 * already handed on stay handed on).
 *
 * @example
 * pipeline(pages, flatMap(async (url, signal) => (await fetchPage(url, { signal })).rows))
 */
export function flatMap<I, O>(
  fn: (item: I, signal: AbortSignal) => Iterable<O> | AsyncIterable<O> | PromiseLike<Iterable<O> | AsyncIterable<O>>,
  options?: ItemStageOptions<I>,
): Stage<I, O> {
  return new FlatMapStage(fn, options);
}
