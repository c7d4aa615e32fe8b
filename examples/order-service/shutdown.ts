/**
 * Graceful shutdown in two steps, as seed 001 and seed 003 describe it: on the stop signal
 * (SIGTERM, SIGINT, or a caller's abort) the intake stops at once and the work in flight
 * drains; if it has not drained within `drainMs`, the rest is aborted.
 *
 * Invariants: `intake` aborts exactly when `stop` does; `hard` aborts (with a
 * `ShutdownDeadlineError`) `drainMs` after that, or at once on `abortNow()`, and never before
 * `intake`; at most one timer is armed, from the stop until `dispose()` or the deadline.
 */

/** The reason of the hard abort: the drain did not finish within its deadline. */
export class ShutdownDeadlineError extends Error {
  readonly code = "ERR_SHUTDOWN_DEADLINE";
  constructor(readonly drainMs: number) {
    super(`shutdown: in-flight work did not drain within ${drainMs} ms; the rest was abandoned`);
    this.name = "ShutdownDeadlineError";
  }
}

/**
 * The two signals of a shutdown.
 *
 * @example
 * const shutdown = new Shutdown(stopSignal, 5000);
 * feed(broker, { signal: shutdown.intake });   // stops taking work at the stop
 * await p.run({ signal: shutdown.hard });      // aborted 5 s after the stop if still running
 * shutdown.dispose();
 */
export class Shutdown {
  readonly #intake = new AbortController();
  readonly #hard = new AbortController();
  readonly drainMs: number;
  readonly #stop: AbortSignal | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stoppedAt: number | undefined;
  readonly #onStop = (): void => this.stop();

  /** `drainMs`: a finite number of ms >= 0 that the drain may take after the stop. */
  constructor(stop: AbortSignal | undefined, drainMs: number) {
    if (typeof drainMs !== "number" || !Number.isFinite(drainMs) || drainMs < 0) {
      throw new RangeError(`drainMs must be a finite number >= 0, got ${String(drainMs)}`);
    }
    this.drainMs = drainMs;
    this.#stop = stop;
    if (stop?.aborted) this.stop();
    else stop?.addEventListener("abort", this.#onStop, { once: true });
  }

  /** Aborted at the stop: stop taking new work. */
  get intake(): AbortSignal {
    return this.#intake.signal;
  }

  /** Aborted `drainMs` after the stop (reason `ShutdownDeadlineError`): abandon what is left. */
  get hard(): AbortSignal {
    return this.#hard.signal;
  }

  /** `performance.now()` at the stop, if it came. */
  get stoppedAt(): number | undefined {
    return this.#stoppedAt;
  }

  /** Starts the shutdown now (idempotent): the intake stops, the deadline starts. */
  stop(): void {
    if (this.#intake.signal.aborted) return;
    this.#stoppedAt = performance.now();
    this.#intake.abort(this.#stop?.aborted === true ? this.#stop.reason : new Error("shutdown"));
    this.#timer = setTimeout(() => this.abortNow(), this.drainMs);
  }

  /** Gives up on the drain at once (a second SIGINT, say). */
  abortNow(): void {
    this.stop();
    this.#clear();
    if (!this.#hard.signal.aborted) this.#hard.abort(new ShutdownDeadlineError(this.drainMs));
  }

  /** The run is over: clears the deadline's timer and stops listening to `stop`. */
  dispose(): void {
    this.#clear();
    this.#stop?.removeEventListener("abort", this.#onStop);
  }

  #clear(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
