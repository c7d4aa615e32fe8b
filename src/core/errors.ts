/**
 * The error classes of sluice's core. Each has a stable `code` string, so that code which
 * receives an error from any boundary can tell overload (`ERR_BUSY`) from misuse
 * (`ERR_CHANNEL_CLOSED`) from a failure of the work itself.
 */

/**
 * Thrown (or rejected with) by an operation on a closed channel: `send`, `trySend`, a `select`
 * that picks a send case on a closed channel, and a second `close`. Parked senders are rejected
 * with it when the channel is closed under them.
 *
 * @example
 * try { await ch.send(1); } catch (e) { if (e instanceof ChannelClosedError) return; throw e; }
 */
export class ChannelClosedError extends Error {
  /** Always `"ERR_CHANNEL_CLOSED"`. */
  readonly code = "ERR_CHANNEL_CLOSED" as const;
  override readonly name = "ChannelClosedError";
  constructor(message = "channel is closed", options?: ErrorOptions) {
    super(message, options);
  }
}

/**
 * A boundary is full and said so instead of growing: the one overload error of all of sluice
 * (`sluice/flow` re-exports this same class). `retryAfterMs`, when present, is the boundary's
 * estimate of when trying again may succeed (HTTP layers turn it into `Retry-After`).
 *
 * Raised by a channel send when `maxParkedSends` senders already wait, by a pool that rejects,
 * by a rate limiter whose delay would pass `maxDelayMs`, and so on. Nothing was taken or done.
 *
 * @example
 * try { await ch.send(job); }
 * catch (e) { if (e instanceof BusyError) return reply503(e.retryAfterMs); throw e; }
 */
export class BusyError extends Error {
  /** Always `"ERR_BUSY"`. */
  readonly code = "ERR_BUSY" as const;
  override readonly name = "BusyError";
  /** When known: milliseconds after which trying again may succeed. */
  readonly retryAfterMs: number | undefined;
  constructor(message = "busy", options?: ErrorOptions & { retryAfterMs?: number }) {
    super(message, options);
    this.retryAfterMs = options?.retryAfterMs;
  }
}
