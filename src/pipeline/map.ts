/**
 * `map(fn, { concurrency, ordered, buffer, deadLetter })`: the stage that transforms each item.
 *
 * With concurrency 1 it is one loop: take an item, call `fn`, hand the result on. With a number
 * n above 1 it is a window of n items (`#window`): calls start as room appears and results are
 * handed on from the window's head. With a `ConcurrencyLimit` (such as an `AdaptiveLimit`), the
 * items go through a `Pool`'s `map`, which pulls an item only when a slot is free. Either way no
 * more than the concurrency are pulled and not yet handed on; `ordered` keeps input order
 * within that window.
 */
import { Channel, type RecvResult } from "../core/channel.js";
import { checkFunction, checkInteger } from "../core/validate.js";
import { isConcurrencyLimit, type ConcurrencyLimit } from "../flow/concurrency-limit.js";
import { Pool } from "../flow/pool.js";
import { InputIterator } from "./input.js";
import { Meter, Stage, WaitSampler, isThenable, itemStep, type DeadLetter, type ItemStageOptions, type StageRun } from "./stage.js";

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
    if (typeof this.concurrency === "number") return this.#window(r, this.concurrency);
    return this.#concurrent(r);
  }

  /**
   * Concurrency n (a number), without worker loops: an item's `fn` is called wherever room
   * appears in the window (when the run starts, when a receive parked for input gets its item,
   * when a result is handed on), and its settle callback records the result. A worker loop
   * would have to resume once per item to take the next one (a promise hop); here a result
   * handed on starts the next item in the same step.
   *
   * Invariants:
   *  - `nextSeq - nextOut <= n`: items taken from the input (or reserved by the parked
   *    receive) and not yet handed on, so at most n items are ever in the stage.
   *  - At most one receive is parked (`receiving`); it reserves its sequence number when it
   *    parks, so items are numbered in input order (a reservation that gets no item is a hole).
   *  - `ring` holds results not yet handed on, n slots: ordered, the result of sequence number
   *    s in slot s % n; unordered, in settle order from slot `nextOut` (the k-th settled result
   *    in slot `nextDone`). Results leave from slot `nextOut % n` only, one hand-on at a time
   *    (`emitting`), which is what keeps input order when `ordered`.
   *  - The stage settles once nothing is running (`active`), parked (`receiving`) or being handed
   *    on: resolves when the input ended and every result was handed on, else rejects with the
   *    first failure (the run's signal reason when the run stopped under it).
   *
   * Time: blocked time is the hand-on waits (the meter); busy time is the sum of the calls'
   * durations, timed on a sample of the calls (`WaitSampler`: every call with an injected clock,
   * about one in 64 when they come fast), so the clock is not read twice per item.
   */
  #window(r: StageRun<I, O>, n: number): Promise<void> {
    const { input, signal, counters: c, now } = r;
    const { fn, deadLetter, ordered } = this;
    const m = new Meter(c, now, signal, false);
    const calls = new WaitSampler(now, c.idleSampler!.exact);
    const ring: ({ v: unknown } | typeof HOLE | undefined)[] = new Array(n).fill(undefined);
    let nextSeq = 0;
    let nextOut = 0;
    let nextDone = 0;
    let active = 0;
    let receiving = false;
    let emitting = false;
    let filling = false;
    let inputDone = false;
    let failure: { error: unknown } | null = null;
    let settled = false;
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    const result = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });

    const finishIfIdle = (): void => {
      if (settled || active !== 0 || receiving || emitting) return;
      if (failure !== null) {
        settled = true;
        m.end();
        reject(failure.error);
      } else if (inputDone && nextOut === nextSeq) {
        settled = true;
        m.end();
        resolve();
      }
    };
    const stop = (error: unknown): void => {
      failure ??= { error };
      finishIfIdle();
    };
    const put = (seq: number, e: { v: unknown } | typeof HOLE): void => {
      ring[(ordered ? seq : nextDone++) % n] = e;
      emit();
    };
    const done = (seq: number, v: unknown, w: number, t0: number): void => {
      if (w !== 0) c.busyMs += (now() - t0) * w;
      active--;
      if (failure !== null) return finishIfIdle(); // the run failed: the result goes nowhere
      put(seq, { v });
    };
    const failed = (seq: number, item: I, e: unknown, w: number, t0: number): void => {
      if (w !== 0) c.busyMs += (now() - t0) * w;
      active--;
      if (signal.aborted) return stop(signal.reason); // the run stopped under this call: the stop, not the item's failure
      if (failure !== null) return finishIfIdle();
      c.errors++;
      if (deadLetter === undefined) {
        r.fail(e);
        return stop(e);
      }
      put(seq, { v: new Failed(item, e) });
    };
    const start = (seq: number, item: I): void => {
      c.in++;
      active++;
      const w = calls.take();
      const t0 = w === 0 ? 0 : calls.at;
      let p: unknown;
      try {
        p = fn(item, signal);
      } catch (e) {
        return failed(seq, item, e, w, t0);
      }
      if (!isThenable(p)) return done(seq, p, w, t0);
      p.then((v) => done(seq, v, w, t0), (e: unknown) => failed(seq, item, e, w, t0));
    };
    const received = (seq: number, got: RecvResult<I>): void => {
      receiving = false;
      if (signal.aborted) stop(signal.reason); // a link closes at an abort; an item taken then is not started
      else if (got.ok && failure === null) start(seq, got.value);
      else if (!got.ok) inputDone = true;
      if (failure !== null || !got.ok) put(seq, HOLE);
      fill();
    };
    const receiveFailed = (e: unknown): void => {
      receiving = false;
      stop(e);
    };
    // Takes items while the window has room: at once while the input has some, else parks one receive.
    const fill = (): void => {
      if (filling) return;
      filling = true;
      try {
        while (failure === null && !inputDone && !receiving && nextSeq - nextOut < n) {
          if (signal.aborted) {
            stop(signal.reason);
            break;
          }
          const got = input.tryRecv();
          if (got === undefined) {
            receiving = true;
            const seq = nextSeq++;
            input.recv().then((g) => received(seq, g), receiveFailed);
            break;
          }
          if (!got.ok) {
            inputDone = true;
            break;
          }
          start(nextSeq++, got.value);
        }
      } finally {
        filling = false;
      }
      finishIfIdle();
    };
    // Hands on the results ready at `nextOut`, in order, until one must wait for room.
    const emit = (): void => {
      if (emitting) return;
      emitting = true;
      for (let k = nextOut % n, e = ring[k]; e !== undefined; k = nextOut % n, e = ring[k]) {
        ring[k] = undefined;
        if (e !== HOLE && failure === null) {
          let d: Promise<void> | undefined;
          try {
            d = this.#handOn(r, m, e.v);
          } catch (err) {
            emitting = false;
            return stop(err);
          }
          if (d !== undefined) {
            d.then(handedOn, handOnFailed); // still emitting: the next result waits its turn
            return;
          }
        }
        nextOut++;
        fill();
      }
      emitting = false;
      finishIfIdle();
    };
    const handedOn = (): void => {
      m.unblock();
      emitting = false;
      nextOut++;
      fill();
      emit();
    };
    const handOnFailed = (e: unknown): void => {
      m.unblock();
      emitting = false;
      stop(e);
    };
    fill();
    return result;
  }

  /**
   * Hands one result on: a routed failure to the dead-letter channel, a value downstream.
   * Returns a promise only when that must wait (no promise, no async frame, on the fast path);
   * the caller awaits it, then calls `m.unblock()` (one resumption, not a chained callback too).
   */
  #handOn(r: StageRun<I, O>, m: Meter, v: unknown): Promise<void> | undefined {
    if (v instanceof Failed) {
      const f = v as Failed<I>;
      const letter: DeadLetter<I> = { item: f.item, error: f.error, stage: r.counters.name };
      return this.deadLetter!.trySend(letter) ? undefined : m.sendWatched(this.deadLetter!, letter);
    }
    r.counters.out++;
    return r.deliver(v as O, m);
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
