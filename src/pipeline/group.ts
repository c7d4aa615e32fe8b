/**
 * @internal The run of a fan-in or fan-out (`merge`, `fanOut`, `partition`): its tasks (the
 * sources' pumps) fail, abort and stop together, as a pipeline's stages do, and the iterators
 * handed to consumers read bounded channels and end (or throw the first failure) only once
 * every task has settled.
 *
 * Invariants: `failure` is set once, by the first failure, and `ctl` aborts with it in the same
 * step; `stop()` aborts `ctl` without a failure; `closers` run once, when `ctl` aborts (the
 * sources' own ways to stop); `settled` resolves when every task has settled.
 */
import type { Channel } from "../core/channel.js";
import { signalOf } from "../core/validate.js";

const DONE: IteratorResult<never> = Object.freeze({ value: undefined, done: true }) as IteratorResult<never>;

/** Ends a group without a failure: its consumers are gone. */
class Stopped extends Error {
  constructor() {
    super("stopped by its consumers");
  }
}

export class Group {
  readonly ctl = new AbortController();
  readonly opts: { readonly signal: AbortSignal } = { signal: this.ctl.signal };
  failure: { error: unknown } | null = null;
  readonly closers: ((reason: unknown) => void)[] = [];
  readonly #tasks: Promise<void>[] = [];
  #settled: Promise<void> | null = null;

  /** Adds a task; its rejection fails the group. Call before `settled` is first read. */
  go(task: Promise<void>): void {
    this.#tasks.push(task.then(undefined, (e: unknown) => this.fail(e)));
  }

  get settled(): Promise<void> {
    return (this.#settled ??= Promise.all(this.#tasks).then(() => undefined));
  }

  fail(error: unknown): void {
    if (this.ctl.signal.aborted) return;
    this.failure = { error };
    this.#abort(error);
  }

  stop(): Promise<void> {
    if (!this.ctl.signal.aborted) this.#abort(new Stopped());
    return this.settled;
  }

  #abort(reason: unknown): void {
    this.ctl.abort(reason);
    for (const close of this.closers) close(reason);
  }

  async end(): Promise<IteratorResult<never>> {
    await this.settled;
    if (this.failure !== null) throw this.failure.error;
    return DONE;
  }
}

/**
 * What `merge`, `fanOut` and `partition` hand out: an async iterable (iterate it once) that can
 * also be iterated with a signal.
 */
export interface AbortableIterable<T> extends AsyncIterable<T> {
  /**
   * Iterates with `signal`: when it aborts, this consumer breaks out (as `break` does) and the
   * pending or next `next()` rejects with `signal.reason` once what the break stops has stopped.
   *
   * @example
   * for await (const job of lane.values({ signal })) await handle(job);
   */
  values(options?: { signal?: AbortSignal }): AsyncIterableIterator<T>;
}

/**
 * The iterable a consumer of a group gets: iterated once, with or without a signal;
 * `iterator(signal)` makes the consumer's `GroupIterator`. `what` names it in the error of a
 * second iteration.
 */
export function iterableOnce<T>(what: string, iterator: (signal: AbortSignal | undefined) => AsyncIterableIterator<T>): AbortableIterable<T> {
  let iterated = false;
  const values = (options?: { signal?: AbortSignal }): AsyncIterableIterator<T> => {
    const signal = signalOf(options);
    if (iterated) throw new Error(`${what} is iterated once: it was already iterated`);
    iterated = true;
    return iterator(signal);
  };
  return { values, [Symbol.asyncIterator]: () => values() };
}

/** A consumer's iterator over one of a group's output channels. */
export class GroupIterator<T> implements AsyncIterableIterator<T> {
  #done = false;
  /** Wait options for `out.recv`: the group's signal, or the consumer's if it has one. */
  #opts: { readonly signal: AbortSignal } | undefined;
  constructor(
    readonly start: () => Group,
    readonly out: Channel<T>,
    /** Called once when this consumer breaks out (returns true if the whole group should stop). */
    readonly onReturn: () => boolean,
    /** The consumer's own signal (`values({ signal })`). */
    readonly signal?: AbortSignal,
  ) {}

  next(): Promise<IteratorResult<T>> {
    if (this.#done) return Promise.resolve(DONE);
    if (this.signal?.aborted === true) return this.#abort();
    const g = this.start();
    if (g.ctl.signal.aborted) return this.#end(g);
    const r = this.out.tryRecv();
    if (r !== undefined) return r.ok ? Promise.resolve({ value: r.value, done: false }) : this.#end(g);
    // With the consumer's signal, the wait watches that one: the group's own abort closes the
    // output channels (its closers), which wakes the wait just the same.
    this.#opts ??= this.signal === undefined ? g.opts : { signal: this.signal };
    return this.out.recv(this.#opts).then(
      (v) => (v.ok && !g.ctl.signal.aborted ? { value: v.value, done: false } : this.#end(g)),
      () => (this.signal?.aborted === true && !g.ctl.signal.aborted ? this.#abort() : this.#end(g)),
    );
  }

  /** The consumer's signal aborted: break out, then reject with its reason. */
  async #abort(): Promise<never> {
    const reason: unknown = this.signal?.reason;
    await this.return();
    throw reason;
  }

  #end(g: Group): Promise<IteratorResult<T>> {
    this.#done = true;
    return g.end();
  }

  async return(): Promise<IteratorResult<T>> {
    if (this.#done) return DONE;
    this.#done = true;
    if (this.onReturn()) await this.start().stop();
    return DONE;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
