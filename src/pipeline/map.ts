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
import { Channel, NOTHING, type RecvResult } from "../core/channel.js";
import { ChannelClosedError } from "../core/errors.js";
import { checkFunction, checkInteger, given } from "../core/validate.js";
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

/**
 * Whether `e`, ending a stage early, fails the whole run: not when the run is already stopping
 * (its signal aborted), nor when the next stage stopped reading (its input, this stage's
 * output, closed under a send: a quiet stop, which the run tells apart itself).
 */
function failsRun(r: StageRun<unknown, unknown>, e: unknown): boolean {
  return !r.signal.aborted && !(e instanceof ChannelClosedError && r.output.closed);
}

/** A failure routed to the dead-letter channel, travelling through the pool's map in its item's place. */
class Failed<I> {
  constructor(
    readonly item: I,
    readonly error: unknown,
  ) {}
}

/**
 * How a concurrent map reads its input, one item at a time, for the window and for
 * `#discarding` alike: the item a parked receive got (`held`), else one the input has now,
 * else one parked receive, which calls `wake` when it gets an item or the input's end.
 *
 * Invariants: at most one receive is parked (`receiving`), and `next()` is not called while it
 * is, so nothing is taken past it and items come in input order. `ended` once the input is
 * closed and drained. A receive that settles after the run was stopped (`halt`) reports the stop.
 */
class Intake<I> {
  held: I | typeof NOTHING = NOTHING;
  receiving = false;
  ended = false;
  constructor(
    readonly input: Channel<I>,
    readonly r: StageRun<I, unknown>,
    readonly wake: () => void,
    readonly stop: (e: unknown) => void,
  ) {}

  /** The next item, or `NOTHING` (the input `ended`, or a receive is now parked); throws what the source's iterator threw. */
  next(): I | typeof NOTHING {
    const v = this.held;
    if (v !== NOTHING) {
      this.held = NOTHING;
      return v;
    }
    const t = this.input.take();
    if (t === NOTHING) {
      if (this.input.closed) {
        this.ended = true;
      } else {
        this.receiving = true;
        this.input.recv().then(this.#received, this.#failed);
      }
    }
    return t;
  }

  readonly #received = (got: RecvResult<I>): void => {
    this.receiving = false;
    if (this.r.halt.halted) this.stop(this.r.signal.reason); // a link closes at an abort; an item taken then is not started
    else if (!got.ok) this.ended = true;
    else this.held = got.value;
    this.wake();
  };

  readonly #failed = (e: unknown): void => {
    this.receiving = false;
    this.stop(e);
  };
}

class MapStage<I, O> extends Stage<I, O> {
  readonly fn: (item: I, signal: AbortSignal) => O | PromiseLike<O>;
  readonly concurrency: number | ConcurrencyLimit;
  readonly ordered: boolean;
  readonly deadLetter: Channel<DeadLetter<I>> | undefined;

  constructor(fn: (item: I, signal: AbortSignal) => O | PromiseLike<O>, options: MapStageOptions<I> | undefined) {
    super("map", options);
    this.fn = checkFunction(fn, "fn");
    const c = given(options?.concurrency, 1);
    this.concurrency = isConcurrencyLimit(c) ? c : checkInteger(c, "options.concurrency", 1);
    const ordered = given(options?.ordered, true);
    if (typeof ordered !== "boolean") throw new TypeError(`options.ordered must be a boolean, got ${typeof ordered}`);
    this.ordered = ordered;
    this.deadLetter = checkDeadLetter<I>(options?.deadLetter);
  }

  run(r: StageRun<I, O>): Promise<void> {
    if (this.concurrency === 1) return this.#serial(r);
    if (typeof this.concurrency === "number") {
      return r.discards && this.deadLetter === undefined ? this.#discarding(r, this.concurrency) : this.#window(r, this.concurrency);
    }
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
   *  - `nextSeq - nextOut <= n`: items started and not yet handed on. An item the `intake`
   *    holds (taken by its parked receive, not yet started) is not counted, but a receive parks only while
   *    `nextSeq - nextOut < n`, so it has room: at most n items are ever in the stage.
   *  - Items come from the `intake` (see `Intake`): at most one receive parked, nothing taken
   *    past it, the item it gets started next, so items start in input order.
   *  - Results not yet handed on wait in a ring of `cap` result slots (`vals`, `ready`):
   *    ordered, the result of sequence number s in slot s % cap; unordered, in settle order
   *    (the k-th result to settle, counted by `nextDone`, in slot k % cap). `cap` starts at
   *    min(n, 16) and doubles (up to n) when a call is about to start with `nextSeq - nextOut`
   *    at `cap`, moving the results waiting to their new slots, so the ring always has room for
   *    every item in the stage and a large n costs nothing until it is used. Results leave
   *    from slot `nextOut % cap` only, one hand-on at a time (`emitting`), which is what keeps
   *    input order when `ordered`.
   *  - A call in flight holds a call slot, taken from `free` when it starts and given back
   *    when it settles (a new slot only when none is free, so at most n are ever made, and only
   *    as many as ever ran at once). Slots do not follow sequence numbers, since unordered
   *    results are handed on past a call still running. Each has its two settle handlers, made
   *    once with it (a promise settles once, so a reused slot's old handlers never fire again).
   *  - The stage settles once nothing is running (`active`), parked (`intake.receiving`) or being handed
   *    on: resolves when the input ended and every result was handed on, else rejects with the
   *    first failure (the run's signal reason when the run stopped under it).
   *
   * Time: blocked time is the hand-on waits (the meter); busy time is the sum of the calls'
   * durations, timed on a sample of the calls (`WaitSampler`: every call with an injected clock,
   * about one in 64 when they come fast), so the clock is not read twice per item.
   */
  #window(r: StageRun<I, O>, n: number): Promise<void> {
    const { input, signal, halt, counters: c, now } = r;
    const { fn, deadLetter, ordered } = this;
    const m = new Meter(c, now, signal, false);
    const calls = new WaitSampler(now, c.idleSampler!.exact);
    // Result slots (see the invariants).
    let cap = Math.min(n, 16);
    let vals: unknown[] = new Array<unknown>(cap).fill(undefined);
    let ready = new Uint8Array(cap);
    // Doubles the ring (see the invariants); the results waiting keep their order.
    const grow = (): void => {
      const bigger = Math.min(n, cap * 2);
      const v2: unknown[] = new Array<unknown>(bigger).fill(undefined);
      const r2 = new Uint8Array(bigger);
      for (let i = nextOut, end = ordered ? nextSeq : nextDone; i < end; i++) {
        if (ready[i % cap] === 1) {
          v2[i % bigger] = vals[i % cap];
          r2[i % bigger] = 1;
        }
      }
      vals = v2;
      ready = r2;
      cap = bigger;
    };
    // Call slots, made only as calls come to overlap (at most n, and no more than ever ran at
    // once, so a large concurrency costs nothing until it is used): the call's sequence
    // number, the sample weight and start of its timing, its item (kept only to write a dead
    // letter), and its two settle handlers, made with the slot.
    const seqs: number[] = [];
    const weights: number[] = [];
    const starts: number[] = [];
    const items: (I | undefined)[] | null = deadLetter === undefined ? null : [];
    const onValue: ((v: unknown) => void)[] = [];
    const onError: ((e: unknown) => void)[] = [];
    const free: number[] = [];
    const slot = (): number => {
      if (free.length !== 0) return free.pop()!;
      const k = onValue.length;
      onValue.push((x) => done(k, x));
      onError.push((e) => failed(k, e));
      seqs.push(0);
      weights.push(0);
      starts.push(NaN); // a double from the start: the clock reads stored here never change the array's kind
      items?.push(undefined);
      return k;
    };
    let nextSeq = 0;
    let nextOut = 0;
    let nextDone = 0;
    let active = 0;
    let emitting = false;
    let filling = false;
    let failure: { error: unknown } | null = null;
    let settled = false;
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    const result = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });

    const finishIfIdle = (): void => {
      // After a failure a parked receive does not hold the stage: the run's abort (or, for a
      // quiet stop, the input's close by the run) wakes it, and it then takes nothing.
      if (settled || active !== 0 || emitting || (intake.receiving && failure === null)) return;
      if (failure !== null) {
        settled = true;
        m.end();
        reject(failure.error);
      } else if (intake.ended && nextOut === nextSeq && intake.held === NOTHING) {
        settled = true;
        m.end();
        resolve();
      }
    };
    // The first failure stops the window and fails the whole run (its signal aborts, every
    // link closes), so calls in flight hear of it and a parked receive wakes.
    const stop = (error: unknown): void => {
      if (failure === null) {
        failure = { error };
        if (failsRun(r, error)) r.fail(error);
      }
      finishIfIdle();
    };
    // A call ended: its timing counted, its call slot freed; the result slot its outcome takes.
    const ended = (k: number): number => {
      const w = weights[k]!;
      if (w !== 0) c.busyMs += (now() - starts[k]!) * w;
      active--;
      free.push(k);
      return (ordered ? seqs[k]! : nextDone++) % cap;
    };
    const done = (k: number, v: unknown): void => {
      const j = ended(k);
      if (items !== null) items[k] = undefined;
      if (failure !== null) return finishIfIdle(); // the run failed: the result goes nowhere
      vals[j] = v;
      ready[j] = 1;
      emit();
    };
    const failed = (k: number, e: unknown): void => {
      const j = ended(k);
      if (halt.halted) return stop(signal.reason); // the run stopped under this call: the stop, not the item's failure
      if (failure !== null) return finishIfIdle();
      c.errors++;
      if (items === null) return stop(e);
      vals[j] = new Failed(items[k] as I, e);
      items[k] = undefined;
      ready[j] = 1;
      emit();
    };
    const intake = new Intake(input, r, () => fill(), (e) => stop(e));
    // Starts items while the window has room: the held one, then as many as the input has at
    // once; when it has none, parks one receive.
    const fill = (): void => {
      if (filling) return;
      filling = true;
      try {
        while (failure === null && !intake.ended && !intake.receiving && nextSeq - nextOut < n) {
          if (halt.halted) {
            stop(signal.reason);
            break;
          }
          let v: I | typeof NOTHING;
          try {
            v = intake.next();
          } catch (e) {
            stop(e); // the source's iterator threw (a link that pulls from it)
            break;
          }
          if (v === NOTHING) break;
          // Start the call, in its call slot, with room in the ring for its result.
          if (nextSeq - nextOut === cap) grow();
          const k = slot();
          seqs[k] = nextSeq++;
          c.in++;
          active++;
          const w = calls.take();
          weights[k] = w;
          if (w !== 0) starts[k] = calls.at;
          if (items !== null) items[k] = v;
          let p: unknown;
          try {
            p = fn(v, signal);
          } catch (e) {
            failed(k, e);
            continue;
          }
          if (!isThenable(p)) {
            done(k, p);
            continue;
          }
          // A foreign thenable is adopted first: it may call back twice, or throw from then().
          (p instanceof Promise ? p : Promise.resolve(p)).then(onValue[k], onError[k]);
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
      for (let k = nextOut % cap; ready[k] === 1; k = nextOut % cap) {
        const v = vals[k];
        vals[k] = undefined;
        ready[k] = 0;
        if (failure === null) {
          let d: Promise<void> | undefined;
          try {
            d = this.#handOn(r, m, v);
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
   * Concurrency n where results go nowhere: the last stage under `run()`, without a dead-letter
   * channel (which a failure would have to wait on). There is no order to keep and no hand-on
   * to wait for, so a call that settles frees its slot at once and the next item starts in the
   * same step; an ordered window would instead stop starting items while a slow call holds its
   * head, with results behind it that were only going to be dropped.
   *
   * Invariants:
   *  - `active <= n`: calls in flight. An item is taken only while `active < n`, so at most n
   *    items are ever in the stage (an item the `intake` holds, taken by its parked receive and
   *    not yet started, has the room the receive parked with: nothing starts while it is parked).
   *  - A call is counted in `out` when it settles with a value (its result is handed on, to
   *    nowhere). Busy time is timed on a sample of the calls, as in `#window`: an untimed call
   *    settles through the two shared handlers, a timed one through handlers made for it.
   *  - The stage settles once nothing is running or parked: resolves when the input ended,
   *    else rejects with the first failure (the run's signal reason when the run stopped under it).
   */
  #discarding(r: StageRun<I, O>, n: number): Promise<void> {
    const { input, signal, halt, counters: c, now } = r;
    const fn = this.fn;
    const calls = new WaitSampler(now, c.idleSampler!.exact);
    let active = 0;
    let filling = false;
    let failure: { error: unknown } | null = null;
    let settled = false;
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    const result = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });

    const finishIfIdle = (): void => {
      if (settled || active !== 0 || (intake.receiving && failure === null)) return;
      if (failure !== null) {
        settled = true;
        reject(failure.error);
      } else if (intake.ended && intake.held === NOTHING) {
        settled = true;
        resolve();
      }
    };
    const stop = (error: unknown): void => {
      if (failure === null) {
        failure = { error };
        if (failsRun(r, error)) r.fail(error);
      }
      finishIfIdle();
    };
    const done = (): void => {
      active--;
      if (failure !== null) return finishIfIdle(); // the run failed: the result would go nowhere anyway
      c.out++;
      fill();
    };
    const failed = (e: unknown): void => {
      active--;
      if (halt.halted) return stop(signal.reason); // the run stopped under this call: the stop, not the item's failure
      if (failure !== null) return finishIfIdle();
      c.errors++;
      stop(e);
    };
    const intake = new Intake(input, r, () => fill(), (e) => stop(e));
    // Starts items while fewer than n run: the held one, then as many as the input has at once;
    // when it has none, parks one receive.
    const fill = (): void => {
      if (filling) return;
      filling = true;
      try {
        while (failure === null && !intake.ended && !intake.receiving && active < n) {
          if (halt.halted) {
            stop(signal.reason);
            break;
          }
          let v: I | typeof NOTHING;
          try {
            v = intake.next();
          } catch (e) {
            stop(e); // the source's iterator threw (a link that pulls from it)
            break;
          }
          if (v === NOTHING) break;
          c.in++;
          active++;
          const w = calls.take();
          let p: unknown;
          try {
            p = fn(v, signal);
          } catch (e) {
            if (w !== 0) c.busyMs += (now() - calls.at) * w;
            failed(e);
            continue;
          }
          if (!isThenable(p)) {
            if (w !== 0) c.busyMs += (now() - calls.at) * w;
            done();
            continue;
          }
          // A foreign thenable is adopted first: it may call back twice, or throw from then().
          const q = p instanceof Promise ? p : Promise.resolve(p);
          if (w === 0) {
            q.then(done, failed);
          } else {
            const t = calls.at;
            q.then(
              () => {
                c.busyMs += (now() - t) * w;
                done();
              },
              (e: unknown) => {
                c.busyMs += (now() - t) * w;
                failed(e);
              },
            );
          }
        }
      } finally {
        filling = false;
      }
      finishIfIdle();
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
    } catch (e) {
      // Fail the run now: the drain below waits for a step that may be parked on the input.
      if (failsRun(r, e)) r.fail(e);
      throw e;
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
 * `ordered` (the default) hands results on in input order, so with a numeric concurrency a slow
 * call holds back the items behind it: no more than `concurrency` start past the oldest result
 * not yet handed on. Where results go nowhere (the last stage under `run()`, without a
 * `deadLetter`) there is no order to keep: a call that ends frees its slot at once, whatever
 * the others are doing.
 *
 * @example
 * pipeline(ids, map(async (id, signal) => fetchUser(id, { signal }), { concurrency: 8 }))
 */
export function map<I, O>(fn: (item: I, signal: AbortSignal) => O | PromiseLike<O>, options?: MapStageOptions<I>): Stage<I, Awaited<O>> {
  return new MapStage<I, Awaited<O>>(fn as (item: I, signal: AbortSignal) => Awaited<O>, options);
}
