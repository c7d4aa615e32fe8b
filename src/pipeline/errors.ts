/**
 * The error of `sluice/pipeline`: a `"disconnect"` subscriber of a `Broadcast` that fell behind.
 */

/**
 * Thrown by the iteration of a `Broadcast` subscription with policy `"disconnect"` once it fell
 * behind: a value was published while its buffer was full. The subscription was removed at that
 * moment and its buffer discarded; `missed` counts the values it lost (those it held, plus the
 * one that did not fit).
 *
 * @example
 * try { for await (const v of bus.subscribe({ policy: "disconnect", buffer: 8 })) use(v); }
 * catch (e) { if (e instanceof LaggedError) resubscribeFromSnapshot(e.missed); else throw e; }
 */
export class LaggedError extends Error {
  /** Always `"ERR_LAGGED"`. */
  readonly code = "ERR_LAGGED" as const;
  override readonly name = "LaggedError";
  /** How many values this subscriber lost. */
  readonly missed: number;
  constructor(missed: number, message = `subscriber fell behind and was disconnected (missed ${missed})`, options?: ErrorOptions) {
    super(message, options);
    this.missed = missed;
  }
}
