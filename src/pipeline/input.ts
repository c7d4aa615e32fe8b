/**
 * @internal An async iterator over a stage's input channel, for code that consumes an
 * `AsyncIterable` (a `Pool.map`, a user's stage function): it counts `in`, takes what is
 * buffered without parking, and parks with the run's signal otherwise.
 *
 * Invariant: at most one `next()` is parked at a time per caller (both users serialize their
 * pulls); once `return()` was called, every `next()` answers done and nothing more is taken.
 */
import type { Channel, RecvResult } from "../core/channel.js";
import type { Meter, StageCounters } from "./stage.js";

const DONE: IteratorResult<never> = Object.freeze({ value: undefined, done: true }) as IteratorResult<never>;

export class InputIterator<T> implements AsyncIterableIterator<T> {
  ended = false;
  exhausted = false;
  readonly #opts: { signal: AbortSignal };
  constructor(
    readonly input: Channel<T>,
    readonly counters: StageCounters,
    signal: AbortSignal,
    /** When given, time waiting for input is taken out of the meter's busy time. */
    readonly meter?: Meter,
  ) {
    this.#opts = { signal };
  }

  next(): Promise<IteratorResult<T>> {
    if (this.ended) return Promise.resolve(DONE);
    if (this.#opts.signal.aborted) return Promise.reject(this.#opts.signal.reason);
    const r = this.input.tryRecv();
    if (r !== undefined) return Promise.resolve(this.#result(r));
    const m = this.meter;
    if (m === undefined) return this.input.recv().then((v) => this.#result(v));
    m.pause();
    const resume = (): void => m.resume();
    return this.input.recv().then(
      (v) => {
        resume();
        return this.#result(v);
      },
      (e: unknown) => {
        resume();
        throw e;
      },
    );
  }

  #result(r: RecvResult<T>): IteratorResult<T> {
    if (this.ended) return DONE;
    if (!r.ok) {
      if (this.#opts.signal.aborted) throw this.#opts.signal.reason;
      this.exhausted = this.ended = true;
      return DONE;
    }
    this.counters.in++;
    return { value: r.value, done: false };
  }

  return(): Promise<IteratorResult<T>> {
    this.ended = true;
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
