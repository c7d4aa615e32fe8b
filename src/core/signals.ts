/**
 * Signal helpers: AbortSignal is sluice's `context.Context`. `done(signal)` is its `Done()`
 * channel; `timeoutSignal` is `context.WithTimeout` driven by the clock seam.
 */
import type { Channel } from "./channel.js";
import { ReceiveOnlyChannel } from "./receive-only.js";
import { Abortable, unwatchAbort, watchAbort } from "./abort.js";
import { checkClock, type Clock } from "./clock.js";
import { checkDuration, checkOptions, checkSignal } from "./validate.js";

class CloseOnAbort extends Abortable {
  constructor(readonly ch: ReceiveOnlyChannel<never>) {
    super();
  }
  onAbort(): void {
    this.ch.shut();
  }
}

const doneChannels = new WeakMap<AbortSignal, Channel<never>>();

/**
 * A channel that is closed when `signal` aborts, like Go's `ctx.Done()`: a receive on it (or a
 * `recv(done(signal))` select case) completes with `{ ok: false }` once the signal has aborted.
 * It is closed synchronously inside `abort()`, and already closed if the signal was aborted
 * before the call. The same signal always gives the same channel (one listener per signal,
 * however often it is asked for). It is receive-only: `send`, `trySend` and `close` on it throw
 * a TypeError.
 *
 * @example
 * const r = await select([send(out, v), recv(done(signal))]);
 * if (r.index === 1) return; // cancelled
 */
export function done(signal: AbortSignal): Channel<never> {
  if (!(signal instanceof AbortSignal)) throw new TypeError("signal must be an AbortSignal");
  let ch = doneChannels.get(signal);
  if (ch === undefined) {
    const owned = new ReceiveOnlyChannel<never>(0, { name: "done(signal)" });
    if (signal.aborted) owned.shut();
    else watchAbort(signal, new CloseOnAbort(owned));
    doneChannels.set(signal, (ch = owned));
  }
  return ch;
}

/** Options of `timeoutSignal`. */
export interface TimeoutSignalOptions {
  /** A parent: its abort aborts the result too, with the parent's reason. */
  signal?: AbortSignal;
  /** Where the deadline is timed (default: the default clock). */
  clock?: Clock;
}

class AbortOnParent extends Abortable {
  handle: unknown = undefined;
  constructor(
    readonly controller: AbortController,
    readonly clock: Clock,
  ) {
    super();
  }
  onAbort(reason: unknown): void {
    this.clock.clearTimeout(this.handle);
    this.controller.abort(reason);
  }
}

/**
 * An AbortSignal that aborts with a `TimeoutError` DOMException `ms` from now (as
 * `AbortSignal.timeout` does), or earlier with the parent's reason if `options.signal` aborts
 * first: Go's `context.WithTimeout`. Unlike `AbortSignal.timeout`, its time comes from the
 * clock seam, so a test with a `VirtualClock` controls it. With the real clock, its timer does
 * not keep the process alive.
 *
 * @example
 * await pool.submit(task, { signal: timeoutSignal(100, { signal: request.signal }) });
 */
export function timeoutSignal(ms: number, options?: TimeoutSignalOptions): AbortSignal {
  checkDuration(ms, "ms");
  checkOptions(options);
  const parent = checkSignal(options?.signal);
  const clock = checkClock(options?.clock);
  const controller = new AbortController();
  if (parent?.aborted) {
    controller.abort(parent.reason);
    return controller.signal;
  }
  const link = new AbortOnParent(controller, clock);
  if (parent !== undefined) watchAbort(parent, link);
  link.handle = clock.setTimeout(() => {
    unwatchAbort(link);
    controller.abort(new DOMException(`timed out after ${ms} ms`, "TimeoutError"));
  }, ms);
  (link.handle as { unref?: () => void } | null)?.unref?.();
  return controller.signal;
}
