/**
 * ErrGroup: run tasks together, fail together, like golang.org/x/sync/errgroup with
 * `WithContext` and `SetLimit`.
 *
 * Invariants:
 *  - `pending` (a WaitGroup) counts every accepted task from the moment `go` accepts it until
 *    it settles, including the time it waits for a slot; `wait()` resolves only at zero.
 *  - `running <= limit` always: a task takes a slot as it starts and gives it back when its
 *    promise settles, never earlier. A `go` that finds no free slot parks its task in
 *    `waiters` (FIFO); the settle that frees a slot starts the oldest parked task in the same
 *    step and resolves its `go`. So a slot is never idle while a task waits, and a free slot
 *    implies no task waits.
 *  - The first failure is kept (later ones are dropped, as Go drops them) and aborts `signal`
 *    with it as the reason. `signal` is also aborted when the parent signal aborts, and when
 *    `wait()` returns.
 *  - Once the group has failed, tasks still waiting for a slot still start when their turn
 *    comes, with the aborted signal, as Go's errgroup does: every accepted task runs exactly
 *    once. To stop waiting instead, pass `{ signal: group.signal }` to `go`.
 */
import { WaitGroup } from "./waitgroup.js";
import { RESOLVED, WaitQueue, type Waiter } from "./waitq.js";
import { Abortable, abortPending, unwatchAbort, watchAbort } from "./abort.js";
import { checkFunction, checkLimit, checkName, checkOptions, given, signalOf } from "./validate.js";
import type { WaitOptions } from "./channel.js";
import { observe } from "./registry.js";

/** Options of `new ErrGroup(options)`. */
export interface ErrGroupOptions {
  /** Parent signal: its abort aborts the group's signal (with the same reason). */
  signal?: AbortSignal;
  /** At most this many tasks run at once (a positive safe integer; default no limit). */
  limit?: number;
  /** Used in warnings and the exit-time report. */
  name?: string;
}

/** Counters of one group (`group.stats`): a fresh snapshot. */
export interface ErrGroupStats {
  readonly name: string | undefined;
  /** The most tasks running at once (`Infinity`: no limit). */
  readonly limit: number;
  /** Tasks started and not yet settled. */
  readonly running: number;
  /** `go` calls waiting for a slot now. */
  readonly waiting: number;
  /** Tasks accepted by `go`/`tryGo` (started, or waiting for a slot). */
  readonly accepted: number;
  /** Tasks that settled (fulfilled or failed). */
  readonly settled: number;
  /** Tasks that threw or rejected. */
  readonly failed: number;
  /** Waiting `go` calls withdrawn by their signal (their task never ran). */
  readonly aborted: number;
  /** `go` calls that had to wait for a slot. */
  readonly waited: number;
  /** The most `go` calls ever waiting at once. */
  readonly peakWaiting: number;
  /** Whether a task failed (the group's signal is aborted with that error). */
  readonly hasFailed: boolean;
}

/** A task of a group: receives the group's signal. */
export type GroupTask = (signal: AbortSignal) => unknown;

/** A `go` waiting for a slot, holding its task. Flat (implements Waiter): one per waiting `go`. */
class GoWaiter implements Waiter {
  prev: Waiter | null = null;
  next: Waiter | null = null;
  queue: WaitQueue<Waiter> | null = null;
  abortPrev: Abortable | null = null;
  abortNext: Abortable | null = null;
  abortList: Abortable["abortList"] = null;
  constructor(
    readonly group: ErrGroup,
    readonly task: GroupTask,
    readonly resolve: () => void,
    readonly reject: (e: unknown) => void,
  ) {}

  onAbort(reason: unknown): void {
    this.group.withdraw(this);
    this.reject(reason);
  }
}

class ParentLink extends Abortable {
  constructor(readonly controller: AbortController) {
    super();
  }
  onAbort(reason: unknown): void {
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }
}

/**
 * A group of tasks that share one AbortSignal and report the first error.
 *
 * Blocks: `go` waits for a free slot when a `limit` is set; `wait` waits for every accepted
 * task. Bounded: running tasks by `limit`; callers waiting for a slot are warned about past
 * 1000 (they are parked on the group's semaphore).
 *
 * @example
 * const group = new ErrGroup({ limit: 8, signal: request.signal });
 * for (const url of urls) await group.go((signal) => fetch(url, { signal }));
 * await group.wait(); // rejects with the first error, after every task settled
 */
export class ErrGroup {
  readonly #controller = new AbortController();
  /** The controller's signal, read once (Node's getter validates `this` on every read). */
  readonly #signal = this.#controller.signal;
  readonly #limit: number;
  readonly #waiters: WaitQueue<GoWaiter>;
  readonly #name: string | undefined;
  #running = 0;
  readonly #pending = new WaitGroup();
  readonly #parent: ParentLink | null = null;
  #failed = false;
  #error: unknown = undefined;
  #accepted = 0;
  #failures = 0;
  #aborted = 0;

  constructor(options?: ErrGroupOptions) {
    checkOptions(options);
    const parent = signalOf(options);
    const name = checkName(options?.name);
    this.#name = name;
    this.#limit = checkLimit(given(options?.limit, Infinity), "options.limit", 1);
    this.#waiters = new WaitQueue(this, "go", 1000, "SLUICE_PARKED_WAITERS");
    if (parent !== undefined) {
      if (parent.aborted) this.#controller.abort(parent.reason);
      else watchAbort(parent, (this.#parent = new ParentLink(this.#controller)));
    }
    observe("errgroup", this, name !== undefined);
  }

  /** The name given in the options (undefined without one). */
  get name(): string | undefined {
    return this.#name;
  }

  /** A fresh snapshot of the counters. */
  get stats(): ErrGroupStats {
    const pending = this.#pending.count;
    const waiting = this.#waiters.length;
    return {
      name: this.#name,
      limit: this.#limit,
      running: this.#running,
      waiting,
      accepted: this.#accepted,
      settled: this.#accepted - pending - this.#aborted,
      failed: this.#failures,
      aborted: this.#aborted,
      waited: this.#waiters.parkedTotal,
      peakWaiting: this.#waiters.peak,
      hasFailed: this.#failed,
    };
  }

  /** Aborted with the first error, when the parent signal aborts, or when `wait()` returns. */
  get signal(): AbortSignal {
    return this.#signal;
  }

  /** Tasks accepted and not yet settled (running or waiting for a slot). */
  get pending(): number {
    return this.#pending.count;
  }

  /**
   * Starts `task(signal)` once a slot is free (at once without a limit), and resolves when it
   * has started. Its failure is kept for `wait()`; it is never thrown from here.
   *
   * Rejects, without ever starting the task: `options.signal.reason` if that signal is or
   * becomes aborted while waiting for a slot; `TypeError` if `task` is not a function.
   */
  go(task: GroupTask, options?: WaitOptions): Promise<void> {
    let signal: AbortSignal | undefined;
    try {
      if (options !== undefined) {
        signal = signalOf(options);
        if (signal?.aborted) return Promise.reject(signal.reason); // an aborted signal wins over everything
      }
      checkFunction(task, "task");
    } catch (e) {
      return Promise.reject(e);
    }
    this.#pending.add(1);
    this.#accepted++;
    if (this.#running < this.#limit && this.#waiters.length === 0) {
      this.#running++;
      this.#run(task);
      return RESOLVED;
    }
    return new Promise<void>((resolve, reject) => {
      const w = new GoWaiter(this, task, resolve, reject);
      this.#waiters.push(w);
      if (signal !== undefined) watchAbort(signal, w);
    });
  }

  /** Starts `task` only if a slot is free now (and nobody waits for one); returns whether it did. */
  tryGo(task: GroupTask): boolean {
    checkFunction(task, "task");
    if (this.#running >= this.#limit || this.#waiters.length > 0) return false;
    this.#pending.add(1);
    this.#accepted++;
    this.#running++;
    this.#run(task);
    return true;
  }

  /** @internal A waiting `go` was aborted: it never starts. */
  withdraw(w: GoWaiter): void {
    if (this.#waiters.remove(w)) {
      this.#aborted++;
      this.#pending.done();
    }
  }

  /** @internal */
  describe(): string {
    return `errgroup${this.#name === undefined ? "" : ` ${JSON.stringify(this.#name)}`} (limit ${this.#limit})`;
  }

  /**
   * Waits for every accepted task (running or waiting for a slot) to settle, aborts `signal`,
   * then rejects with the first error, or resolves if none failed. With `{ signal }`, stops
   * waiting (rejecting with its reason) if it aborts first; the tasks go on.
   */
  async wait(options?: WaitOptions): Promise<void> {
    await this.#pending.wait(options);
    if (this.#parent !== null) unwatchAbort(this.#parent);
    if (!this.#signal.aborted) this.#controller.abort();
    if (this.#failed) throw this.#error;
  }

  #run(task: GroupTask): void {
    let result: unknown;
    try {
      result = task(this.#signal);
    } catch (e) {
      this.#settle(false, e);
      return;
    }
    if (result !== null && (typeof result === "object" || typeof result === "function") &&
        typeof (result as PromiseLike<unknown>).then === "function") {
      (result as PromiseLike<unknown>).then(this.#onFulfilled, this.#onRejected);
    } else {
      this.#settle(true, undefined);
    }
  }

  readonly #onFulfilled = (): void => this.#settle(true, undefined);
  readonly #onRejected = (e: unknown): void => this.#settle(false, e);

  #settle(ok: boolean, error: unknown): void {
    if (!ok) this.#failures++;
    if (!ok && !this.#failed) {
      this.#failed = true;
      this.#error = error;
      if (!this.#signal.aborted) this.#controller.abort(error);
    }
    this.#running--;
    const w = this.#waiters.head;
    if (w !== null && !abortPending(w)) {
      this.#waiters.shift();
      unwatchAbort(w);
      this.#running++;
      this.#run(w.task);
      w.resolve();
    }
    this.#pending.done();
  }
}
