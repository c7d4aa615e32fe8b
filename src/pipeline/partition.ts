/**
 * `partition(source, keyOf, n)`: n lanes, each item to the lane of its key, so items with the
 * same key keep their order and are handled by one consumer.
 */
import { Channel } from "../core/channel.js";
import { checkFunction, checkInteger, checkOptions, given } from "../core/validate.js";
import { Group, GroupIterator, iterableOnce, type AbortableIterable } from "./group.js";
import { openSource, type Source } from "./source.js";
import { DEFAULT_BUFFER, isThenable } from "./stage.js";

/** Options of `partition`. */
export interface PartitionOptions {
  /** Capacity of each lane's channel (a non-negative safe integer, default 16). */
  buffer?: number;
}

/** The lane of `key` among `n`: a non-negative safe integer modulo n, anything else by a hash of `String(key)`. */
export function laneOf(key: unknown, n: number): number {
  if (typeof key === "number" && Number.isSafeInteger(key) && key >= 0) return key % n;
  const s = String(key);
  let h = 0x811c9dc5; // FNV-1a, 32 bits
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % n;
}

class Partition<T> {
  #group: Group | null = null;
  readonly lanes: Channel<T>[];
  readonly #feed: Channel<T>;
  constructor(
    readonly source: Source<T>,
    readonly keyOf: (item: T) => unknown,
    n: number,
    buffer: number,
  ) {
    this.lanes = Array.from({ length: n }, () => new Channel<T>(buffer));
    this.#feed = new Channel<T>(0);
    openSource(source, 0, this.#feed); // checks it; nothing is read yet
  }

  start = (): Group => {
    if (this.#group !== null) return this.#group;
    const g = (this.#group = new Group());
    const src = openSource(this.source, 0, this.#feed);
    g.closers.push((reason) => src.close(reason));
    g.closers.push(() => {
      if (!this.#feed.closed) this.#feed.close(); // wakes the reader, which sends without a signal
    });
    g.go(
      (src.pump(g.ctl.signal) ?? Promise.resolve()).then(() => {
        if (!this.#feed.closed) this.#feed.close();
      }),
    );
    g.go(this.#route(g));
    void g.settled.then(() => {
      for (const lane of this.lanes) if (!lane.closed) lane.close();
    });
    return g;
  };

  /** Moves each item from the source's feed to its lane, waiting while that lane is full. */
  async #route(g: Group): Promise<void> {
    const { lanes, keyOf } = this;
    const feed = this.#feed;
    const n = lanes.length;
    try {
      for (;;) {
        if (g.ctl.signal.aborted) return;
        let r = feed.tryRecv();
        if (r === undefined) r = await feed.recv(g.opts);
        if (!r.ok) break;
        const k = keyOf(r.value);
        if (isThenable(k)) throw new TypeError("partition's keyOf must return a key, not a promise");
        const lane = lanes[laneOf(k, n)]!;
        if (!lane.trySend(r.value)) await lane.send(r.value, g.opts);
      }
    } finally {
      if (!feed.closed) feed.close();
      for (const lane of lanes) if (!lane.closed) lane.close();
    }
  }

  lane(i: number): AbortableIterable<T> {
    return iterableOnce("a partition lane", (signal) => new GroupIterator(this.start, this.lanes[i]!, () => true, signal));
  }
}

/**
 * Partitions `source` into `n` async iterables by `keyOf(item)`: items with the same key go to
 * the same lane, in source order (a key that is a non-negative safe integer goes to lane
 * `key % n`; any other key by a hash of `String(key)`). Nothing is read until a lane is
 * iterated. Every lane ends when the source has ended; a failure (of the source or of `keyOf`)
 * makes every lane throw it.
 *
 * Blocks: when an item's lane is full, the router waits for it (head-of-line), so consume every
 * lane concurrently. Bounded: each lane's buffer (`options.buffer`, default 16), plus one item
 * in the router. Breaking out of any lane stops the partition: the source is closed and every
 * lane ends. So does the abort of a lane's `values({ signal })` signal (that lane's iteration
 * rejects with `signal.reason`; the others end).
 *
 * @example
 * const lanes = partition(events, (e) => e.accountId, 4);
 * await Promise.all(lanes.map(async (lane) => { for await (const e of lane) await apply(e); }));
 */
export function partition<T>(source: Source<T>, keyOf: (item: T) => unknown, n: number, options?: PartitionOptions): AbortableIterable<T>[] {
  checkFunction(keyOf, "keyOf");
  checkInteger(n, "n", 1);
  checkOptions(options);
  const buffer = checkInteger(given(options?.buffer, DEFAULT_BUFFER), "options.buffer", 0);
  const p = new Partition(source, keyOf, n, buffer);
  return Array.from({ length: n }, (_, i) => p.lane(i));
}
