/**
 * The contract between a concurrency limit that can change at run time (an `AdaptiveLimit`, or
 * your own) and what enforces it (a `Pool`, and later HTTP admission control).
 *
 * The enforcer reads `limit` before starting work and never runs more than that many units at
 * once; it calls `start()` as each unit starts and exactly one method of the returned sample as
 * the unit ends. The limit learns from those samples (latency, drops) and moves `limit`,
 * telling subscribers.
 */

/** How one unit of work ended; exactly one method is called, once (later calls do nothing). */
export interface LimitSample {
  /** It completed: its latency counts as a sample. */
  success(): void;
  /** It was dropped, timed out, or refused by an overloaded dependency (`BusyError`): back off. */
  dropped(): void;
  /** It ended in a way that says nothing about capacity (e.g. a validation error). */
  ignore(): void;
}

/** A concurrency limit that an enforcer follows. */
export interface ConcurrencyLimit {
  /** The current limit: a positive safe integer. */
  readonly limit: number;
  /** Units started and not yet ended. */
  readonly inflight: number;
  /** Records that a unit of work starts now; report its end on the sample. */
  start(): LimitSample;
  /** Calls `listener(limit)` after every change of `limit`; returns a function that unsubscribes. */
  subscribe(listener: (limit: number) => void): () => void;
}

/** @internal Whether `value` looks like a ConcurrencyLimit. */
export function isConcurrencyLimit(value: unknown): value is ConcurrencyLimit {
  const v = value as Partial<ConcurrencyLimit> | null;
  return v !== null && typeof v === "object" && typeof v.start === "function" &&
    typeof v.subscribe === "function" && typeof v.limit === "number";
}
