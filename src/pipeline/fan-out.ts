/**
 * `fanOut(source, n)`: each item to exactly one of n consumers, whichever asks first.
 */
import { Channel } from "../core/channel.js";
import { checkInteger } from "../core/validate.js";
import { Group, GroupIterator, iterableOnce, type AbortableIterable } from "./group.js";
import { openSource, type Source } from "./source.js";

class FanOut<T> {
  #group: Group | null = null;
  readonly out = new Channel<T>(0);
  #live: number;
  constructor(
    readonly source: Source<T>,
    readonly n: number,
  ) {
    openSource(source, 0, this.out); // checks it; nothing is read yet
    this.#live = n;
  }

  start = (): Group => {
    if (this.#group !== null) return this.#group;
    const g = (this.#group = new Group());
    const src = openSource(this.source, 0, this.out);
    g.closers.push((reason) => src.close(reason));
    g.closers.push(() => {
      if (!this.out.closed) this.out.close(); // wakes the reader, which sends without a signal
    });
    g.go(
      (src.pump(g.ctl.signal) ?? Promise.resolve()).then(() => {
        if (!this.out.closed) this.out.close();
      }),
    );
    void g.settled.then(() => {
      if (!this.out.closed) this.out.close();
    });
    return g;
  };

  /** A lane broke out: stop everything once no lane is left. */
  leave = (): boolean => --this.#live === 0;

  lane(): AbortableIterable<T> {
    return iterableOnce("a fanOut lane", (signal) => new GroupIterator(this.start, this.out, this.leave, signal));
  }
}

/**
 * Fan-out: returns `n` async iterables that share `source`'s items, each item going to exactly
 * one of them: whichever lane asks first (a free worker takes the next job). Nothing is read
 * until a lane is iterated. Each lane ends when the source has ended; a failure of the source
 * makes every lane's iteration throw it. A lane that breaks out (or whose `values({ signal })`
 * signal aborts: its iteration then rejects with `signal.reason`) just stops taking items; when
 * every lane has left, the source is closed.
 *
 * Bounded: a hand-off channel; the source is read only when a lane asks.
 *
 * @example
 * await Promise.all(fanOut(jobs, 4).map(async (lane) => { for await (const job of lane) await handle(job); }));
 */
export function fanOut<T>(source: Source<T>, n: number): AbortableIterable<T>[] {
  checkInteger(n, "n", 1);
  const f = new FanOut(source, n);
  return Array.from({ length: n }, () => f.lane());
}
