/**
 * What every pipeline stage shares: the `Stage` type the factories return, the options every
 * factory takes (`name`, `buffer`), the counters behind `pipeline.stats`, and the `Meter` a
 * stage's loop uses to receive, send and time itself.
 *
 * Invariants of a stage run:
 *  - A stage reads only its input channel and writes only its output channel (and its
 *    `deadLetter` channel, if any); both are bounded, so a stage holds at most its own
 *    in-flight items (1, its concurrency, or a batch) beyond what the channels buffer.
 *  - Time is split three ways: waiting for input (not counted), waiting for room in the output
 *    (or dead-letter) channel (`blockedMs`), and everything else (`busyMs`: a loop's lifetime
 *    less its waits; for a `map` with concurrency above 1, which has no loop, the sum of its
 *    calls' durations). The clock is read only around the waits (and calls) that a
 *    `WaitSampler` picks, never per item on the fast path.
 */
import type { Channel, RecvResult } from "../core/channel.js";
import { defaultClock, systemClock, type Clock } from "../core/clock.js";
import { checkInteger, checkName, checkOptions, given } from "../core/validate.js";

/** The default capacity of the channel after each stage. */
export const DEFAULT_BUFFER = 16;

/** Options every stage factory takes. */
export interface StageOptions {
  /** The stage's name in `pipeline.stats` and in metrics (default: the factory's name and the stage's index, `"map#0"`). */
  name?: string;
  /**
   * Capacity of the bounded channel between this stage and the next (a non-negative safe
   * integer, default 16; 0 is a hand-off). When it is full the stage waits (`blockedMs`).
   */
  buffer?: number;
}

/**
 * A failure routed to a dead-letter channel instead of failing the pipeline: the item, the
 * error, and the stage's name.
 */
export interface DeadLetter<I> {
  readonly item: I;
  readonly error: unknown;
  readonly stage: string;
}

/** Options of the stages that call a function per item and can route its failures. */
export interface ItemStageOptions<I> extends StageOptions {
  /**
   * Where failures of the function go instead of failing the pipeline: each failed item is sent
   * there as a `DeadLetter` (waiting for room: a full dead-letter channel slows the stage, it
   * never grows), counted in `errors`, and the stage goes on. A closed dead-letter channel fails
   * the pipeline. Without it, the first failure fails the whole pipeline.
   */
  deadLetter?: Channel<DeadLetter<I>>;
}

/** One stage's counters in `pipeline.stats` (a fresh snapshot). */
export interface StageStats {
  readonly name: string;
  /** Items received from the previous stage (or the source). */
  readonly in: number;
  /** Items sent to the next stage (for `batch`, batches; for `flatMap`, expanded items). */
  readonly out: number;
  /** Items that went on no further by design: rejected by `filter`. */
  readonly dropped: number;
  /** Calls of the stage's function that failed (routed to `deadLetter`, or the one that failed the pipeline). */
  readonly errors: number;
  /**
   * Milliseconds working: calling the function, awaiting it, waiting on a rate limiter. For a
   * `map` with concurrency above 1, the sum over its concurrent calls.
   */
  readonly busyMs: number;
  /** Milliseconds waiting for room downstream: high here means a later stage is the bottleneck. */
  readonly blockedMs: number;
}

/**
 * @internal The live counters of one stage. `busyMs` and `blockedMs` hold what the stage's
 * ended meters counted (and busy time a stage adds itself, per call); the meters still running
 * add theirs when a snapshot is taken.
 */
export class StageCounters {
  in = 0;
  out = 0;
  dropped = 0;
  errors = 0;
  /** Busy time a stage counts itself, per call (a `map` with concurrency above 1). */
  busyMs = 0;
  /** Of the meters that ended: lifetime (of those that count busy time) and estimated waits (ms). */
  lifeMs = 0;
  idleMs = 0;
  blockedMs = 0;
  /** The meters of this stage that have not ended (one per loop). */
  readonly meters = new Set<Meter>();
  /** Which of this stage's waits for input (or a turn) are timed, and which waits for room downstream (set when a run starts). */
  idleSampler: WaitSampler | null = null;
  blockedSampler: WaitSampler | null = null;
  constructor(public name: string) {}

  /**
   * Busy time is the meters' lifetimes less their waits, summed over the stage before it is
   * clamped at 0: the waits are sampled estimates (see `WaitSampler`) that are unbiased for the
   * stage as a whole, not for each of its loops.
   */
  snapshot(): StageStats {
    let life = this.lifeMs;
    let idle = this.idleMs;
    let blockedMs = this.blockedMs;
    for (const m of this.meters) {
      const [l, i, b] = m.live();
      life += l;
      idle += i;
      blockedMs += b;
    }
    const busyMs = this.busyMs + Math.max(0, life - idle - blockedMs);
    return { name: this.name, in: this.in, out: this.out, dropped: this.dropped, errors: this.errors, busyMs, blockedMs };
  }

  /** Sets the samplers of a run: `exact` (an injected clock) times every wait. */
  sample(now: () => number, exact: boolean): void {
    this.idleSampler = new WaitSampler(now, exact);
    this.blockedSampler = new WaitSampler(now, exact);
  }

  /** The run of the stage is over: every meter still open ends now. */
  endMeters(): void {
    for (const m of this.meters) m.end();
  }
}

/** The most waits one timed wait stands for, on average. */
const MAX_STRIDE = 64;

/**
 * @internal Which waits of a stage are timed. A clock read costs about as much as a channel
 * hop, and a stage that parks once per item would spend more on timing its waits than on its
 * work. With an injected clock every wait is timed (tests want exact figures). With the real
 * clock, a sample: every wait while they are rarer than one per millisecond, else about one in
 * `stride`. The stride doubles (up to 64) while timed waits come less than a millisecond apart
 * and drops back to 1 once they come more than 4 ms apart, so a change of pace is seen within
 * about 128 waits. The gap to the next timed wait is drawn at random, `stride - 1` on average,
 * so loops that wait in turn are not aliased; a timed wait stands for itself and the untimed
 * waits after it (its weight: their number, drawn when it is taken). A stage has one sampler
 * for its waits for input and one for its waits for room downstream, so each kind is
 * extrapolated from its own samples (a `map` with concurrency above 1 has a third, for the
 * durations of its calls). So `blockedMs` and the waits taken out of `busyMs` are
 * estimates that converge over a run; a stage that waits often reads the clock around one wait
 * in 64 at most.
 */
export class WaitSampler {
  /** The clock read of the last timed wait's start. */
  at = 0;
  #countdown = 0;
  #stride = 1;
  #last = -Infinity;
  constructor(
    readonly now: () => number,
    readonly exact: boolean,
  ) {}

  /** At the start of a wait: its weight, 0 if it is not timed (then `at` is not read). */
  take(): number {
    if (this.exact) {
      this.at = this.now();
      return 1;
    }
    if (this.#countdown > 0) {
      this.#countdown--;
      return 0;
    }
    const t = (this.at = this.now());
    const gap = t - this.#last;
    this.#last = t;
    if (gap < 1) {
      if (this.#stride < MAX_STRIDE) this.#stride *= 2;
    } else if (gap > 4) {
      this.#stride = 1; // waits became rare (or long): time them all again at once
    }
    // The next timed wait comes after a random number of untimed ones, stride - 1 on average (a
    // fixed stride would keep picking the same loop's waits when loops wait in turn); this one
    // stands for itself and those.
    const w = this.#stride;
    this.#countdown = w === 1 ? 0 : Math.floor(Math.random() * (2 * w - 1));
    return this.#countdown + 1;
  }
}

/** @internal A function reading milliseconds: `performance.now` for the real clock (same time, finer), else the clock's. */
export function reader(clock: Clock): () => number {
  return clock === systemClock ? () => performance.now() : () => clock.now();
}

/** @internal What an inline step returns when the item goes no further (dropped, dead-lettered, held in a batch). */
export const SKIP: unique symbol = Symbol("skip");

/**
 * @internal A stage's run-time state, shared by its loop and the stage before it.
 *
 * Inline steps: a stage whose per-item work may be synchronous (map with concurrency 1,
 * filter, tap, batch without maxWaitMs) sets `step`. While its loop is parked on an empty input
 * (`idle`), the stage before it may run `step` on its next item directly instead of sending it
 * through the link and waking the loop (one promise and one resumption per item per stage
 * saved). That is safe for order: `idle` means the link is empty and the loop holds no item,
 * and the writer of a link clears `idle` whenever it sends into the link instead. A step whose
 * function once returned a promise marks the stage `async`: from then on it gets its items
 * through its link, so async stages still overlap each other as separate loops.
 */
export class StageState {
  idle = false;
  async = false;
  step: ((item: unknown) => unknown) | null = null;
}

/** @internal What a stage's loop gets for one run. */
export interface StageRun<I, O> {
  readonly input: Channel<I>;
  readonly output: Channel<O>;
  readonly signal: AbortSignal;
  /** The run: `halted` is true once `signal` aborted (a field read, for per-item checks; the signal's getter checks its receiver on every read). */
  readonly halt: { readonly halted: boolean };
  readonly counters: StageCounters;
  readonly clock: Clock;
  readonly now: () => number;
  readonly state: StageState;
  /** Fails the whole run with `error` at once (the first failure wins). */
  fail(error: unknown): void;
  /**
   * Hands `value` on (counted in `out` by the caller): through the next stages' inline steps
   * while they are idle, else into the link. Returns a promise only when it must wait (no room
   * downstream, or an inline step that turned out async); `m` times that wait.
   */
  deliver(value: O, m: Meter): Promise<void> | undefined;
  /** What this stage hands on goes nowhere (the last stage under `run()`): `deliver` drops it, never waits. */
  readonly discards: boolean;
}

/** @internal Whether `ch` takes a value now (room in the buffer, or a receiver waiting). */
export function hasRoom(ch: Channel<unknown>): boolean {
  return !ch.closed && (ch.length < ch.capacity || ch.recvq.length > 0);
}

/**
 * @internal The inline step of a per-item stage: `fn` on the item, then what `after` makes of
 * its result. A thrown or rejected `fn` is counted and routed to `dead` (or rethrown). If `fn`
 * returns a promise, the stage is marked async and the step returns a promise of the result.
 */
export function itemStep<I>(
  r: StageRun<I, unknown>,
  fn: (item: I, signal: AbortSignal) => unknown,
  after: (item: I, result: unknown) => unknown,
  dead: Channel<DeadLetter<I>> | undefined,
): (item: unknown) => unknown {
  const { counters: c, signal, state } = r;
  const failed = (item: I, e: unknown): unknown => {
    if (signal.aborted) throw signal.reason; // the run stopped under the call: not the item's failure
    c.errors++;
    if (dead === undefined) throw e;
    const letter: DeadLetter<I> = { item, error: e, stage: c.name };
    if (dead.trySend(letter)) return SKIP;
    return dead.send(letter, { signal }).then(() => SKIP);
  };
  return (v: unknown): unknown => {
    const item = v as I;
    c.in++;
    let p: unknown;
    try {
      p = fn(item, signal);
    } catch (e) {
      return failed(item, e);
    }
    if (!isThenable(p)) return after(item, p);
    state.async = true;
    return Promise.resolve(p).then((x) => after(item, x), (e: unknown) => failed(item, e));
  };
}

/**
 * A stage of a pipeline, as returned by `map`, `filter`, `flatMap`, `batch`, `tap` and
 * `rateLimit`. Opaque: pass it to `pipeline(source, ...stages)`. A stage object holds no state
 * of its own between runs and may be used in several pipelines.
 */
export abstract class Stage<I, O> {
  /** The factory's name: "map", "filter", ... */
  readonly kind: string;
  /** The `name` option, if given. */
  readonly name: string | undefined;
  /** The capacity of the channel after this stage. */
  readonly buffer: number;
  /** @internal Phantom fields for type inference. */
  declare readonly _in: (i: I) => void;
  declare readonly _out: O;

  protected constructor(kind: string, options: StageOptions | undefined) {
    checkOptions(options);
    this.kind = kind;
    this.name = checkName(options?.name);
    this.buffer = checkInteger(given(options?.buffer, DEFAULT_BUFFER), "options.buffer", 0);
  }

  /** @internal Runs the stage until its input ends (resolves) or it fails or the run aborts (rejects). */
  abstract run(r: StageRun<I, O>): Promise<void>;
}

/**
 * @internal A stage loop's timing and its slow paths (the fast paths, `tryRecv`/`trySend`, are
 * inlined in the loops). Invariants: at most one wait is in progress (`kind`); a wait is timed
 * (`since` is a number) only if the stage's sampler picked it or a snapshot looked at it, and
 * then adds `weight` times its length to `idle` or `blocked` when it ends; the loop's busy time
 * is its lifetime less those estimates, summed per stage (`StageCounters.snapshot`).
 */
export class Meter {
  readonly opts: { signal: AbortSignal };
  readonly #idleSampler: WaitSampler;
  readonly #blockedSampler: WaitSampler;
  readonly #start: number;
  /** Estimated time waiting for input (or a turn), and for room downstream (ms). */
  #idle = 0;
  #blocked = 0;
  /** The wait in progress: `NONE`, `IDLE` or `BLOCKED`. */
  #kind = NONE;
  /** When the wait in progress began, if it is timed (NaN: untimed, or no wait). */
  #since = NaN;
  #weight = 0;
  #ended = false;
  constructor(
    readonly c: StageCounters,
    readonly now: () => number,
    signal: AbortSignal,
    /** Whether time not spent waiting counts as busy (false where the stage times its calls itself). */
    readonly busy = true,
  ) {
    this.opts = { signal };
    if (c.idleSampler === null) c.sample(now, false);
    this.#idleSampler = c.idleSampler!;
    this.#blockedSampler = c.blockedSampler!;
    this.#start = now();
    c.meters.add(this);
  }

  #begin(kind: number): void {
    if (this.#kind !== NONE) return; // already waiting (a wait that goes on in another form)
    this.#kind = kind;
    const sampler = kind === BLOCKED ? this.#blockedSampler : this.#idleSampler;
    const w = sampler.take();
    this.#weight = w;
    this.#since = w === 0 ? NaN : sampler.at;
  }

  #finish(): void {
    const since = this.#since;
    if (since === since) {
      const d = (this.now() - since) * this.#weight;
      if (this.#kind === BLOCKED) this.#blocked += d;
      else this.#idle += d;
    }
    this.#kind = NONE;
    this.#since = NaN;
  }

  readonly #resume = <R>(r: R): R => {
    this.#finish();
    return r;
  };

  /**
   * Waits for input (time not counted). A link is closed when the run aborts, which wakes this
   * with `ok: false`: loops check their signal then.
   */
  recv<T>(input: Channel<T>): Promise<RecvResult<T>> {
    this.#begin(IDLE);
    return input.recv().then(this.#resume);
  }

  /** A wait for input that the caller awaits itself begins now; `resume()` ends it. */
  pause(): void {
    this.#begin(IDLE);
  }

  /** The wait that `pause()` began is over. */
  resume(): void {
    this.#finish();
  }

  /**
   * Starts waiting for room in `output` (rejects with ChannelClosedError if the link is closed
   * under it); the caller calls `unblock()` once the promise settles, which counts the wait in
   * `blockedMs`.
   */
  send<T>(output: Channel<T>, value: T): Promise<void> {
    this.block();
    return output.send(value);
  }

  /** A wait for downstream begins now. */
  block(): void {
    this.#begin(BLOCKED);
  }

  /** The wait that `block()` began is over. */
  unblock(): void {
    this.#finish();
  }

  /** Waits for room in a channel that is not a link (a dead-letter channel): with the run's signal. */
  async sendWatched<T>(ch: Channel<T>, value: T): Promise<void> {
    this.block();
    try {
      await ch.send(value, this.opts);
    } finally {
      this.unblock();
    }
  }

  /** Counts a failure and routes it to `dead` (waiting for room), or rethrows it. */
  async fail<I>(dead: Channel<DeadLetter<I>> | undefined, item: I, error: unknown): Promise<void> {
    // A call that failed because the run stopped under it: the stop, not the item's failure.
    if (this.opts.signal.aborted) throw this.opts.signal.reason;
    this.c.errors++;
    if (dead === undefined) throw error;
    const letter: DeadLetter<I> = { item, error, stage: this.c.name };
    if (!dead.trySend(letter)) await this.sendWatched(dead, letter);
  }

  /**
   * `[lifetime, idle, blocked]` so far (ms; lifetime and idle 0 for a meter that does not count
   * busy time), for a snapshot while the stage runs. A wait in progress that is not timed is
   * timed from now on (so a stage stuck in one shows it from the first look).
   */
  live(): [number, number, number] {
    const t = this.now();
    let idle = this.#idle;
    let blocked = this.#blocked;
    if (this.#kind !== NONE) {
      if (this.#since !== this.#since) {
        this.#since = t;
        this.#weight = 1;
      } else if (this.#kind === BLOCKED) {
        blocked += t - this.#since;
      } else {
        idle += t - this.#since;
      }
    }
    return this.busy ? [t - this.#start, idle, blocked] : [0, 0, blocked];
  }

  /** The loop is over: its busy and blocked time go into the stage's counters (once). */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#kind !== NONE) this.#finish();
    const [life, idle, blocked] = this.live();
    this.c.lifeMs += life;
    this.c.idleMs += idle;
    this.c.blockedMs += blocked;
    this.c.meters.delete(this);
  }
}

const NONE = 0;
const IDLE = 1;
const BLOCKED = 2;

/** @internal */
export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === "object" || typeof v === "function") && typeof (v as PromiseLike<unknown>).then === "function";
}

/** @internal The default clock at the time a run starts. */
export function runClock(): Clock {
  return defaultClock();
}
