/**
 * `map(fn, { concurrency, ordered, buffer, deadLetter })`: the stage that transforms each item.
 *
 * With concurrency 1 it is one loop: take an item, call `fn`, hand the result on. With more
 * (a number, or a `ConcurrencyLimit` such as an `AdaptiveLimit`), the items go through a
 * `Pool`'s `map`, which pulls an item only when a slot is free and never holds more than the
 * concurrency pulled and not yet handed on; `ordered` keeps input order within that window.
 */
import { Channel } from "../core/channel.js";
import { checkFunction, checkInteger } from "../core/validate.js";
import { isConcurrencyLimit, type ConcurrencyLimit } from "../flow/concurrency-limit.js";
import { Pool } from "../flow/pool.js";
import { InputIterator } from "./input.js";
import { Meter, Stage, isThenable, itemStep, type DeadLetter, type ItemStageOptions, type StageRun } from "./stage.js";

/** Options of `map`. */
export interface MapStageOptions<I> extends ItemStageOptions<I> {
  /**
   * How many calls of `fn` may run at once: a positive safe integer (default 1) or a
   * `ConcurrencyLimit` (an `AdaptiveLimit` moves it at run time).
   */
  concurrency?: number | ConcurrencyLimit;
  /** With concurrency above 1: hand results on in input order (default true); false hands them on as they finish. */
  ordered?: boolean;
}

/** @internal Checks a `deadLetter` option. */
export function checkDeadLetter<I>(value: unknown): Channel<DeadLetter<I>> | undefined {
  if (value !== undefined && !(value instanceof Channel)) {
    throw new TypeError("options.deadLetter must be a Channel");
  }
  return value as Channel<DeadLetter<I>> | undefined;
}

/** A reserved sequence number that got no item. */
const HOLE: unique symbol = Symbol("hole");

/** A failure routed to the dead-letter channel, travelling through the pool's map in its item's place. */
class Failed<I> {
  constructor(
    readonly item: I,
    readonly error: unknown,
  ) {}
}

class MapStage<I, O> extends Stage<I, O> {
  readonly fn: (item: I, signal: AbortSignal) => O | PromiseLike<O>;
  readonly concurrency: number | ConcurrencyLimit;
  readonly ordered: boolean;
  readonly deadLetter: Channel<DeadLetter<I>> | undefined;

  constructor(fn: (item: I, signal: AbortSignal) => O | PromiseLike<O>, options: MapStageOptions<I> | undefined) {
    super("map", options);
    this.fn = checkFunction(fn, "fn");
    const c = options?.concurrency ?? 1;
    this.concurrency = isConcurrencyLimit(c) ? c : checkInteger(c, "options.concurrency", 1);
    const ordered = options?.ordered ?? true;
    if (typeof ordered !== "boolean") throw new TypeError(`options.ordered must be a boolean, got ${typeof ordered}`);
    this.ordered = ordered;
    this.deadLetter = checkDeadLetter<I>(options?.deadLetter);
  }

  run(r: StageRun<I, O>): Promise<void> {
    if (this.concurrency === 1) return this.#serial(r);
    if (typeof this.concurrency === "number") return this.#workers(r, this.concurrency);
    return this.#concurrent(r);
  }

  /**
   * Concurrency n (a number): n worker loops share the input link. Unordered, each hands its own
   * result on. Ordered, results wait in a window of n slots (`ring`, indexed by sequence number)
   * and are handed on from `nextOut` only; a worker takes a new item only while fewer than n
   * are taken and not yet handed on, so at most n items are ever in the stage.
   *
   * Sequence numbers follow the link's order: a worker that must park for an item reserves its
   * number before parking (parked receivers are served in parking order, and a receive that
   * finds a value at once only happens when none is parked); a reservation that gets no item
   * (the input ended) is a hole the window skips.
   *
   * Busy time is counted per worker as the time it holds an item (from taking it to handing its
   * result on), read from the clock only when the worker parks or resumes, never per item: a
   * clock read costs as much as a channel hop.
   */
  async #workers(r: StageRun<I, O>, n: number): Promise<void> {
    const { input, signal, counters: c, now } = r;
    const { fn, deadLetter, ordered } = this;
    const ring: ({ v: unknown } | typeof HOLE | undefined)[] = new Array(n).fill(undefined);
    let nextSeq = 0;
    let nextOut = 0;
    let emitting = false;
    const waiters: (() => void)[] = [];
    const wakeAll = (): void => {
      for (let w = waiters.shift(); w !== undefined; w = waiters.shift()) w();
    };
    const wake = (): void => waiters.shift()?.(); // one slot freed: one worker may take an item
    signal.addEventListener("abort", wakeAll, { once: true });
    // Hands on the results ready at the head of the window, in order (one worker at a time).
    const drain = async (m: Meter): Promise<void> => {
      emitting = true;
      try {
        for (let e = ring[nextOut % n]; e !== undefined; e = ring[nextOut % n]) {
          ring[nextOut % n] = undefined;
          if (e !== HOLE) {
            const d = this.#handOn(r, m, e.v);
            if (d !== undefined) await d;
          }
          nextOut++;
          wake();
        }
      } finally {
        emitting = false;
      }
    };
    const worker = async (): Promise<void> => {
      const m = new Meter(c, now, signal);
      try {
        await work(m);
      } finally {
        m.end();
      }
    };
    const work = async (m: Meter): Promise<void> => {
      for (;;) {
        if (signal.aborted) throw signal.reason;
        while (ordered && nextSeq - nextOut >= n) {
          m.pause();
          await new Promise<void>((resolve) => waiters.push(resolve));
          m.resume();
          if (signal.aborted) throw signal.reason;
        }
        let got = input.tryRecv();
        let seq: number;
        if (got === undefined) {
          seq = nextSeq++;
          m.pause();
          got = await input.recv();
          m.resume();
        } else if (got.ok) {
          seq = nextSeq++;
        } else {
          if (signal.aborted) throw signal.reason;
          return;
        }
        if (!got.ok) {
          if (signal.aborted) throw signal.reason;
          if (ordered) {
            ring[seq % n] = HOLE;
            if (!emitting) await drain(m);
          }
          return;
        }
        if (signal.aborted) throw signal.reason; // taken as the run stopped: not started
        c.in++;
        const item = got.value;
        let v: unknown;
        try {
          const p = fn(item, signal);
          v = isThenable(p) ? await p : p;
        } catch (e) {
          // The run stopped under this call: its failure is the stop, not the item's.
          if (signal.aborted) throw signal.reason;
          c.errors++;
          if (deadLetter === undefined) {
            r.fail(e);
            throw e;
          }
          v = new Failed(item, e);
        }
        if (!ordered) {
          const d = this.#handOn(r, m, v);
          if (d !== undefined) await d;
          continue;
        }
        ring[seq % n] = { v };
        if (!emitting) await drain(m);
      }
    };
    const results = await Promise.allSettled(Array.from({ length: n }, worker));
    signal.removeEventListener("abort", wakeAll);
    const failed = results.find((x): x is PromiseRejectedResult => x.status === "rejected");
    if (failed !== undefined) throw failed.reason;
  }

  /**
   * Hands one result on: a routed failure to the dead-letter channel, a value downstream.
   * Returns a promise only when that must wait (no promise, no async frame, on the fast path).
   */
  #handOn(r: StageRun<I, O>, m: Meter, v: unknown): Promise<void> | undefined {
    if (v instanceof Failed) {
      const f = v as Failed<I>;
      const letter: DeadLetter<I> = { item: f.item, error: f.error, stage: r.counters.name };
      return this.deadLetter!.trySend(letter) ? undefined : m.sendWatched(this.deadLetter!, letter);
    }
    r.counters.out++;
    const d = r.deliver(v as O, m);
    return d === undefined ? undefined : d.then(() => m.unblock());
  }

  async #serial(r: StageRun<I, O>): Promise<void> {
    const { input, signal, counters: c, state: st } = r;
    const { fn, deadLetter } = this;
    const m = new Meter(c, r.now, signal);
    st.step = itemStep(r as StageRun<I, unknown>, fn, (_item, x) => (c.out++, x), deadLetter);
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
      let v: O;
      try {
        const p = fn(got.value, signal);
        v = isThenable(p) ? await p : p;
      } catch (e) {
        await m.fail(deadLetter, got.value, e);
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

  async #concurrent(r: StageRun<I, O>): Promise<void> {
    const { signal, counters: c, now } = r;
    const { fn, deadLetter } = this;
    const pool = new Pool({ concurrency: this.concurrency });
    // Busy time here is the sum of the calls' durations; the meter counts only blocked time.
    const m = new Meter(c, now, signal, false);
    const call = (item: I, s: AbortSignal): unknown => {
      if (s.aborted) throw s.reason; // pulled as the run stopped: not started
      const t = now();
      const failed = (e: unknown): Failed<I> => {
        c.busyMs += now() - t;
        if (deadLetter === undefined) {
          c.errors++;
          r.fail(e);
          throw e;
        }
        return new Failed(item, e);
      };
      let p: O | PromiseLike<O>;
      try {
        p = fn(item, s);
      } catch (e) {
        return failed(e);
      }
      if (!isThenable(p)) {
        c.busyMs += now() - t;
        return p;
      }
      return Promise.resolve(p).then((v) => {
        c.busyMs += now() - t;
        return v;
      }, failed);
    };
    const results = pool.map(new InputIterator(r.input, c, signal), call, { ordered: this.ordered, signal });
    try {
      for (;;) {
        const next = await results.next();
        if (next.done === true) break;
        const v = next.value;
        if (v instanceof Failed) {
          const f = v as Failed<I>;
          await m.fail(deadLetter, f.item, f.error);
          continue;
        }
        c.out++;
        const d = r.deliver(v as O, m);
        if (d !== undefined) {
        await d;
        m.unblock();
      }
      }
    } finally {
      await results.return?.();
      pool.close();
      await pool.drain();
    }
  }
}

/**
 * A stage that calls `fn(item, signal)` on each item and hands on what it returns (awaited).
 * `signal` aborts when the pipeline fails or is aborted or stopped.
 *
 * Blocks: while the next stage's buffer is full (the stage then stops pulling). Bounded: at most
 * `concurrency` items in the stage (pulled, not yet handed on). A failure of `fn` fails the
 * pipeline with that error, unless `deadLetter` is given (then the item goes there and the
 * stage goes on).
 *
 * @example
 * pipeline(ids, map(async (id, signal) => fetchUser(id, { signal }), { concurrency: 8 }))
 */
export function map<I, O>(fn: (item: I, signal: AbortSignal) => O | PromiseLike<O>, options?: MapStageOptions<I>): Stage<I, Awaited<O>> {
  return new MapStage<I, Awaited<O>>(fn as (item: I, signal: AbortSignal) => Awaited<O>, options);
}
