/**
 * Pool: a bounded worker pool with the three admission verbs of seed 003 (submit, trySubmit,
 * run), an overflow policy, watermarks, and strict concurrency.
 *
 * A "worker" on an event loop is a slot: at most `concurrency` user functions run at once.
 * Work that cannot start waits in a bounded FIFO `queue` (accepted, not started); when that is
 * full, the `overflow` policy decides: "block" parks the submitter (FIFO, in `waiters`),
 * "reject" refuses with `BusyError`, "drop-oldest" drops the oldest queued task to make room.
 *
 * Invariants:
 *  - `running` counts user functions started and not yet settled. A slot is freed only when
 *    the function itself settles, never when its caller gives up (an aborted `run` caller is
 *    answered at once, but its function keeps its slot until it settles). So `running` never
 *    exceeds the concurrency, except after the concurrency was lowered (running work is never
 *    killed; new work waits until `running` is below the new value).
 *  - `queue.length <= queueSize` always; `waiters` is non-empty only while the queue is full
 *    (or a map step waits for a slot), and no slot is free: admission is strictly FIFO, a new
 *    submit never overtakes a parked one.
 *  - After every step, if a slot is free then the queue is empty (`pump` starts queued work as
 *    soon as a slot frees; re-entrant settles during `pump` are folded into its loop).
 *  - Every task handed to the pool ends in exactly one of: completed, failed (its function
 *    settled), rejected (refused admission), dropped (drop-oldest; never ran), aborted
 *    (withdrawn before running, by its caller's signal or `abort()`). The counters say so.
 *  - A task's state only moves forward: WAITING -> QUEUED -> RUNNING -> DONE (any step may be
 *    skipped, none repeated), and it is linked into at most one of `waiters`/`queue`.
 */
import { RESOLVED, WaitQueue, parkUntilWoken, wakeAll, type Waiter, type WakeQueue } from "../core/waitq.js";
import { Abortable, abortPending, unwatchAbort, watchAbort } from "../core/abort.js";
import { BusyError } from "../core/errors.js";
import { checkClock, systemClock, type Clock } from "../core/clock.js";
import { checkDuration, checkFunction, checkInteger, checkLimit, checkName, checkOptions, given, signalOf } from "../core/validate.js";
import type { WaitOptions } from "../core/channel.js";
import { observe } from "../core/registry.js";
import { dropChannel, publishDrop, publishReject, rejectChannel } from "../core/events.js";
import { DroppedError, PoolClosedError } from "./errors.js";
import { isConcurrencyLimit, type ConcurrencyLimit, type LimitSample } from "./concurrency-limit.js";
import { Summary, type SummarySnapshot } from "./summary.js";
import { PoolMap, type MapOptions } from "./pool-map.js";

/** A unit of work: receives a signal that fires on `pool.abort()` or (for `run`) its caller's abort. */
export type Task<R = unknown> = (signal: AbortSignal) => R | PromiseLike<R>;

/** What a full pool does with new work. */
export type Overflow = "block" | "reject" | "drop-oldest";

/** Dynamic concurrency: grow up to `max` when work would have to wait, shrink toward `min` after `idleMs` without need. */
export interface DynamicConcurrency {
  min: number;
  max: number;
}

/** Options of `new Pool(options)`. */
export interface PoolOptions {
  /**
   * How many functions may run at once: a positive safe integer; or `{ min, max }` (dynamic);
   * or a `ConcurrencyLimit` such as an `AdaptiveLimit`. `Infinity` is refused.
   */
  concurrency: number | DynamicConcurrency | ConcurrencyLimit;
  /** Accepted tasks that may wait for a slot (a non-negative safe integer, default 0: hand off or wait). */
  queue?: number;
  /** When the queue is full: "block" (default; submitters wait, FIFO), "reject" (`BusyError`), "drop-oldest". */
  overflow?: Overflow;
  /** Used in errors, warnings, reports and stats. */
  name?: string;
  /** At most this many submitters may be blocked at once (default Infinity); past it, `BusyError`. */
  maxWaiting?: number;
  /** Warn once (`SLUICE_PARKED_WAITERS`) when more than this many submitters are blocked (default 1000 if `maxWaiting` is unset). */
  warnWaiting?: number;
  /** Queue depth at which `onHighWater` fires (a positive safe integer <= queue). */
  highWater?: number;
  /** Queue depth at or below which `onLowWater` fires after a high-water mark (default `floor(highWater / 2)`). */
  lowWater?: number;
  /** Called once each time the queue depth reaches `highWater`: pause your source. */
  onHighWater?: () => void;
  /** Called once each time the depth falls back to `lowWater` after a high-water mark: resume it. */
  onLowWater?: () => void;
  /** Dynamic mode: how long slots must go unneeded before the pool shrinks (ms, default 10 000). */
  idleMs?: number;
  /**
   * Where failures of tasks accepted by `submit`/`trySubmit` go (their callers have no promise
   * to receive them). Default: a `SLUICE_TASK_FAILED` process warning (at most one a second per
   * pool, counting the ones it left out). Every failure is also counted in `stats.failed`.
   */
  onError?: (error: unknown) => void;
  /** Where wait and run times are measured, and dynamic idle time is timed (default: the default clock). */
  clock?: Clock;
}

/** A fresh snapshot of a pool's counters. */
export interface PoolStats {
  readonly name: string;
  /** The concurrency now (for a dynamic or adaptive pool, its current value). */
  readonly concurrency: number;
  /** Accepted and not started. */
  readonly queued: number;
  /** Functions started and not yet settled (even if their caller left). */
  readonly running: number;
  /** Submitters blocked waiting for admission now. */
  readonly waiting: number;
  /** Functions that fulfilled. */
  readonly completed: number;
  /** Functions that threw or rejected. */
  readonly failed: number;
  /** Tasks refused admission (`BusyError`, `trySubmit` false, closed pool). */
  readonly rejected: number;
  /** Queued tasks dropped by "drop-oldest" (never ran). */
  readonly dropped: number;
  /** Tasks withdrawn before running (caller's abort, or `abort()`). */
  readonly aborted: number;
  /** Submissions that had to block before being accepted. */
  readonly waited: number;
  /**
   * From submission to start, of started tasks (ms). With an injected clock every task is timed;
   * with the real clock a sample (a clock read costs about as much as a small task): every task
   * while they come slower than one a millisecond, about one a millisecond when faster.
   */
  readonly waitTime: SummarySnapshot;
  /** From start to settle (ms); sampled as `waitTime` is. */
  readonly runTime: SummarySnapshot;
  /** Whether the queue is above its high-water mark (between `onHighWater` and `onLowWater`). */
  readonly aboveHighWater: boolean;
}

const WAITING = 0;
const QUEUED = 1;
const RUNNING = 2;
const DONE = 3;

/**
 * @internal A task handed to the pool, from admission to settlement. Flat (it implements
 * `Waiter` rather than extending it): one is allocated per task.
 */
export class PoolTask implements Waiter {
  prev: Waiter | null = null;
  next: Waiter | null = null;
  queue: WaitQueue<Waiter> | null = null;
  abortPrev: Abortable | null = null;
  abortNext: Abortable | null = null;
  abortList: Abortable["abortList"] = null;
  state = -1;
  /** Whether this task's wait and run times are measured (see `#timeAll`). */
  timed = false;
  submittedAt = 0;
  startedAt = 0;
  /** The caller's signal: withdraws the task while it waits or is queued; for `run`, also aborts it while running. */
  callerSignal: AbortSignal | undefined = undefined;
  /** The task's own controller (a `run` with a signal): fires on the caller's or the pool's abort. */
  controller: AbortController | null = null;
  /** A signal given to the function instead of the pool's (map steps). */
  taskSignal: AbortSignal | null = null;
  /** A blocked submitter's resolve / reject. */
  accepted: (() => void) | null = null;
  refused: ((e: unknown) => void) | null = null;
  /** A `run`/map caller's continuation; null for `submit` tasks and once the caller left. */
  result: ((ok: boolean, value: unknown) => void) | null = null;
  /** Whether the caller left (aborted) while the function ran: its outcome goes nowhere. */
  detached = false;
  /** Counted in the stats (a map step is counted only once it pulled an item). */
  counted = true;
  /**
   * A map step's map and entry (null for other tasks; cleared once answered). A step always
   * blocks for admission and is run and answered through its owner.
   */
  owner: StepOwner | null = null;
  entry: unknown = undefined;
  link: PoolLink | null = null;
  sample: LimitSample | null = null;

  constructor(
    readonly pool: Pool,
    readonly fn: Task,
  ) {}

  onAbort(reason: unknown): void {
    this.pool.callerAborted(this, reason);
  }
}

/**
 * @internal What runs map steps (a PoolMap). The pool calls it directly, so a step costs no
 * closures: `runStep` pulls the item and calls the user's function (setting `task.counted` once
 * it has an item), `stepAccepted` follows admission, `stepSettled` the outcome (once).
 */
export interface StepOwner {
  runStep(entry: unknown, signal: AbortSignal, task: PoolTask): unknown;
  stepAccepted(entry: unknown): void;
  stepSettled(entry: unknown, ok: boolean, value: unknown): void;
}

const NO_TASK: Task = () => undefined;

/** Follows the pool's signal for a task that has its own controller. */
class PoolLink extends Abortable {
  constructor(readonly controller: AbortController) {
    super();
  }
  onAbort(reason: unknown): void {
    this.controller.abort(reason);
  }
}

const perfNow = performance.now.bind(performance);
/** The sampling stride's bound: at least one task in 1024 is timed. */
const MAX_STRIDE = 1024;

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === "object" || typeof v === "function") && typeof (v as PromiseLike<unknown>).then === "function";
}

function isOverload(e: unknown): boolean {
  if (e instanceof BusyError || e instanceof DroppedError) return true;
  const name = (e as { name?: unknown } | null)?.name;
  return name === "TimeoutError";
}

/**
 * A bounded worker pool.
 *
 * What waits: `submit` and `run` wait for admission when the pool is full and `overflow` is
 * "block" (FIFO; `{ signal }` bounds the wait; `AbortSignal.timeout(ms)` is a deadline);
 * `drain` waits for all work. What is bounded: running functions (`concurrency`), accepted
 * tasks waiting (`queue`), and, when set, blocked submitters (`maxWaiting`). When full: block,
 * reject with `BusyError`, or drop the oldest queued task (`DroppedError` to its `run` caller).
 * When closed: new work is refused with `PoolClosedError`; work offered before still runs.
 *
 * @example
 * const pool = new Pool({ concurrency: 8, queue: 100, overflow: "reject", name: "thumbnails" });
 * if (!pool.trySubmit((signal) => render(img, signal))) return reply503();
 * await pool.submit(task, { signal: AbortSignal.timeout(50) }); // submit with a deadline
 * const size = await pool.run((signal) => measure(img, signal)); // wait for the result
 */
export class Pool implements AsyncDisposable {
  readonly #name: string;
  readonly #queueSize: number;
  readonly #overflow: Overflow;
  readonly #queue: WaitQueue<PoolTask>;
  readonly #waiters: WaitQueue<PoolTask>;
  readonly #drainers: WakeQueue;
  readonly #maxWaiting: number;
  readonly #controller = new AbortController();
  /** The controller's signal, read once (Node's getters validate `this` on every read). */
  readonly #signal = this.#controller.signal;
  /** Whether `abort()` was called (a plain field: read on every pump). */
  #isAborted = false;
  readonly #clock: Clock;
  readonly #now: () => number;
  /**
   * Time every task (an injected clock: tests want exact figures), or a sample (the real clock:
   * a clock read costs about as much as a whole small task, so timing every task would double
   * the pool's overhead). The sample adapts its stride so that about one task per millisecond
   * at most is timed: every task while tasks arrive slower than that, one in up to 1024 when
   * they arrive by the hundreds of thousands per second.
   */
  readonly #timeAll: boolean;
  /** Untimed tasks to skip before the next timed one, and the stride it is reset to. */
  #countdown = 1;
  #stride = 1;
  /** When the last timed task was submitted (ms, real clock). */
  #sampledAt = -Infinity;
  /**
   * A sample `claimSlot` drew and gave up (it declines timed steps): the `admitStep` that follows
   * takes it, so sampled map steps are timed like any other task.
   */
  #owedSample = false;
  readonly #onError: ((error: unknown) => void) | undefined;
  #closed = false;
  #running = 0;
  #pumping = false;

  // Concurrency: fixed (min === max), dynamic (min < max), or adaptive.
  #adaptive: ConcurrencyLimit | null = null;
  #unsubscribe: (() => void) | null = null;
  #current: number;
  #min: number;
  #max: number;
  readonly #idleMs: number;
  #idleTimer: unknown = undefined;
  #lastBusy = 0;

  // Watermarks.
  readonly #highWater: number;
  readonly #lowWater: number;
  readonly #onHighWater: (() => void) | undefined;
  readonly #onLowWater: (() => void) | undefined;
  #above = false;

  // Counters.
  #completed = 0;
  #failed = 0;
  #rejected = 0;
  /** Of `#rejected`: refused because the pool was closed, and because maxWaiting submitters already waited (the rest: the queue was full). */
  #rejectedClosed = 0;
  #rejectedWaiting = 0;
  #dropped = 0;
  #aborted = 0;
  readonly #waitTime = new Summary();
  readonly #runTime = new Summary();
  #lastWarn = -Infinity;
  #unwarned = 0;

  constructor(options: PoolOptions) {
    if (options === null || typeof options !== "object") throw new TypeError("options must be an object with a concurrency");
    const name = checkName(options.name);
    this.#name = name ?? "pool";
    const c = options.concurrency;
    if (isConcurrencyLimit(c)) {
      this.#adaptive = c;
      this.#current = this.#min = this.#max = 0;
    } else {
      const [min, max] = checkConcurrency(c);
      this.#min = min;
      this.#max = max;
      this.#current = min;
    }
    if (options.queue === Infinity) throw new RangeError("options.queue must be a non-negative safe integer, got Infinity: sluice has no unbounded queue");
    this.#queueSize = checkInteger(given(options.queue, 0), "options.queue", 0);
    const overflow = given(options.overflow, "block");
    if (overflow !== "block" && overflow !== "reject" && overflow !== "drop-oldest") {
      throw new TypeError(`options.overflow must be "block", "reject" or "drop-oldest", got ${JSON.stringify(overflow)}`);
    }
    this.#overflow = overflow;
    this.#maxWaiting = checkLimit(given(options.maxWaiting, Infinity), "options.maxWaiting", 0);
    const warn = given(options.warnWaiting, this.#maxWaiting === Infinity ? 1000 : Infinity);
    this.#clock = checkClock(options.clock);
    this.#timeAll = this.#clock !== systemClock;
    this.#now = this.#timeAll ? () => this.#clock.now() : perfNow;
    this.#idleMs = checkDuration(given(options.idleMs, 10_000), "options.idleMs");
    this.#onError = options.onError === undefined ? undefined : checkFunction(options.onError, "options.onError");
    [this.#highWater, this.#lowWater] = checkWatermarks(options, this.#queueSize);
    this.#onHighWater = options.onHighWater === undefined ? undefined : checkFunction(options.onHighWater, "options.onHighWater");
    this.#onLowWater = options.onLowWater === undefined ? undefined : checkFunction(options.onLowWater, "options.onLowWater");
    this.#queue = new WaitQueue(this, "queued task", Infinity, "SLUICE_PARKED_WAITERS");
    this.#waiters = new WaitQueue(this, "submit", checkLimit(warn, "options.warnWaiting", 0), "SLUICE_PARKED_WAITERS");
    this.#drainers = new WaitQueue(this, "drain", 1000, "SLUICE_PARKED_WAITERS");
    if (this.#adaptive !== null) this.#unsubscribe = this.#adaptive.subscribe(() => this.#pump());
    observe("pool", this, name !== undefined);
  }

  /** The pool's name (default "pool"). */
  get name(): string {
    return this.#name;
  }

  /** The concurrency now (for a dynamic or adaptive pool, its current value). */
  get concurrency(): number {
    return this.#adaptive !== null ? this.#adaptive.limit : this.#current;
  }

  /** Functions started and not yet settled. */
  get running(): number {
    return this.#running;
  }

  /** Accepted tasks not yet started. */
  get queued(): number {
    return this.#queue.length;
  }

  /** The queue's capacity: how many accepted tasks may wait for a slot (the `queue` option). */
  get queueSize(): number {
    return this.#queueSize;
  }

  /** Whether `close()` or `abort()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * @internal `stats.rejected` by reason, for `sluice/metrics`: `queueFull` (the queue was full:
   * overflow "reject", or `trySubmit` on a full pool), `maxWaiting` (that many submitters
   * already waited), `closed`. They add up to `stats.rejected`.
   */
  get rejectedByReason(): { queueFull: number; maxWaiting: number; closed: number } {
    const closed = this.#rejectedClosed;
    const maxWaiting = this.#rejectedWaiting;
    return { queueFull: this.#rejected - closed - maxWaiting, maxWaiting, closed };
  }

  /** A fresh snapshot of the counters. */
  get stats(): PoolStats {
    return {
      name: this.#name,
      concurrency: this.concurrency,
      queued: this.#queue.length,
      running: this.#running,
      waiting: this.#waiters.length,
      completed: this.#completed,
      failed: this.#failed,
      rejected: this.#rejected,
      dropped: this.#dropped,
      aborted: this.#aborted,
      waited: this.#waiters.parkedTotal,
      waitTime: this.#waitTime.snapshot(),
      runTime: this.#runTime.snapshot(),
      aboveHighWater: this.#above,
    };
  }

  /**
   * Hands `task` to the pool and resolves once it is accepted (started, or queued). Its failure
   * later goes to `onError` (and `stats.failed`), never to this promise.
   *
   * Waits only with `overflow: "block"` and a full pool, FIFO; `signal` bounds that wait and
   * nothing after. Rejects, the task never running: `signal.reason` (an already-aborted signal
   * wins over a full or closed pool); `BusyError` ("reject", or "drop-oldest" with nothing to
   * drop, or `maxWaiting` reached); `PoolClosedError`; `TypeError` if `task` is not a function.
   *
   * @example
   * for await (const msg of broker) await pool.submit((signal) => handle(msg, signal)); // backpressure
   */
  submit(task: Task, options?: WaitOptions): Promise<void> {
    let signal: AbortSignal | undefined;
    try {
      if (options !== undefined) signal = signalOf(options);
      if (signal?.aborted) {
        this.#aborted++; // an aborted signal wins over everything, even a full or closed pool
        return Promise.reject(signal.reason);
      }
      checkFunction(task, "task");
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.#closed) {
      this.#rejected++;
      this.#rejectedClosed++;
      if (rejectChannel.hasSubscribers) publishReject("pool", this, "closed");
      return Promise.reject(this.#closedError());
    }
    const timed = this.#sampleNext();
    if (!timed && this.#startNow()) {
      this.#startPlain(task);
      return RESOLVED;
    }
    const t = this.#task(task, timed);
    if (this.#admitNow(t) || this.#dropToAdmit(t)) return RESOLVED;
    const refusal = this.#refusal();
    if (refusal !== null) return Promise.reject(refusal);
    return new Promise<void>((resolve, reject) => {
      t.accepted = resolve;
      t.refused = reject;
      this.#park(t, signal);
    });
  }

  /**
   * Hands `task` to the pool only if it can be accepted now (started, queued, or, with
   * "drop-oldest", queued in place of the oldest). Returns at once: false when it would have to
   * wait or is refused (counted in `stats.rejected`). Failures go where `submit`'s go.
   *
   * @throws TypeError if `task` is not a function.
   */
  trySubmit(task: Task): boolean {
    checkFunction(task, "task");
    if (!this.#closed) {
      const timed = this.#sampleNext();
      if (!timed && this.#startNow()) {
        this.#startPlain(task);
        return true;
      }
      const t = this.#task(task, timed);
      if (this.#admitNow(t) || this.#dropToAdmit(t)) return true;
    }
    this.#rejected++;
    if (this.#closed) this.#rejectedClosed++;
    if (rejectChannel.hasSubscribers) publishReject("pool", this, this.#closed ? "closed" : "try");
    return false;
  }

  /**
   * Runs `task` in the pool and settles with its outcome. Admission is as for `submit` (waits
   * when full with "block"; `BusyError` with "reject"; with "drop-oldest" it may be dropped
   * later while queued: then `DroppedError`).
   *
   * `signal` covers the whole call: while waiting or queued, an abort withdraws the task (it
   * never runs); while it runs, an abort fires the task's signal and rejects at once with the
   * reason, but the slot stays taken until the function settles.
   *
   * @example
   * const thumb = await pool.run((signal) => resize(image, signal), { signal: req.signal });
   */
  run<R>(task: Task<R>, options?: WaitOptions): Promise<Awaited<R>> {
    let signal: AbortSignal | undefined;
    try {
      signal = signalOf(options);
      if (signal?.aborted) {
        this.#aborted++; // an aborted signal wins over everything, even a full or closed pool
        return Promise.reject(signal.reason);
      }
      checkFunction(task, "task");
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.#closed) {
      this.#rejected++;
      this.#rejectedClosed++;
      if (rejectChannel.hasSubscribers) publishReject("pool", this, "closed");
      return Promise.reject(this.#closedError());
    }
    return new Promise<Awaited<R>>((resolve, reject) => {
      const t = this.#task(task, this.#sampleNext());
      t.result = (ok, value) => (ok ? resolve(value as Awaited<R>) : reject(value));
      if (signal !== undefined) {
        t.callerSignal = signal;
        watchAbort(signal, t);
      }
      if (this.#admitNow(t) || this.#dropToAdmit(t)) return;
      const refusal = this.#refusal();
      if (refusal === null) return this.#park(t, undefined);
      unwatchAbort(t);
      t.result = null;
      reject(refusal);
    });
  }

  /**
   * Maps `source` through `fn` in this pool and yields the results (in input order by default;
   * `ordered: false` yields them as they complete). It pulls the next item only when a slot is
   * free (nothing is read ahead), and never holds more than `concurrency` items pulled but not
   * yet consumed: a slow consumer stops the pulling. Steps wait for slots FIFO with other work,
   * whatever the overflow policy.
   *
   * `fn(item, signal)`: `signal` fires when the iteration ends early (break, error, `signal`
   * abort) or the pool aborts. The first failure (of `fn` or of the source) is thrown at its
   * position; the iteration then stops: work in flight is signalled and the source is closed.
   *
   * @example
   * for await (const page of pool.map(urls, (url, signal) => fetch(url, { signal }))) save(page);
   */
  map<I, R>(
    source: Iterable<I> | AsyncIterable<I>,
    fn: (item: I, signal: AbortSignal) => R | PromiseLike<R>,
    options?: MapOptions,
  ): AsyncIterableIterator<Awaited<R>> {
    checkFunction(fn, "fn");
    checkOptions(options);
    const signal = signalOf(options);
    const ordered = given(options?.ordered, true);
    if (typeof ordered !== "boolean") throw new TypeError("options.ordered must be a boolean");
    return new PoolMap<I, Awaited<R>>(this, source, fn as (item: I, signal: AbortSignal) => unknown, ordered, signal, this.#signal);
  }

  /**
   * Resolves once nothing is queued, running or blocked (at once if so now). Does not close the
   * pool. Rejects with `signal.reason` if the signal aborts first.
   */
  drain(options?: WaitOptions): Promise<void> {
    let signal: AbortSignal | undefined;
    try {
      signal = signalOf(options);
    } catch (e) {
      return Promise.reject(e);
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#idle()) return RESOLVED;
    return parkUntilWoken(this.#drainers, signal);
  }

  /**
   * Stops accepting new work: later `submit`/`trySubmit`/`run`/`map` calls are refused with
   * `PoolClosedError`. Work offered before the close goes on: queued and running tasks, and
   * submitters still blocked (they are admitted as room frees, as before). `await pool.drain()`
   * waits for all of it; `abort()` is the way to refuse it. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#settleIdle();
  }

  /**
   * Closes the pool, rejects queued tasks' and blocked callers with `reason` (counted as
   * aborted; those tasks never run), and fires the signal of every running task. Running
   * functions keep their slots until they settle; `drain()` waits for them. Idempotent.
   */
  abort(reason?: unknown): void {
    if (this.#isAborted) return;
    this.#isAborted = true;
    this.#closed = true;
    this.#controller.abort(reason);
    const r: unknown = this.#signal.reason;
    for (let t = this.#waiters.shift(); t !== null; t = this.#waiters.shift()) {
      if (t.counted) this.#aborted++;
      this.#refuse(t, r);
    }
    for (let t = this.#queue.shift(); t !== null; t = this.#queue.shift()) {
      if (t.counted) this.#aborted++;
      this.#refuse(t, r);
    }
    this.#water();
    this.#settleIdle();
  }

  /** Changes the concurrency: a number (fixed) or `{ min, max }` (dynamic). Starts queued work if it grew. */
  resize(concurrency: number | DynamicConcurrency): void {
    if (this.#adaptive !== null) throw new TypeError("resize: this pool's concurrency is an adaptive limit; it sizes itself");
    const [min, max] = checkConcurrency(concurrency, "concurrency");
    this.#min = min;
    this.#max = max;
    this.#current = Math.min(max, Math.max(min, this.#current));
    this.#pump();
    this.#idleCheck();
  }

  /** `await using pool = new Pool(...)`: closes the pool and waits for its work. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.drain();
  }

  /** @internal */
  describe(): string {
    return `pool ${JSON.stringify(this.#name)} (concurrency ${this.concurrency}, queue ${this.#queueSize})`;
  }

  /**
   * @internal Admits a map step for `owner`: it always blocks for a slot (whatever the overflow
   * policy), is not counted until the owner marks it, and its signal withdraws it while it waits.
   */
  admitStep(owner: StepOwner, entry: unknown, signal: AbortSignal): void {
    if (this.#closed) {
      owner.stepAccepted(entry);
      owner.stepSettled(entry, false, this.#closedError());
      return;
    }
    const owed = this.#owedSample;
    this.#owedSample = false;
    const t = this.#task(NO_TASK, owed || this.#sampleNext());
    t.counted = false;
    t.owner = owner;
    t.entry = entry;
    t.taskSignal = signal;
    t.callerSignal = signal;
    watchAbort(signal, t);
    if (this.#admitNow(t)) return owner.stepAccepted(entry);
    this.#park(t, undefined);
  }

  /**
   * @internal A map step's fast path: takes a slot now, counted as running, if one is free and
   * nobody waits before it, in an open pool with a fixed or dynamic concurrency; the caller then
   * runs its item itself and calls `releaseSlot`. False when the step must go through
   * `admitStep` instead (no slot, waiters, closed, an adaptive limit, or a task to be timed).
   */
  claimSlot(): boolean {
    if (this.#closed || this.#adaptive !== null || !this.#startNow()) return false;
    if (this.#sampleNext()) {
      this.#owedSample = true;
      return false;
    }
    this.#running++;
    if (this.#min !== this.#max) this.#idleCheck();
    return true;
  }

  /** @internal A map step (run as a task) pulled its item: its work starts now, and so does its adaptive-limit sample. */
  itemStarted(t: PoolTask): void {
    if (this.#adaptive !== null && t.sample === null && t.state === RUNNING) t.sample = this.#adaptive.start();
  }

  /** @internal Frees a slot taken by `claimSlot`; `counted`: the step ran an item (completed if `ok`, else failed). */
  releaseSlot(counted: boolean, ok: boolean): void {
    this.#running--;
    if (counted) {
      if (ok) this.#completed++;
      else this.#failed++;
    }
    this.#afterRelease();
  }

  /** @internal The caller's signal aborted: withdraw the task, or (running) detach its caller. */
  callerAborted(t: PoolTask, reason: unknown): void {
    if (t.state === WAITING || t.state === QUEUED) {
      const wasQueued = t.state === QUEUED;
      (wasQueued ? this.#queue : this.#waiters).remove(t);
      if (t.counted) this.#aborted++;
      this.#refuse(t, reason);
      if (wasQueued) {
        this.#water();
        this.#pump();
      }
      this.#settleIdle();
    } else if (t.state === RUNNING) {
      t.controller?.abort(reason);
      t.detached = true;
      this.#answer(t, false, reason);
    }
  }

  /** Tells a task's caller how it ended, once; false when nobody listens (a submit's task). */
  #answer(t: PoolTask, ok: boolean, value: unknown): boolean {
    const owner = t.owner;
    if (owner !== null) {
      const entry = t.entry;
      t.owner = null;
      t.entry = undefined;
      owner.stepSettled(entry, ok, value);
      return true;
    }
    const result = t.result;
    if (result === null) return false;
    t.result = null;
    result(ok, value);
    return true;
  }

  // ---- admission ----

  /**
   * Whether the next task is one whose wait and run times are measured (see `#timeAll`). When
   * it is, its submission time is read here, once, and left in `#sampledAt`.
   */
  #sampleNext(): boolean {
    if (this.#timeAll) {
      this.#sampledAt = this.#now();
      return true;
    }
    if (--this.#countdown > 0) return false;
    const now = perfNow();
    const gap = now - this.#sampledAt;
    this.#sampledAt = now;
    if (gap < 1) {
      if (this.#stride < MAX_STRIDE) this.#stride *= 2;
    } else if (gap > 4 && this.#stride > 1) this.#stride >>= 1;
    this.#countdown = this.#stride;
    return true;
  }

  #task(fn: Task, timed: boolean): PoolTask {
    const t = new PoolTask(this, fn);
    if (timed) {
      t.timed = true;
      t.submittedAt = this.#sampledAt;
    }
    return t;
  }

  /** Whether work offered now may start at once: a slot is free and nobody waits before it. */
  #startNow(): boolean {
    return this.#waiters.length === 0 && this.#queue.length === 0 && this.#slotFree();
  }

  /** Starts or queues `t` if that needs no waiting and nobody waits before it. */
  #admitNow(t: PoolTask): boolean {
    if (this.#waiters.length > 0) return false;
    if (this.#queue.length === 0 && this.#slotFree()) {
      this.#start(t);
      return true;
    }
    if (this.#queue.length < this.#queueSize) {
      this.#enqueue(t);
      this.#pump();
      return true;
    }
    return false;
  }

  /** "drop-oldest": queues `t` in place of the oldest queued task, if there is one. */
  #dropToAdmit(t: PoolTask): boolean {
    if (this.#overflow !== "drop-oldest" || this.#waiters.length > 0) return false;
    const old = this.#queue.shift();
    if (old === null) return false;
    if (old.counted) {
      this.#dropped++;
      if (dropChannel.hasSubscribers) publishDrop("pool", this, "drop-oldest");
    }
    this.#refuse(old, new DroppedError(`task dropped from ${this.describe()} to make room for newer work`));
    this.#enqueue(t);
    return true;
  }

  /** Why a task that cannot be admitted now must not wait; null when it may ("block"). */
  #refusal(): BusyError | null {
    if (this.#overflow === "block" && this.#waiters.length < this.#maxWaiting) return null;
    this.#rejected++;
    if (this.#overflow === "block") this.#rejectedWaiting++;
    if (rejectChannel.hasSubscribers) publishReject("pool", this, this.#overflow === "block" ? "maxWaiting" : "queueFull");
    const why = this.#overflow === "block" ? `maxWaiting ${this.#maxWaiting} submitters already wait` : "queue is full";
    return new BusyError(`${this.describe()} is full: ${why}`, { retryAfterMs: this.#retryAfter() });
  }

  /** An estimate of when a slot may be free: the queued work ahead, at the mean run time. */
  #retryAfter(): number | undefined {
    if (this.#runTime.count === 0) return undefined;
    const c = Math.max(1, this.concurrency);
    return Math.ceil(this.#runTime.mean * (this.#queue.length / c + 1));
  }

  #park(t: PoolTask, signal: AbortSignal | undefined): void {
    t.state = WAITING;
    this.#waiters.push(t);
    if (signal !== undefined) {
      t.callerSignal = signal;
      watchAbort(signal, t);
    }
  }

  readonly #startTask = (t: PoolTask): void => this.#start(t);
  readonly #enqueueTask = (t: PoolTask): void => this.#enqueue(t);

  #enqueue(t: PoolTask): void {
    t.state = QUEUED;
    this.#queue.push(t);
    this.#water();
  }

  /** Ends a task that never ran: answers its submitter or caller with `error`. */
  #refuse(t: PoolTask, error: unknown): void {
    t.state = DONE;
    unwatchAbort(t);
    const refused = t.refused;
    t.accepted = t.refused = null;
    refused?.(error);
    this.#answer(t, false, error);
  }

  /**
   * Admits a blocked submitter: `place` starts or queues it, then its `submit` resolves (a
   * `submit`'s signal stops mattering first). Acceptance is announced only after the task is in
   * place, so that whatever the announcement triggers (a map creating its next step) comes after.
   */
  #accept(t: PoolTask, place: (t: PoolTask) => void): void {
    const accepted = t.accepted;
    t.accepted = t.refused = null;
    if (t.result === null && t.owner === null) unwatchAbort(t); // a submit: its signal bounded only the wait
    place(t);
    if (t.owner !== null) t.owner.stepAccepted(t.entry);
    else accepted?.();
  }

  #slotFree(): boolean {
    if (this.#adaptive !== null) return this.#running < this.#adaptive.limit;
    if (this.#running < this.#current) return true;
    if (this.#current < this.#max) {
      this.#current++; // dynamic: work would have to wait, so grow
      return true;
    }
    return false;
  }

  /** Starts queued work while slots are free, then fills the queue from blocked submitters. */
  #pump(): void {
    if (this.#pumping || this.#isAborted) return;
    this.#pumping = true;
    try {
      for (;;) {
        const q = this.#queue.head;
        if (q !== null) {
          // A task whose caller's abort is being dispatched is about to be withdrawn: never start it.
          if (abortPending(q) || !this.#slotFree()) break;
          this.#queue.shift();
          this.#water();
          this.#start(q);
          continue;
        }
        const w = this.#waiters.head;
        if (w === null || abortPending(w) || !this.#slotFree()) break;
        this.#waiters.shift();
        this.#accept(w, this.#startTask);
      }
      for (let w = this.#waiters.head; w !== null && w.owner === null && !abortPending(w) && this.#queue.length < this.#queueSize; w = this.#waiters.head) {
        this.#waiters.shift();
        this.#accept(w, this.#enqueueTask);
      }
    } finally {
      this.#pumping = false;
    }
  }

  // ---- running ----

  #start(t: PoolTask): void {
    t.state = RUNNING;
    if (t.owner === null && t.result === null && !t.timed && this.#adaptive === null) {
      // A submit's task, not sampled: nobody waits for its outcome, so it needs no record.
      this.#startPlain(t.fn);
      return;
    }
    this.#running++;
    if (t.timed) {
      const now = this.#now();
      t.startedAt = now;
      this.#waitTime.record(now - t.submittedAt);
    }
    // A map step takes its limit unit when its item arrives (`itemStarted`), not while it waits
    // for one: an idle stage must not read as in flight, nor its wait as the work's latency.
    if (this.#adaptive !== null && t.owner === null) t.sample = this.#adaptive.start();
    this.#idleCheck();
    let signal = t.taskSignal ?? this.#signal;
    if (t.callerSignal !== undefined && t.taskSignal === null && t.result !== null) {
      const c = new AbortController();
      t.controller = c;
      signal = c.signal;
      watchAbort(this.#signal, (t.link = new PoolLink(c)));
    }
    let r: unknown;
    try {
      r = t.owner !== null ? t.owner.runStep(t.entry, signal, t) : t.fn(signal);
    } catch (e) {
      this.#settle(t, false, e);
      return;
    }
    if (!isThenable(r)) this.#settle(t, true, r);
    else if (r instanceof Promise) r.then((v) => this.#settle(t, true, v), (e) => this.#settle(t, false, e));
    else Promise.resolve(r).then((v) => this.#settle(t, true, v), (e) => this.#settle(t, false, e));
  }

  /**
   * Starts a task whose outcome nobody waits for (a `submit`/`trySubmit` task that is not timed,
   * in a pool without an adaptive limit): it is followed by the pool's two shared handlers, so
   * it costs no per-task record or closure.
   */
  #startPlain(fn: Task): void {
    this.#running++;
    this.#idleCheck();
    let r: unknown;
    try {
      r = fn(this.#signal);
    } catch (e) {
      this.#plainSettled(false, e);
      return;
    }
    if (r instanceof Promise) r.then(this.#plainFulfilled, this.#plainRejected);
    else if (isThenable(r)) Promise.resolve(r).then(this.#plainFulfilled, this.#plainRejected);
    else this.#plainSettled(true, r);
  }

  readonly #plainFulfilled = (): void => this.#plainSettled(true, undefined);
  readonly #plainRejected = (e: unknown): void => this.#plainSettled(false, e);

  #plainSettled(ok: boolean, value: unknown): void {
    this.#running--;
    if (ok) this.#completed++;
    else {
      this.#failed++;
      this.#report(value);
    }
    this.#afterRelease();
  }

  #settle(t: PoolTask, ok: boolean, value: unknown): void {
    t.state = DONE;
    this.#running--;
    if (t.timed) this.#runTime.record(this.#now() - t.startedAt);
    const sample = t.sample;
    if (sample !== null) {
      t.sample = null;
      if (ok) sample.success();
      else if (isOverload(value)) sample.dropped();
      else sample.ignore();
    }
    if (t.link !== null) {
      unwatchAbort(t.link);
      t.link = null;
    }
    unwatchAbort(t);
    if (t.counted) {
      if (ok) this.#completed++;
      else this.#failed++;
    }
    if (!this.#answer(t, ok, value) && !ok && !t.detached) this.#report(value);
    this.#afterRelease();
  }

  /** A slot was freed: start what waits for one, re-arm the shrink timer, wake drainers if idle. */
  #afterRelease(): void {
    // The same as calling the three, without the calls that would find nothing to do.
    if (this.#queue.length !== 0 || this.#waiters.length !== 0) this.#pump();
    if (this.#min !== this.#max) this.#idleCheck();
    if (this.#running === 0) this.#settleIdle();
  }

  #report(error: unknown): void {
    if (this.#onError !== undefined) {
      try {
        this.#onError(error);
      } catch (e) {
        queueMicrotask(() => {
          throw e;
        });
      }
      return;
    }
    const now = Date.now();
    if (now - this.#lastWarn < 1000) {
      this.#unwarned++;
      return;
    }
    const more = this.#unwarned > 0 ? ` (and ${this.#unwarned} more failures since the last warning)` : "";
    this.#lastWarn = now;
    this.#unwarned = 0;
    const detail = error instanceof Error ? (error.stack ?? String(error)) : String(error);
    process.emitWarning(`a task submitted to ${this.describe()} failed${more}; pass options.onError to handle failures`, {
      type: "SluiceWarning",
      code: "SLUICE_TASK_FAILED",
      detail,
    });
  }

  // ---- watermarks, idleness, dynamic size ----

  #water(): void {
    if (this.#highWater === 0) return;
    const n = this.#queue.length;
    if (!this.#above && n >= this.#highWater) {
      this.#above = true;
      callHook(this.#onHighWater);
    } else if (this.#above && n <= this.#lowWater) {
      this.#above = false;
      callHook(this.#onLowWater);
    }
  }

  #idle(): boolean {
    return this.#running === 0 && this.#queue.length === 0 && this.#waiters.length === 0;
  }

  /** Wakes drainers when idle; a closed, idle pool lets go of its adaptive limit and timers. */
  #settleIdle(): void {
    if (!this.#idle()) return;
    wakeAll(this.#drainers);
    if (this.#closed) {
      this.#unsubscribe?.();
      this.#unsubscribe = null;
      if (this.#idleTimer !== undefined) {
        this.#clock.clearTimeout(this.#idleTimer);
        this.#idleTimer = undefined;
      }
    }
  }

  /** Dynamic mode: arm the shrink timer while some slots go unused. */
  #idleCheck(): void {
    if (this.#adaptive !== null || this.#min === this.#max) return;
    if (this.#running >= this.#current) this.#lastBusy = this.#now();
    if (this.#current > this.#min && this.#running < this.#current && this.#idleTimer === undefined && !this.#closed) {
      this.#idleTimer = this.#clock.setTimeout(this.#shrink, this.#idleMs);
      (this.#idleTimer as { unref?: () => void } | null)?.unref?.();
    }
  }

  readonly #shrink = (): void => {
    this.#idleTimer = undefined;
    const unneededFor = this.#now() - this.#lastBusy;
    if (unneededFor >= this.#idleMs) this.#current = Math.max(this.#min, this.#running);
    this.#idleCheck();
  };

  #closedError(): PoolClosedError {
    return new PoolClosedError(`${this.describe()} is closed`, this.#isAborted ? { cause: this.#signal.reason } : undefined);
  }
}

function callHook(hook: (() => void) | undefined): void {
  if (hook === undefined) return;
  try {
    hook();
  } catch (e) {
    queueMicrotask(() => {
      throw e;
    });
  }
}

function checkConcurrency(c: unknown, name = "options.concurrency"): [number, number] {
  if (c === Infinity) throw new RangeError(`${name} must be a positive safe integer, got Infinity: sluice has no unbounded pool`);
  if (typeof c === "number") {
    const n = checkInteger(c, name, 1);
    return [n, n];
  }
  if (c !== null && typeof c === "object" && "min" in c && "max" in c) {
    const { min, max } = c as DynamicConcurrency;
    checkInteger(min, `${name}.min`, 1);
    if (max === Infinity) throw new RangeError(`${name}.max must be a positive safe integer, got Infinity`);
    checkInteger(max, `${name}.max`, min);
    return [min, max];
  }
  throw new TypeError(`${name} must be a positive safe integer, { min, max }, or a ConcurrencyLimit`);
}

function checkWatermarks(o: PoolOptions, queue: number): [number, number] {
  if (o.highWater === undefined) {
    if (o.lowWater !== undefined) throw new TypeError("options.lowWater needs options.highWater");
    return [0, 0];
  }
  const high = checkInteger(o.highWater, "options.highWater", 1);
  if (high > queue) throw new RangeError(`options.highWater (${high}) must be <= options.queue (${queue})`);
  const low = checkInteger(given(o.lowWater, Math.floor(high / 2)), "options.lowWater", 0);
  if (low >= high) throw new RangeError(`options.lowWater (${low}) must be < options.highWater (${high})`);
  return [high, low];
}
