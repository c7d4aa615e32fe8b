/**
 * The error classes of `sluice/flow` (beside `BusyError`, which is the core's and shared by
 * every boundary). Each has a stable `code`.
 */

/**
 * A task accepted by a pool was dropped before it ran, to make room for newer work
 * (`overflow: "drop-oldest"`). It never ran. Its `run` caller is rejected with this error; a
 * `submit`/`trySubmit` caller learns of it through the pool's `onError` hook and `stats.dropped`.
 *
 * @example
 * try { await pool.run(task); } catch (e) { if (e instanceof DroppedError) metrics.dropped++; }
 */
export class DroppedError extends Error {
  /** Always `"ERR_DROPPED"`. */
  readonly code = "ERR_DROPPED" as const;
  override readonly name = "DroppedError";
  constructor(message = "task dropped before it ran", options?: ErrorOptions) {
    super(message, options);
  }
}

/**
 * A circuit breaker is open (or half-open with every probe slot taken): the call failed fast
 * without running. `retryAfterMs` says when the breaker will next let a probe through.
 *
 * @example
 * try { await breaker.run(() => callUpstream()); }
 * catch (e) { if (e instanceof BreakerOpenError) return serveFromCache(); throw e; }
 */
export class BreakerOpenError extends Error {
  /** Always `"ERR_BREAKER_OPEN"`. */
  readonly code = "ERR_BREAKER_OPEN" as const;
  override readonly name = "BreakerOpenError";
  /** Milliseconds until the breaker lets a probe through (0 when half-open and full). */
  readonly retryAfterMs: number | undefined;
  constructor(message = "circuit breaker is open", options?: ErrorOptions & { retryAfterMs?: number }) {
    super(message, options);
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/**
 * The pool is closed (`close()` or `abort()`): it accepts no new work (work offered before the
 * close still runs; `abort` refuses that too, with its reason). After `abort(reason)`, `cause`
 * is that reason.
 *
 * @example
 * pool.close();
 * await pool.submit(task); // rejects with PoolClosedError
 */
export class PoolClosedError extends Error {
  /** Always `"ERR_POOL_CLOSED"`. */
  readonly code = "ERR_POOL_CLOSED" as const;
  override readonly name = "PoolClosedError";
  constructor(message = "pool is closed", options?: ErrorOptions) {
    super(message, options);
  }
}
