/**
 * Timers as channels: `after`, `Timer`, `Ticker`, `tick`, like Go's `time` package. All of
 * them read time and arm timers through the clock seam (`options.clock`, else the default
 * clock), so tests can drive them with a `VirtualClock`.
 *
 * Invariants:
 *  - Each timer channel has capacity 1 and nothing else ever sends on it, so delivering a value
 *    never waits; a ticker drops a tick when the previous one is still unread (Go drops too)
 *    and counts it in `dropped`.
 *  - At most one underlying clock timer is armed per Timer/Ticker; `stop()` clears it, so a
 *    stopped timer does not keep the process alive, and neither does one whose signal aborted.
 *  - `stop()` and `reset()` also discard a value that was delivered but not yet received, so no
 *    stale value is received after them (Go 1.23 semantics).
 */
import type { Channel } from "./channel.js";
import { ReceiveOnlyChannel } from "./receive-only.js";
import { Abortable, unwatchAbort, watchAbort } from "./abort.js";
import { checkClock, type Clock } from "./clock.js";
import { checkDuration, checkName, checkNumber, checkOptions, checkSignal } from "./validate.js";

/** Options of the timer functions. */
export interface TimerOptions {
  /** Aborting it stops the timer (see each function for what else happens). */
  signal?: AbortSignal;
  /** Where time is read and timers armed (default: the default clock). */
  clock?: Clock;
  /** Names the timer's channel in messages and reports. */
  name?: string;
}

interface Parsed {
  signal: AbortSignal | undefined;
  clock: Clock;
  name: string | undefined;
}

function parse(options: TimerOptions | undefined): Parsed {
  checkOptions(options);
  return { signal: checkSignal(options?.signal), clock: checkClock(options?.clock), name: checkName(options?.name) };
}

class StopOnAbort extends Abortable {
  constructor(readonly target: { onSignalAbort(): void }) {
    super();
  }
  onAbort(): void {
    this.target.onSignalAbort();
  }
}

/**
 * A channel (capacity 1) that receives the clock's `now()` once, `ms` milliseconds from now,
 * like Go's `time.After`. A receiver that comes late still gets the value; the channel is never
 * closed. With `{ signal }`, an abort clears the timer (nothing is delivered, and the process is
 * not kept alive); give the same signal to the select that waits on it.
 *
 * For a timeout inside a hot loop, prefer one `Timer` and `reset()`: each `after` arms a timer.
 *
 * @example
 * const r = await select([recv(replies), recv(after(500))]);
 * if (r.index === 1) throw new Error("no reply within 500 ms");
 */
export function after(ms: number, options?: TimerOptions): Channel<number> {
  checkDuration(ms, "ms");
  return new Timer(ms, options).channel;
}

/**
 * A one-shot timer whose channel (capacity 1) receives the clock's `now()` when it fires, like
 * Go's `time.Timer`. `stop()` and `reset(ms)` control it; an abort of `options.signal` stops it.
 *
 * @example
 * const idle = new Timer(30_000);
 * for (;;) {
 *   const r = await select([recv(requests), recv(idle.channel)]);
 *   if (r.index === 1) break;       // 30 s without a request
 *   idle.reset(30_000);
 * }
 */
export class Timer {
  /** Receives the fire time once per arming (receive-only). */
  readonly channel: Channel<number>;
  readonly #ch: ReceiveOnlyChannel<number>;
  readonly #clock: Clock;
  readonly #signal: AbortSignal | undefined;
  readonly #link = new StopOnAbort(this);
  #handle: unknown = undefined;
  #armed = false;

  /** @param ms delay in milliseconds, a finite number >= 0. */
  constructor(ms: number, options?: TimerOptions) {
    checkDuration(ms, "ms");
    const { signal, clock, name } = parse(options);
    this.#clock = clock;
    this.#signal = signal;
    this.channel = this.#ch = new ReceiveOnlyChannel<number>(1, { name: name ?? `timer(${ms}ms)` });
    this.#arm(ms);
  }

  /** Whether the timer is armed and has not fired. */
  get active(): boolean {
    return this.#armed;
  }

  /**
   * Stops the timer. Returns true if this call prevented a delivery: the timer had not fired,
   * or it had fired but its value was not yet received (that value is discarded). False if it
   * was already stopped or its value was received.
   */
  stop(): boolean {
    if (this.#armed) {
      this.#disarm();
      return true;
    }
    return this.channel.tryRecv() !== undefined;
  }

  /**
   * Stops the timer (discarding an unreceived value) and arms it to fire `ms` from now, unless
   * its signal has aborted. Returns what `stop()` would have returned.
   */
  reset(ms: number): boolean {
    checkDuration(ms, "ms");
    const wasActive = this.stop();
    this.#arm(ms);
    return wasActive;
  }

  /** @internal */
  onSignalAbort(): void {
    this.stop();
  }

  #arm(ms: number): void {
    const signal = this.#signal;
    if (signal?.aborted) return;
    if (signal !== undefined) watchAbort(signal, this.#link);
    this.#armed = true;
    this.#handle = this.#clock.setTimeout(this.#fire, ms);
  }

  #disarm(): void {
    this.#clock.clearTimeout(this.#handle);
    this.#handle = undefined;
    this.#armed = false;
    unwatchAbort(this.#link);
  }

  readonly #fire = (): void => {
    this.#handle = undefined;
    this.#armed = false;
    unwatchAbort(this.#link);
    this.#ch.put(this.#clock.now());
  };
}

/**
 * Creates a `Timer`: `timer(ms)` is `new Timer(ms)`.
 */
export function timer(ms: number, options?: TimerOptions): Timer {
  return new Timer(ms, options);
}

/**
 * A ticker whose channel (capacity 1) receives the clock's `now()` every `ms` milliseconds, like
 * Go's `time.Ticker`. A tick is dropped (and counted in `dropped`) when the previous one was not
 * yet received, so a slow receiver never makes ticks pile up; when the ticker falls behind by
 * whole periods, the missed ticks are skipped.
 *
 * `stop()` stops it (its channel stays open, as in Go, so a parked receiver stays parked);
 * an abort of `options.signal` stops it and closes its channel, so `for await` loops end.
 *
 * @example
 * for await (const now of tick(1000, { signal })) report(now);
 */
export class Ticker {
  /** Receives the tick times (receive-only). */
  readonly channel: Channel<number>;
  readonly #ch: ReceiveOnlyChannel<number>;
  readonly #clock: Clock;
  readonly #signal: AbortSignal | undefined;
  readonly #link = new StopOnAbort(this);
  #period: number;
  #next = 0;
  #handle: unknown = undefined;
  #running = false;
  #dropped = 0;

  /** @param ms the period in milliseconds, a finite number > 0. */
  constructor(ms: number, options?: TimerOptions) {
    this.#period = checkPeriod(ms);
    const { signal, clock, name } = parse(options);
    this.#clock = clock;
    this.#signal = signal;
    this.channel = this.#ch = new ReceiveOnlyChannel<number>(1, { name: name ?? `ticker(${ms}ms)` });
    if (signal?.aborted) this.#ch.shut();
    else this.#start();
  }

  /** Ticks dropped because the previous tick was still unread. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Stops ticking and discards an unreceived tick. The channel stays open. */
  stop(): void {
    if (this.#running) {
      this.#clock.clearTimeout(this.#handle);
      this.#handle = undefined;
      this.#running = false;
      unwatchAbort(this.#link);
    }
    if (!this.channel.closed) this.channel.tryRecv();
  }

  /** Stops, then ticks every `ms` from now. Does nothing once the signal has aborted. */
  reset(ms: number): void {
    const period = checkPeriod(ms);
    this.stop();
    if (this.channel.closed) return;
    this.#period = period;
    this.#start();
  }

  /** @internal */
  onSignalAbort(): void {
    this.stop();
    this.#ch.shut();
  }

  #start(): void {
    if (this.#signal !== undefined) watchAbort(this.#signal, this.#link);
    this.#running = true;
    this.#next = this.#clock.now() + this.#period;
    this.#handle = this.#clock.setTimeout(this.#fire, this.#period);
  }

  readonly #fire = (): void => {
    const now = this.#clock.now();
    if (!this.#ch.put(now)) this.#dropped++;
    this.#next += this.#period;
    if (this.#next <= now) {
      // Fell behind by whole periods: skip the missed ticks instead of bursting.
      this.#next += Math.ceil((now - this.#next + 1) / this.#period) * this.#period;
    }
    this.#handle = this.#clock.setTimeout(this.#fire, this.#next - now);
  };
}

/**
 * The channel of a new `Ticker` (Go's `time.Tick`). Without a signal it ticks for the life of
 * the process and keeps it alive; with one, an abort stops it and closes the channel.
 *
 * @example
 * for await (const t of tick(100, { signal: AbortSignal.timeout(1000) })) console.log(t);
 */
export function tick(ms: number, options?: TimerOptions): Channel<number> {
  return new Ticker(ms, options).channel;
}

function checkPeriod(ms: unknown): number {
  const n = checkNumber(ms, "ms");
  if (!Number.isFinite(n) || n <= 0) throw new RangeError(`ms must be a finite number of milliseconds > 0, got ${String(ms)}`);
  return n;
}
