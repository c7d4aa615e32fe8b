/**
 * ErrGroup: run tasks together, fail together, like golang.org/x/sync/errgroup with
 * `WithContext` and `SetLimit`.
 *
 * Invariants:
 *  - `pending` (a WaitGroup) counts every accepted task from the moment `go` accepts it until
 *    it settles, including the time it waits for a slot; `wait()` resolves only at zero.
 *  - With a limit, at most `limit` tasks run at once: a slot (a Semaphore unit) is taken before
 *    a task starts and given back when the task's promise settles, never earlier. Tasks waiting
 *    for a slot start in FIFO order.
 *  - The first failure is kept (later ones are dropped, as Go drops them) and aborts `signal`
 *    with it as the reason. `signal` is also aborted when the parent signal aborts, and when
 *    `wait()` returns.
 *  - Once the group has failed, tasks still waiting for a slot still start when their turn
 *    comes, with the aborted signal, as Go's errgroup does: every accepted task runs exactly
 *    once. To stop waiting instead, pass `{ signal: group.signal }` to `go`.
 */
import { Semaphore } from "./semaphore.js";
import { WaitGroup } from "./waitgroup.js";
import { Abortable, unwatchAbort, watchAbort } from "./abort.js";
import { checkFunction, checkLimit, checkName, checkOptions, signalOf } from "./validate.js";
import type { WaitOptions } from "./channel.js";

/** Options of `new ErrGroup(options)`. */
export interface ErrGroupOptions {
  /** Parent signal: its abort aborts the group's signal (with the same reason). */
  signal?: AbortSignal;
  /** At most this many tasks run at once (a positive safe integer; default no limit). */
  limit?: number;
  /** Used in warnings and the exit-time report. */
  name?: string;
}

/** A task of a group: receives the group's signal. */
export type GroupTask = (signal: AbortSignal) => unknown;

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
  readonly #slots: Semaphore | null;
  readonly #pending = new WaitGroup();
  readonly #parent: ParentLink | null = null;
  #failed = false;
  #error: unknown = undefined;

  constructor(options?: ErrGroupOptions) {
    checkOptions(options);
    const parent = signalOf(options);
    const name = checkName(options?.name);
    const limit = checkLimit(options?.limit ?? Infinity, "options.limit", 1);
    this.#slots = limit === Infinity ? null : new Semaphore(limit, { name: name ?? "errgroup" });
    if (parent !== undefined) {
      if (parent.aborted) this.#controller.abort(parent.reason);
      else watchAbort(parent, (this.#parent = new ParentLink(this.#controller)));
    }
  }

  /** Aborted with the first error, when the parent signal aborts, or when `wait()` returns. */
  get signal(): AbortSignal {
    return this.#controller.signal;
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
      signal = signalOf(options);
      if (signal?.aborted) return Promise.reject(signal.reason); // an aborted signal wins over everything
      checkFunction(task, "task");
    } catch (e) {
      return Promise.reject(e);
    }
    const slots = this.#slots;
    if (slots === null || slots.tryAcquire(1)) {
      this.#pending.add(1);
      this.#run(task);
      return Promise.resolve();
    }
    this.#pending.add(1);
    return slots.acquire(1, { signal }).then(
      () => this.#run(task),
      (e: unknown) => {
        this.#pending.done();
        throw e;
      },
    );
  }

  /** Starts `task` only if a slot is free now (and nobody waits for one); returns whether it did. */
  tryGo(task: GroupTask): boolean {
    checkFunction(task, "task");
    if (this.#slots !== null && !this.#slots.tryAcquire(1)) return false;
    this.#pending.add(1);
    this.#run(task);
    return true;
  }

  /**
   * Waits for every accepted task (running or waiting for a slot) to settle, aborts `signal`,
   * then rejects with the first error, or resolves if none failed. With `{ signal }`, stops
   * waiting (rejecting with its reason) if it aborts first; the tasks go on.
   */
  async wait(options?: WaitOptions): Promise<void> {
    await this.#pending.wait(options);
    if (this.#parent !== null) unwatchAbort(this.#parent);
    if (!this.#controller.signal.aborted) this.#controller.abort();
    if (this.#failed) throw this.#error;
  }

  #run(task: GroupTask): void {
    let result: unknown;
    try {
      result = task(this.#controller.signal);
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
    if (!ok && !this.#failed) {
      this.#failed = true;
      this.#error = error;
      if (!this.#controller.signal.aborted) this.#controller.abort(error);
    }
    this.#slots?.release(1);
    this.#pending.done();
  }
}
