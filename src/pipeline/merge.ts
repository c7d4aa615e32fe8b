/**
 * `merge(...sources)`: fan-in. One async iterable of every item of every source, in the order
 * they arrive.
 */
import { Channel } from "../core/channel.js";
import { Group, GroupIterator, iterableOnce, type AbortableIterable } from "./group.js";
import { openSource, type Source } from "./source.js";

class Merge<T> {
  #group: Group | null = null;
  readonly out = new Channel<T>(0);
  constructor(readonly sources: readonly Source<T>[]) {
    // Checked now, read later.
    sources.forEach((s, i) => openSource(s, 0, this.out, `sources[${i}]`));
  }

  start = (): Group => {
    if (this.#group !== null) return this.#group;
    const g = (this.#group = new Group());
    const out = this.out;
    // The readers send without a signal: closing the output wakes any of them still waiting.
    g.closers.push(() => {
      if (!out.closed) out.close();
    });
    let left = this.sources.length;
    for (const s of this.sources) {
      const src = openSource(s, 0, out);
      g.closers.unshift((reason) => src.close(reason));
      const task = src.pump(g.ctl.signal) ?? Promise.resolve();
      g.go(
        task.then(() => {
          if (--left === 0 && !out.closed) out.close();
        }),
      );
    }
    if (left === 0) out.close();
    void g.settled.then(() => {
      if (!out.closed) out.close();
    });
    return g;
  };

}

/**
 * Fan-in: an async iterable of the items of all `sources` (each a `Channel`, an iterable, an
 * async iterable, a Node `Readable` or a web `ReadableStream`), in arrival order; each source's
 * own order is kept. Nothing is read until it is iterated (once). It ends when every source has
 * ended; the first failing source fails it (the iteration throws that error once the others
 * are closed and stopped). `break` closes every source; so does the abort of the signal given
 * to `values({ signal })`, after which the iteration rejects with `signal.reason`.
 *
 * Bounded: a hand-off channel; each source's reader holds at most one item while the consumer
 * is busy, so a slow consumer slows every source.
 *
 * @example
 * for await (const event of merge(clicks, keys, timers)) handle(event);
 */
export function merge<T>(...sources: Source<T>[]): AbortableIterable<T> {
  const m = new Merge<T>(sources);
  return iterableOnce("merge(...)", (signal) => new GroupIterator(m.start, m.out, () => true, signal));
}
