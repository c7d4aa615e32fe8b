/**
 * CircuitBreaker: stops calling a dependency that keeps failing, fails fast while it recovers,
 * and lets a few probe calls find out when it has.
 *
 *   closed --(failure rate >= failureRate over >= minimumCalls calls in the window)--> open
 *   open --(openMs elapsed; noticed at the next call or read of state/stats)--> half-open
 *   half-open --(halfOpenProbes probes all succeeded)--> closed
 *   half-open --(any probe failed)--> open
 *
 * Invariants:
 *  - `generation` changes on every transition; an outcome is recorded (in the window, or as a
 *    probe result) only if its call started in the current generation. A call that started
 *    before the breaker opened and ends after cannot move it again.
 *  - Half-open: `probesRunning + probeSuccesses <= halfOpenProbes`. A probe holds its slot
 *    until it ends: success keeps it (it counts toward closing), failure reopens, and a caller's
 *    abort gives it back at once.
 *  - The window is a fixed ring: one byte per call for a count window, ten slices of counters
 *    for a time window. It is emptied on every transition, so a breaker that closes starts
 *    afresh.
 *  - `calls === successes + failures + aborted + running`; `rejected` counts calls refused
 *    without running `fn`. Counters include calls of earlier generations.
 *  - Time is read only through the clock, and no timer is ever armed: open -> half-open happens
 *    lazily, so an idle breaker keeps nothing alive.
 */
import { Abortable, unwatchAbort, watchAbort } from "../core/abort.js";
import { checkClock, type Clock } from "../core/clock.js";
import { checkDuration, checkFunction, checkInteger, checkName, checkNumber, checkOptions, given, signalOf } from "../core/validate.js";
import { BreakerOpenError } from "./errors.js";
import { observe } from "../core/registry.js";
import { breakerStateChannel, publishReject, rejectChannel, type BreakerStateEvent } from "../core/events.js";

/** The three states of a breaker. */
export type BreakerState = "closed" | "open" | "half-open";

/**
 * Over what the failure rate is measured: the last `size` calls (a ring, one byte per call), or
 * the calls of the last `ms` milliseconds (ten slices of `ms / 10`: calls expire a slice at a time).
 */
export type BreakerWindow = { kind: "count"; size: number } | { kind: "time"; ms: number };

/** Options of `new CircuitBreaker(options)`. */
export interface CircuitBreakerOptions {
  /** Open when the failure rate in the window reaches this: a number in (0, 1] (default 0.5). */
  failureRate?: number;
  /** ... and the window holds at least this many calls: a positive safe integer (default 10). */
  minimumCalls?: number;
  /** Default `{ kind: "count", size: 100 }`. A count window's `size` must be >= `minimumCalls`. */
  window?: BreakerWindow;
  /** How long the breaker stays open before letting probes through, in ms (default 30 000). */
  openMs?: number;
  /** Probes let through at once when half-open, all of which must succeed to close (default 1). */
  halfOpenProbes?: number;
  /**
   * Whether a rejection of `fn` counts as a failure (default: every rejection does). An error
   * for which it returns false counts as a success: the dependency answered. The caller's own
   * abort is never passed to it (it counts as neither). If it throws, the call counts as a
   * failure and `run` rejects with what it threw.
   */
  isFailure?: (error: unknown) => boolean;
  /** Where time is read (default: the default clock). */
  clock?: Clock;
  /** Names the breaker in errors and `stats`. */
  name?: string;
}

/** Counters of one breaker: a fresh snapshot. */
export interface BreakerStats {
  readonly name: string | undefined;
  readonly state: BreakerState;
  /** Calls that ran `fn`. */
  readonly calls: number;
  readonly successes: number;
  readonly failures: number;
  /** Calls whose caller aborted before `fn` settled (counted neither way). */
  readonly aborted: number;
  /** Calls running now (their caller still waits). */
  readonly running: number;
  /** Calls refused with `BreakerOpenError` without running `fn`. */
  readonly rejected: number;
  /** State changes so far. */
  readonly transitions: number;
  /** Calls in the window now (of the current closed period). */
  readonly windowCalls: number;
  /** Failures among them. */
  readonly windowFailures: number;
}

/** What a state-change listener is told. */
export interface BreakerStateChange {
  readonly from: BreakerState;
  readonly to: BreakerState;
  /** The clock's `now()` at the change. */
  readonly at: number;
}

/** Warn once when a breaker has more listeners than this (a subscribe-per-call leak). */
const WARN_LISTENERS = 100;

interface OutcomeWindow {
  record(failed: boolean, now: number): void;
  calls(now: number): number;
  failures(now: number): number;
  clear(): void;
}

/** The last `size` outcomes. */
class CountWindow implements OutcomeWindow {
  readonly #ring: Uint8Array;
  #next = 0;
  #count = 0;
  #failures = 0;
  constructor(size: number) {
    this.#ring = new Uint8Array(size);
  }
  record(failed: boolean): void {
    const ring = this.#ring;
    if (this.#count === ring.length) this.#failures -= ring[this.#next]!;
    else this.#count++;
    ring[this.#next] = failed ? 1 : 0;
    if (failed) this.#failures++;
    this.#next = (this.#next + 1) % ring.length;
  }
  calls(): number {
    return this.#count;
  }
  failures(): number {
    return this.#failures;
  }
  clear(): void {
    this.#ring.fill(0);
    this.#next = this.#count = this.#failures = 0;
  }
}

const SLICES = 10;

/** The outcomes of the last `ms` milliseconds, in SLICES slices. */
class TimeWindow implements OutcomeWindow {
  readonly #calls = new Float64Array(SLICES);
  readonly #fails = new Float64Array(SLICES);
  readonly #sliceMs: number;
  #sumCalls = 0;
  #sumFails = 0;
  #slice = -Infinity;
  constructor(ms: number) {
    this.#sliceMs = ms / SLICES;
  }
  record(failed: boolean, now: number): void {
    this.#advance(now);
    const i = slot(this.#slice);
    this.#calls[i]!++;
    this.#sumCalls++;
    if (failed) {
      this.#fails[i]!++;
      this.#sumFails++;
    }
  }
  calls(now: number): number {
    this.#advance(now);
    return this.#sumCalls;
  }
  failures(now: number): number {
    this.#advance(now);
    return this.#sumFails;
  }
  clear(): void {
    this.#calls.fill(0);
    this.#fails.fill(0);
    this.#sumCalls = this.#sumFails = 0;
  }
  #advance(now: number): void {
    const s = Math.floor(now / this.#sliceMs);
    if (!(s > this.#slice)) return; // same slice, or the clock went back
    if (this.#slice === -Infinity) {
      this.#slice = s; // first use: every slice is empty
      return;
    }
    const steps = Math.min(s - this.#slice, SLICES);
    for (let k = 1; k <= steps; k++) {
      const i = slot(this.#slice + k);
      this.#sumCalls -= this.#calls[i]!;
      this.#sumFails -= this.#fails[i]!;
      this.#calls[i] = 0;
      this.#fails[i] = 0;
    }
    this.#slice = s;
  }
}

function slot(slice: number): number {
  return ((slice % SLICES) + SLICES) % SLICES;
}

function parseWindow(value: unknown, minimumCalls: number): OutcomeWindow {
  if (value === undefined) {
    if (minimumCalls > 100) {
      throw new RangeError(`options.minimumCalls (${minimumCalls}) must be <= options.window.size (100)`);
    }
    return new CountWindow(100);
  }
  const w = value as { kind?: unknown; size?: unknown; ms?: unknown } | null;
  if (w === null || typeof w !== "object") {
    throw new TypeError('options.window must be { kind: "count", size } or { kind: "time", ms }');
  }
  if (w.kind === "count") {
    const size = checkInteger(w.size, "options.window.size", 1);
    if (minimumCalls > size) {
      throw new RangeError(`options.minimumCalls (${minimumCalls}) must be <= options.window.size (${size})`);
    }
    return new CountWindow(size);
  }
  if (w.kind === "time") {
    const ms = checkDuration(w.ms, "options.window.ms");
    if (ms === 0) throw new RangeError("options.window.ms must be > 0, got 0");
    return new TimeWindow(ms);
  }
  if (typeof w.kind !== "string") throw new TypeError(`options.window.kind must be "count" or "time"`);
  throw new RangeError(`options.window.kind must be "count" or "time", got ${JSON.stringify(w.kind)}`);
}

/** What the breaker remembers of an admitted call. */
interface Admitted {
  settled: boolean;
  readonly generation: number;
  readonly probe: boolean;
}

/** One admitted call, linked to the caller's signal while `fn` runs. */
class Call<T> extends Abortable implements Admitted {
  settled = false;
  constructor(
    readonly breaker: CircuitBreaker,
    readonly generation: number,
    readonly probe: boolean,
    readonly resolve: (value: T) => void,
    readonly reject: (reason: unknown) => void,
  ) {
    super();
  }
  onAbort(reason: unknown): void {
    this.breaker.abandon(this);
    this.reject(reason);
  }
}

/**
 * A circuit breaker around calls to one dependency. `run(fn)` calls `fn` while the breaker is
 * closed; once enough calls failed (`failureRate` of at least `minimumCalls` calls in the
 * window) it opens, and for `openMs` every `run` fails fast with `BreakerOpenError` (its
 * `retryAfterMs` says how long is left) without calling `fn`. Then it turns half-open and lets
 * `halfOpenProbes` probe calls through at once (others fail fast, `retryAfterMs: 0`): if all
 * succeed it closes, if any fails it opens again for another `openMs`.
 *
 * What counts: a call whose `fn` resolves is a success; one that rejects (or throws) is a
 * failure, `BusyError` included (an overloaded dependency is one to back off from), unless
 * `isFailure` says otherwise; a call whose caller aborted before `fn` settled counts as neither,
 * and if it was a probe its slot is given back at once.
 *
 * Never blocks: `run` admits or refuses at once and then waits only for `fn`. Bounded: fixed
 * memory for the window, no timers, no queue. State changes are told to `onStateChange`
 * listeners.
 *
 * @example
 * const breaker = new CircuitBreaker({ name: "payments", failureRate: 0.5, openMs: 10_000 });
 * try {
 *   return await breaker.run((signal) => payments.charge(order, { signal }), { signal });
 * } catch (e) {
 *   if (e instanceof BreakerOpenError) return reply503(e.retryAfterMs);
 *   throw e;
 * }
 */
export class CircuitBreaker {
  readonly #failureRate: number;
  readonly #minimumCalls: number;
  readonly #window: OutcomeWindow;
  readonly #openMs: number;
  readonly #halfOpenProbes: number;
  readonly #isFailure: ((error: unknown) => boolean) | undefined;
  readonly #clock: Clock;
  readonly #name: string | undefined;
  readonly #listeners = new Set<(change: BreakerStateChange) => void>();
  #warnedListeners = false;

  #state: BreakerState = "closed";
  #generation = 0;
  #openedAt = 0;
  #probesRunning = 0;
  #probeSuccesses = 0;

  #calls = 0;
  #successes = 0;
  #failures = 0;
  #aborted = 0;
  #running = 0;
  #rejected = 0;
  #transitions = 0;

  /** @throws TypeError / RangeError naming the option, for a bad option. */
  constructor(options?: CircuitBreakerOptions) {
    checkOptions(options);
    const rate = checkNumber(given(options?.failureRate, 0.5), "options.failureRate");
    if (!(rate > 0 && rate <= 1)) throw new RangeError(`options.failureRate must be a number in (0, 1], got ${rate}`);
    this.#failureRate = rate;
    this.#minimumCalls = checkInteger(given(options?.minimumCalls, 10), "options.minimumCalls", 1);
    this.#window = parseWindow(options?.window, this.#minimumCalls);
    this.#openMs = checkDuration(given(options?.openMs, 30_000), "options.openMs");
    this.#halfOpenProbes = checkInteger(given(options?.halfOpenProbes, 1), "options.halfOpenProbes", 1);
    this.#isFailure = options?.isFailure === undefined ? undefined : checkFunction(options.isFailure, "options.isFailure");
    this.#clock = checkClock(options?.clock);
    this.#name = checkName(options?.name);
    observe("circuit-breaker", this, this.#name !== undefined);
  }

  /** The name given in the options (undefined without one). */
  get name(): string | undefined {
    return this.#name;
  }

  /** The state now (reading it may move an open breaker whose `openMs` elapsed to half-open). */
  get state(): BreakerState {
    this.#refresh();
    return this.#state;
  }

  /** A fresh snapshot of the counters (reading it may move open to half-open, as `state` does). */
  get stats(): BreakerStats {
    this.#refresh();
    const now = this.#clock.now();
    return {
      name: this.#name,
      state: this.#state,
      calls: this.#calls,
      successes: this.#successes,
      failures: this.#failures,
      aborted: this.#aborted,
      running: this.#running,
      rejected: this.#rejected,
      transitions: this.#transitions,
      windowCalls: this.#window.calls(now),
      windowFailures: this.#window.failures(now),
    };
  }

  /**
   * Calls `listener({ from, to, at })` after every state change, synchronously, once the new
   * state is in place (so `state` reads `to`). Returns a function that unsubscribes (calling it
   * again does nothing). Listeners are kept until they unsubscribe; past 100 of them one
   * `SluiceWarning` (`SLUICE_BREAKER_LISTENERS`) is emitted, as a leak is likely. A listener
   * that throws does not disturb the breaker or the other listeners: its error is rethrown
   * asynchronously (an uncaught exception, as with a throwing `EventTarget` listener).
   *
   * @example
   * const off = breaker.onStateChange(({ from, to }) => log.warn(`breaker ${from} -> ${to}`));
   */
  onStateChange(listener: (change: BreakerStateChange) => void): () => void {
    checkFunction(listener, "listener");
    const entry = (change: BreakerStateChange): void => listener(change);
    this.#listeners.add(entry);
    if (this.#listeners.size > WARN_LISTENERS && !this.#warnedListeners) {
      this.#warnedListeners = true;
      process.emitWarning(
        `${this.#listeners.size} state-change listeners on ${this.#describe()} (threshold ${WARN_LISTENERS}): ` +
          `call the function onStateChange returns to unsubscribe.`,
        { type: "SluiceWarning", code: "SLUICE_BREAKER_LISTENERS" },
      );
    }
    return () => {
      this.#listeners.delete(entry);
    };
  }

  /**
   * Runs `fn(signal)` through the breaker and settles with its outcome.
   *
   * Rejects without calling `fn`: with `signal.reason` if the signal is already aborted (even
   * when open: nothing is counted); with `BreakerOpenError` when open (`retryAfterMs`: time
   * left until half-open) or half-open with every probe slot taken (`retryAfterMs: 0`), counted
   * in `rejected`; with `TypeError` if `fn` is not a function.
   *
   * While `fn` runs, the only wait is for `fn`. If the signal aborts, `run` rejects at once with
   * `signal.reason` (`fn` sees the abort on the signal it was given: `options.signal`, or a
   * signal that never aborts when there is none); the call is counted as `aborted`, not as a
   * failure, and a probe slot it held is freed. A synchronous throw from `fn` is a rejection.
   *
   * @example
   * const rows = await breaker.run((signal) => db.query(sql, { signal }), { signal });
   */
  run<T>(fn: (signal: AbortSignal) => T | PromiseLike<T>, options?: { signal?: AbortSignal }): Promise<T> {
    let signal: AbortSignal | undefined;
    try {
      signal = signalOf(options);
      if (signal?.aborted) return Promise.reject(signal.reason);
      checkFunction(fn, "fn");
    } catch (e) {
      return Promise.reject(e);
    }
    this.#refresh();
    let probe = false;
    if (this.#state === "open") {
      this.#rejected++;
      if (rejectChannel.hasSubscribers) publishReject("circuit-breaker", this, "open");
      const left = Math.max(0, this.#openedAt + this.#openMs - this.#clock.now());
      return Promise.reject(new BreakerOpenError(`${this.#describe()} is open`, { retryAfterMs: left }));
    }
    if (this.#state === "half-open") {
      if (this.#probesRunning + this.#probeSuccesses >= this.#halfOpenProbes) {
        this.#rejected++;
        if (rejectChannel.hasSubscribers) publishReject("circuit-breaker", this, "halfOpen");
        return Promise.reject(
          new BreakerOpenError(`${this.#describe()} is half-open and all ${this.#halfOpenProbes} probe slot(s) are taken`, { retryAfterMs: 0 }),
        );
      }
      probe = true;
      this.#probesRunning++;
    }
    this.#calls++;
    this.#running++;
    return new Promise<T>((resolve, reject) => {
      const call = new Call<T>(this, this.#generation, probe, resolve, reject);
      let result: Promise<T>;
      try {
        result = Promise.resolve(fn(signal ?? new AbortController().signal));
      } catch (e) {
        result = Promise.reject(e);
      }
      if (signal !== undefined) {
        if (signal.aborted) {
          // fn aborted its own caller's signal before returning
          call.onAbort(signal.reason);
        } else {
          watchAbort(signal, call);
        }
      }
      result.then(
        (value) => {
          if (call.settled) return;
          unwatchAbort(call);
          this.#end(call, false);
          resolve(value);
        },
        (error: unknown) => {
          if (call.settled) return;
          unwatchAbort(call);
          let failed = true;
          let thrown: { e: unknown } | undefined;
          if (this.#isFailure !== undefined) {
            try {
              failed = this.#isFailure(error) !== false;
            } catch (e) {
              thrown = { e };
            }
          }
          this.#end(call, failed);
          reject(thrown === undefined ? error : thrown.e);
        },
      );
    });
  }

  /** @internal The caller of `call` aborted while `fn` ran: counted as neither; a probe slot is freed. */
  abandon(call: Admitted): void {
    if (call.settled) return;
    call.settled = true;
    this.#running--;
    this.#aborted++;
    if (call.probe && call.generation === this.#generation) this.#probesRunning--;
  }

  #end(call: Admitted, failed: boolean): void {
    call.settled = true;
    this.#running--;
    if (failed) this.#failures++;
    else this.#successes++;
    if (call.generation !== this.#generation) return; // started before the last transition
    if (call.probe) {
      this.#probesRunning--;
      if (failed) {
        this.#transition("open");
      } else if (++this.#probeSuccesses >= this.#halfOpenProbes) {
        this.#transition("closed");
      }
      return;
    }
    const now = this.#clock.now();
    this.#window.record(failed, now);
    const calls = this.#window.calls(now);
    if (calls >= this.#minimumCalls && this.#window.failures(now) / calls >= this.#failureRate) {
      this.#transition("open");
    }
  }

  #refresh(): void {
    if (this.#state === "open" && this.#clock.now() >= this.#openedAt + this.#openMs) {
      this.#transition("half-open");
    }
  }

  #transition(to: BreakerState): void {
    const from = this.#state;
    const at = this.#clock.now();
    this.#state = to;
    this.#generation++;
    this.#transitions++;
    this.#probesRunning = 0;
    this.#probeSuccesses = 0;
    this.#window.clear();
    if (to === "open") this.#openedAt = at;
    if (breakerStateChannel.hasSubscribers) {
      const e: BreakerStateEvent = { kind: "circuit-breaker", name: this.#name, boundary: this, from, to, at };
      breakerStateChannel.publish(e);
    }
    if (this.#listeners.size === 0) return;
    const change: BreakerStateChange = { from, to, at };
    for (const listener of [...this.#listeners]) {
      try {
        listener(change);
      } catch (e) {
        process.nextTick(() => {
          throw e;
        });
      }
    }
  }

  #describe(): string {
    return `circuit breaker${this.#name === undefined ? "" : ` ${JSON.stringify(this.#name)}`}`;
  }
}
