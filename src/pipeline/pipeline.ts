/**
 * `pipeline(source, ...stages)`: stages joined by bounded channels, run as one unit that fails,
 * aborts and stops as a whole (ErrGroup-style).
 *
 * Invariants of a run (an `Execution`):
 *  - Links: `links[0]` is the source's channel (the source itself when it is a `Channel`; for a
 *    synchronous iterable, a link that pulls from it on receive and holds nothing; otherwise a
 *    channel of `sourceBuffer` filled by a pump), `links[i + 1]` the output of stage `i`, with
 *    capacity `stage.buffer`. Every link is
 *    bounded, so the items alive in a run are at most the sum of the link capacities plus what
 *    each stage holds (1, its concurrency, or one batch) plus one in the source's pump.
 *  - Under `run()` (`discard`) the output link stays empty: what the last stage hands on is
 *    dropped in `deliver`, so draining it costs no hop per item; the link only carries the close.
 *  - Iterated, a hand-on that finds the output link full waits in `outWait` with its value (at
 *    most one waits there; a second writer parks on the link as usual), and `next()` moves that
 *    value to the link's tail once a take leaves the buffer at most half full, then wakes the
 *    writer: the last stage resumes once per half a buffer, not once per item (a send parked on
 *    the link would resume it at every take). The value follows the buffered ones, so order
 *    holds, and it counts against the bound as a parked send's would. An abort rejects the wait
 *    as a closed link rejects a parked send.
 *  - `failure` is set once, by the first failure (or the caller's abort), and `ctl` is aborted
 *    with it in the same step: every stage's signal, every parked send/recv, every running
 *    `fn`'s signal sees that reason. A stop (`break`, `return()`) aborts `ctl` with an internal
 *    reason and records no failure.
 *  - A stage closes its output link when it ends, however it ends; a stage that ends before its
 *    input did (a stage function that stopped reading) closes its input and every link before
 *    it, and the source (`#cancelUpTo`): each stage before it ends quietly, at its next send (a
 *    closed link it was told about, not a failure) or when its own closed input wakes it.
 *  - `settled` resolves once every stage and the source's pump have settled (nothing running,
 *    parked or holding a timer for this run) and the source was closed unless it was exhausted;
 *    only then does `run()` settle or the iteration end or throw.
 */
import { Channel, NOTHING } from "../core/channel.js";
import { ITER } from "../core/waitring.js";
import { ChannelClosedError } from "../core/errors.js";
import { Abortable, unwatchAbort, watchAbort } from "../core/abort.js";
import { recordStack, register, tracing, type ParkedQueue } from "../core/diagnostics.js";
import { checkClock, systemClock, type Clock } from "../core/clock.js";
import { observe } from "../core/registry.js";
import { checkInteger, checkName, checkOptions, given, signalOf } from "../core/validate.js";
import { FunctionStage, type StageFunction } from "./function-stage.js";
import { openSource, type OpenSource, type Source } from "./source.js";
import { DEFAULT_BUFFER, Meter, SKIP, Stage, StageCounters, StageState, hasRoom, isThenable, reader, runClock, type StageRun, type StageStats } from "./stage.js";

/** A stage as `pipeline` takes it: a factory's result, or a function from one async iterable to another. */
export type StageLike<I, O> = Stage<I, O> | StageFunction<I, O>;

/** Options of `pipeline(source, ...stages, options)`. */
export interface PipelineOptions {
  /** Registers every stage with `sluice/metrics` as kind `"pipeline-stage"`, named `"<name>/<stage>"`. */
  name?: string;
  /** The clock for stage timings and `batch`'s `maxWaitMs` (default: the default clock when the run starts). */
  clock?: Clock;
  /** Capacity of the channel between an async iterable or stream source and the first stage (default 16; a synchronous iterable is read directly). */
  sourceBuffer?: number;
}

/** Options of `run` and `values`. */
export interface RunOptions {
  /** Aborting it aborts the run: everything stops, the source is closed, and the run rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/** `pipeline.stats`: one entry per stage, in order. */
export interface PipelineStats {
  readonly stages: readonly StageStats[];
}

/** Ends a run without a failure: the consumer broke out or called `return()`. */
class Stopped extends Error {
  constructor() {
    super("pipeline stopped by its consumer");
  }
}

/** The last stage's `deliver` under `run()`: the value is dropped, nothing waits. */
function discarded(): undefined {
  return undefined;
}

const DONE: IteratorResult<never> = Object.freeze({ value: undefined, done: true }) as IteratorResult<never>;

class CallerAbort extends Abortable {
  constructor(readonly ex: Execution<unknown>) {
    super();
  }
  onAbort(reason: unknown): void {
    this.ex.fail(reason);
  }
}

/**
 * The last stage's hand-on waiting for room in the output link while the run is iterated (at
 * most one: see the invariants of `Execution`). Registered with the diagnostics as a parked
 * send on that link, so `parkedWork()` and the exit-time report show it as they would show a
 * sender parked on the link itself.
 */
class OutputWait implements ParkedQueue {
  readonly role = "send";
  value: unknown = undefined;
  resolve: (() => void) | null = null;
  reject: ((e: unknown) => void) | null = null;
  #registered = false;
  constructor(readonly owner: Channel<unknown>) {}

  get length(): number {
    return this.resolve === null ? 0 : 1;
  }

  oldest(): object[] {
    return this.resolve === null ? [] : [this];
  }

  /** Parks `v` until `take()` (room) or `refuse()` (the run aborted). */
  park(v: unknown): Promise<void> {
    this.value = v;
    if (!this.#registered) {
      this.#registered = true;
      register(this);
    }
    return new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
      if (tracing) recordStack(this);
    });
  }

  /** Ends the wait with its value handed to the caller. */
  take(): unknown {
    const v = this.value;
    const resolve = this.resolve!;
    this.value = undefined;
    this.resolve = this.reject = null;
    resolve();
    return v;
  }

  refuse(e: unknown): void {
    const reject = this.reject;
    if (reject === null) return;
    this.value = undefined;
    this.resolve = this.reject = null;
    reject(e);
  }
}

/** @internal One run of a pipeline. */
class Execution<T> {
  readonly ctl = new AbortController();
  /** Whether `ctl` is aborted: set in `#abort`, the only place it aborts, just before (a field read, where the signal's getter checks its receiver on every read). */
  halted = false;
  failure: { error: unknown } | null = null;
  stopped = false;
  readonly links: Channel<unknown>[] = [];
  /** `states[i]`: stage i's shared state (its inline step, whether its loop is idle). */
  readonly states: StageState[] = [];
  /** Links closed by the stage reading them, before their writer was done. */
  readonly cancelled = new Set<Channel<unknown>>();
  readonly output: Channel<T>;
  readonly settled: Promise<void>;
  readonly #source: OpenSource<unknown>;
  readonly #caller = new CallerAbort(this as Execution<unknown>);
  #reported = false;
  /** The last stage's hand-on waiting for room in the output link (see the invariants); made on the first such wait. */
  #outWait: OutputWait | null = null;

  constructor(
    p: Pipeline<T>,
    signal: AbortSignal | undefined,
    /** `run()`: the last stage's output is dropped where it is handed on, never sent into the output link. */
    readonly discard: boolean,
  ) {
    const s = this.ctl.signal;
    const src = (this.#source = openSource(p.source, p.sourceBuffer));
    this.links.push(src.link);
    for (const st of p.stages) this.links.push(new Channel<unknown>(st.buffer));
    this.output = this.links[this.links.length - 1] as Channel<T>;
    const clock = p.clock ?? runClock();
    const now = reader(clock);
    const fail = (e: unknown): void => this.fail(e);
    const tasks: Promise<void>[] = [];
    for (let i = 0; i < p.stages.length; i++) this.states.push(new StageState());
    if (signal !== undefined) {
      if (signal.aborted) this.fail(signal.reason);
      else watchAbort(signal, this.#caller);
    }
    const exact = clock !== systemClock; // an injected clock: every wait timed (see WaitSampler)
    for (const c of p.counters) c.sample(now, exact);
    const srcCounters = new StageCounters("source");
    srcCounters.sample(now, exact);
    const srcMeter = new Meter(srcCounters, now, s, false);
    const forward = (v: unknown): Promise<void> | undefined => this.deliver(-1, v, srcMeter);
    const pumping = s.aborted ? null : src.pump(s, forward);
    if (pumping !== null) tasks.push(pumping.then(undefined, (e: unknown) => this.#ended(e, src.link)));
    p.stages.forEach((st, i) => {
      const input = this.links[i]!;
      const output = this.links[i + 1]!;
      const state = this.states[i]!;
      // Under run() what the last stage hands on goes nowhere (see the invariants): its deliver
      // does nothing, without a call into `deliver` per item to find that out.
      const discards = discard && i === p.stages.length - 1;
      const deliver = discards ? discarded : (v: unknown, m: Meter): Promise<void> | undefined => this.deliver(i, v, m);
      const run: StageRun<unknown, unknown> = { input, output, signal: s, halt: this, counters: p.counters[i]!, clock, now, state, fail, deliver, discards };
      tasks.push(this.#stage(st, run));
    });
    this.settled = Promise.all(tasks).then(() => this.#finish());
  }

  async #stage(st: Stage<unknown, unknown>, run: StageRun<unknown, unknown>): Promise<void> {
    try {
      if (this.ctl.signal.aborted) return;
      await st.run(run);
      // Ended on its own: if its input is not done, nobody reads what comes before it.
      if (!run.input.closed) this.#cancelUpTo(this.links.indexOf(run.input));
    } catch (e) {
      this.#ended(e, run.output);
    } finally {
      run.counters.endMeters(); // a loop that threw did not end its meter
      run.state.step = null;
      run.state.idle = false;
      if (!run.output.closed) run.output.close();
    }
  }

  /**
   * Stage `from` (-1: the source) hands `v` on: through the inline steps of the stages after
   * it while each is idle and the link after it has room, then into the next link (waiting for
   * room, timed on `m`, only there: the first link, since every later hop was checked for room).
   * Under `run()` a value past the last stage is dropped here: its link would only be drained.
   */
  deliver(from: number, v: unknown, m: Meter): Promise<void> | undefined {
    const { states, links } = this;
    for (let j = from + 1; ; j++) {
      const st = states[j];
      if (st !== undefined && st.idle && st.step !== null && !st.async && hasRoom(links[j + 1]!)) {
        const r = st.step(v);
        if (r === SKIP) return undefined;
        if (isThenable(r)) {
          // The step turned out async (or is sending a dead letter): finish this item from here,
          // the wait counted as blocked (the item is downstream's now).
          m.block();
          return Promise.resolve(r).then((x) => {
            if (x === SKIP) return undefined;
            const d = this.deliver(j, x, m);
            if (d === undefined) return undefined;
            return d; // the caller's unblock() covers this wait too
          });
        }
        v = r;
        continue;
      }
      if (st !== undefined) st.idle = false; // its loop is woken with this item: no inline step until it parks again
      else if (this.discard) return undefined; // run(): past the last stage, nobody reads it
      const link = links[j]!;
      if (link.trySend(v)) return undefined;
      if (st === undefined && j > 0 && !link.isClosed && link.capacity > 0) {
        const w = (this.#outWait ??= new OutputWait(link));
        if (w.resolve === null) {
          m.block();
          return w.park(v);
        }
      }
      return m.send(link, v);
    }
  }

  /**
   * Nobody reads link `i` any more (the stage after it ended before its input did): it and every
   * link before it close now, and so does the source, so each writer before it ends quietly at
   * its next send, and a stage parked on an idle input wakes (its input closed) instead of
   * waiting for an item that would go nowhere.
   */
  #cancelUpTo(i: number): void {
    for (let j = i; j >= 0; j--) {
      const link = this.links[j]!;
      if (link.closed) continue;
      this.cancelled.add(link);
      link.close();
      if (j === 0) this.#source.close(undefined);
    }
  }

  /** A task failed with `e` while writing `out`: a stop if `out` was cancelled under it, else a failure. */
  #ended(e: unknown, out: Channel<unknown>): void {
    if (e instanceof ChannelClosedError && this.cancelled.has(out)) {
      if (out === this.links[0]) this.#source.close(undefined);
      const i = this.links.indexOf(out);
      const input = i > 0 ? this.links[i - 1] : undefined;
      if (input !== undefined && !input.closed) {
        this.cancelled.add(input);
        input.close();
        if (input === this.links[0]) this.#source.close(undefined);
      }
      return;
    }
    this.fail(e);
  }

  /** Records the first failure and aborts everything with it. */
  fail(error: unknown): void {
    if (this.failure !== null || this.stopped) return;
    this.failure = { error };
    this.#abort(error);
  }

  /** The consumer is done: stop everything without a failure. */
  stop(): Promise<void> {
    if (this.failure === null && !this.stopped && !this.ctl.signal.aborted) {
      this.stopped = true;
      this.#abort(new Stopped());
    }
    return this.settled;
  }

  #abort(reason: unknown): void {
    unwatchAbort(this.#caller);
    this.halted = true;
    this.ctl.abort(reason);
    this.#source.close(reason);
    // Stages park on their links without a signal (the cheapest park): closing the links wakes
    // every one of them, and each sees the run's signal aborted.
    for (const link of this.links) if (!link.closed) link.close();
    this.#outWait?.refuse(this.output.closedError("send on"));
  }

  #finish(): void {
    unwatchAbort(this.#caller);
    if (this.ctl.signal.aborted) this.#source.close(this.ctl.signal.reason);
  }

  /** Where the consumer's next() lands once the output is closed or the run aborted. */
  async end(): Promise<IteratorResult<T>> {
    await this.settled;
    if (this.#reported) return DONE;
    this.#reported = true;
    if (this.failure !== null) throw this.failure.error;
    return DONE;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.halted) return this.end();
    const out = this.output;
    let v: T | typeof NOTHING;
    try {
      v = out.take(); // with no stages, the source's link (which may pull from a synchronous iterable)
    } catch (e) {
      this.fail(e); // that iterable threw
      return this.end();
    }
    if (v !== NOTHING) {
      const w = this.#outWait;
      // Room, and open (an abort ends the wait): the waiting value goes after the buffered ones.
      if (w !== null && w.resolve !== null && out.count <= out.capacity >> 1) out.trySend(w.take() as T);
      return Promise.resolve({ value: v, done: false });
    }
    if (out.isClosed) return this.end();
    if (out.recvq.length >= out.maxParkedRecvs) {
      // Refused (BusyError) as any receive past the limit; only a caller calling next() without awaiting gets here.
      return out.recv().then((r) => (r.ok && !this.halted ? { value: r.value, done: false } : this.end()));
    }
    // Parked as an iterator's receive: the channel resolves it with the IteratorResult itself
    // (one hop per item, no callback chained on a RecvResult); the end goes through `end()`.
    return new Promise<IteratorResult<T>>((resolve) => {
      out.recvq.push((r: IteratorResult<T>) => resolve(r.done !== true && !this.halted ? r : this.end()), ITER, undefined);
    });
  }
}

class PipelineIterator<T> implements AsyncIterableIterator<T> {
  #ex: Execution<T> | null = null;
  #done = false;
  constructor(
    readonly p: Pipeline<T>,
    readonly signal: AbortSignal | undefined,
  ) {}

  next(): Promise<IteratorResult<T>> {
    if (this.#done) return Promise.resolve(DONE);
    if (this.#ex === null) {
      if (this.signal?.aborted === true) {
        // As in run(): the aborted signal wins, and nothing is started, read or closed.
        this.#done = true;
        return Promise.reject(this.signal.reason);
      }
      try {
        this.#ex = this.p.start(this.signal);
      } catch (e) {
        this.#done = true;
        return Promise.reject(e);
      }
    }
    return this.#ex.next();
  }

  async return(): Promise<IteratorResult<T>> {
    const ended = this.#done; // by an already-aborted signal, or a start that threw: nothing to claim or stop
    this.#done = true;
    if (this.#ex !== null) await this.#ex.stop();
    else if (!ended) this.p.claim(); // returned before its first next(): the pipeline is consumed
    return DONE;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}

/**
 * A pipeline: a source and stages, joined by bounded channels. Nothing runs until it is
 * consumed, once: by iterating it (`for await`, `values({ signal })`) or by `run({ signal })`.
 *
 * Bounded: the items alive are at most the sum of the links' buffers plus what each stage holds
 * (1, its concurrency, or a batch). A slow consumer or last stage slows the first: nothing
 * grows. The first failure anywhere (a stage's function, the source, a stage function) fails
 * the whole run with that error, unchanged: every stage's signal fires with it, the source is
 * closed (`return()`, `destroy()`, `cancel()`; a `Channel` source is closed), and the run
 * settles only when nothing is left running, parked or holding a timer. An abort does the same
 * with `signal.reason`. `break` stops it the same way, without an error.
 *
 * @example
 * const p = pipeline(orders, filter(valid), map(enrich, { concurrency: 8 }), batch({ size: 100 }), map(save));
 * const stats = await p.run({ signal });
 */
export class Pipeline<T> implements AsyncIterable<T> {
  /** @internal */ readonly source: Source<unknown>;
  /** @internal */ readonly stages: readonly Stage<unknown, unknown>[];
  /** @internal */ readonly counters: readonly StageCounters[];
  /** @internal */ readonly clock: Clock | undefined;
  /** @internal */ readonly sourceBuffer: number;
  readonly #name: string | undefined;
  /** Kept alive with the pipeline: the registry holds them weakly. */
  readonly #observed: readonly object[];
  #consumed = false;

  /** @internal Use `pipeline(source, ...stages)`. */
  constructor(source: Source<unknown>, stages: readonly StageLike<unknown, unknown>[], options: PipelineOptions | undefined) {
    checkOptions(options);
    this.#name = checkName(options?.name);
    this.clock = options?.clock === undefined ? undefined : checkClock(options.clock);
    this.sourceBuffer = checkInteger(given(options?.sourceBuffer, DEFAULT_BUFFER), "options.sourceBuffer", 0);
    // Fails at once for a source of no known kind (nothing is read until the run).
    checkSource(source);
    this.source = source;
    this.stages = stages.map((s, i) => {
      if (s instanceof Stage) return s;
      if (typeof s === "function") return new FunctionStage(s);
      throw new TypeError(`stage ${i} must be a stage (map, filter, ...) or a function (input, signal) => AsyncIterable`);
    });
    this.counters = this.stages.map((s, i) => new StageCounters(s.name ?? `${s.kind}#${i}`));
    const name = this.#name;
    this.#observed =
      name === undefined
        ? []
        : this.counters.map((c) => {
            const full = `${name}/${c.name}`;
            const o = { name: full, get stats(): StageStats { return { ...c.snapshot(), name: full }; } };
            observe("pipeline-stage", o, true);
            return o;
          });
  }

  /** The `name` option. */
  get name(): string | undefined {
    return this.#name;
  }

  /** A fresh snapshot: per stage, in order, `{ name, in, out, dropped, errors, busyMs, blockedMs }` of the run (zeros before it). */
  get stats(): PipelineStats {
    return { stages: this.counters.map((c) => c.snapshot()) };
  }

  /** @internal How many stages are registered with the metrics registry. */
  get observedCount(): number {
    return this.#observed.length;
  }

  /** @internal Marks the pipeline consumed; throws if it already was. */
  claim(): void {
    if (this.#consumed) throw new Error("a pipeline runs once: it was already consumed");
    this.#consumed = true;
  }

  /** @internal */
  start(signal: AbortSignal | undefined, discard = false): Execution<T> {
    this.claim();
    return new Execution<T>(this, signal, discard);
  }

  /**
   * Iterates the last stage's output. `signal` aborts the run (the pending `next()` rejects
   * with `signal.reason`, once everything has stopped); already aborted, the first `next()`
   * rejects with it and nothing is started. `break` stops and cleans up everything.
   *
   * @example
   * for await (const row of pipeline(src, map(parse)).values({ signal })) console.log(row);
   */
  values(options?: RunOptions): AsyncIterableIterator<T> {
    const signal = signalOf(options);
    return new PipelineIterator(this, signal);
  }

  /** Same as `values()`. */
  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return new PipelineIterator(this, undefined);
  }

  /**
   * Runs the pipeline to the end, discarding the last stage's output, and resolves with the
   * stats once the source ended and everything in flight completed. Rejects with the first
   * failure, unchanged, or with `signal.reason`, after everything has stopped. An already-aborted
   * signal rejects at once and does nothing (the source is not read or closed; the pipeline is
   * not consumed).
   *
   * @example
   * const { stages } = await pipeline(jobs, map(handle, { concurrency: 4 })).run({ signal });
   */
  async run(options?: RunOptions): Promise<PipelineStats> {
    const signal = signalOf(options);
    // An aborted signal wins over every other outcome ("already consumed" too) and does nothing:
    // nothing is started, read or closed, and the pipeline is not consumed.
    if (signal?.aborted) throw signal.reason;
    const ex = this.start(signal, true);
    const out = ex.output; // stays empty: closed when the last stage ends, or at an abort
    for (;;) {
      if (ex.halted) break;
      let r = out.tryRecv();
      if (r === undefined) r = await out.recv(); // closed at an abort
      if (!r.ok) break;
    }
    await ex.end();
    return this.stats;
  }
}

function checkSource(source: unknown): void {
  const s = source as Record<PropertyKey, unknown> | null;
  if (source instanceof Channel) return;
  if (s != null && (typeof s === "object" || typeof s === "string") &&
      (typeof s[Symbol.asyncIterator] === "function" || typeof s[Symbol.iterator] === "function" || typeof s.getReader === "function")) return;
  throw new TypeError("source must be a Channel, an iterable, an async iterable, a Node Readable or a web ReadableStream");
}

function isOptions(x: unknown): x is PipelineOptions {
  return x !== null && typeof x === "object" && !(x instanceof Stage);
}

/**
 * Joins `source` and `stages` into a `Pipeline` (nothing runs until it is consumed). A source is
 * a `Channel`, an iterable, an async iterable, a Node `Readable` or a web `ReadableStream`; a
 * stage is `map`, `filter`, `flatMap`, `batch`, `tap`, `rateLimit`, or a function
 * `(input, signal) => AsyncIterable`. An options object (`{ name, clock, sourceBuffer }`) may
 * follow the last stage.
 *
 * @example
 * const p = pipeline(readOrders(), filter(isValid), map(enrich, { concurrency: 8 }), batch({ size: 100 }));
 * for await (const rows of p) await save(rows);
 */
export function pipeline<A, B, C, D, E, F, G, H, J>(source: Source<A>, s1: StageLike<A, B>, s2: StageLike<B, C>, s3: StageLike<C, D>, s4: StageLike<D, E>, s5: StageLike<E, F>, s6: StageLike<F, G>, s7: StageLike<G, H>, s8: StageLike<H, J>, options?: PipelineOptions): Pipeline<J>;
export function pipeline<A, B, C, D, E, F, G, H>(source: Source<A>, s1: StageLike<A, B>, s2: StageLike<B, C>, s3: StageLike<C, D>, s4: StageLike<D, E>, s5: StageLike<E, F>, s6: StageLike<F, G>, s7: StageLike<G, H>, options?: PipelineOptions): Pipeline<H>;
export function pipeline<A, B, C, D, E, F, G>(source: Source<A>, s1: StageLike<A, B>, s2: StageLike<B, C>, s3: StageLike<C, D>, s4: StageLike<D, E>, s5: StageLike<E, F>, s6: StageLike<F, G>, options?: PipelineOptions): Pipeline<G>;
export function pipeline<A, B, C, D, E, F>(source: Source<A>, s1: StageLike<A, B>, s2: StageLike<B, C>, s3: StageLike<C, D>, s4: StageLike<D, E>, s5: StageLike<E, F>, options?: PipelineOptions): Pipeline<F>;
export function pipeline<A, B, C, D, E>(source: Source<A>, s1: StageLike<A, B>, s2: StageLike<B, C>, s3: StageLike<C, D>, s4: StageLike<D, E>, options?: PipelineOptions): Pipeline<E>;
export function pipeline<A, B, C, D>(source: Source<A>, s1: StageLike<A, B>, s2: StageLike<B, C>, s3: StageLike<C, D>, options?: PipelineOptions): Pipeline<D>;
export function pipeline<A, B, C>(source: Source<A>, s1: StageLike<A, B>, s2: StageLike<B, C>, options?: PipelineOptions): Pipeline<C>;
export function pipeline<A, B>(source: Source<A>, s1: StageLike<A, B>, options?: PipelineOptions): Pipeline<B>;
export function pipeline<A>(source: Source<A>, options?: PipelineOptions): Pipeline<A>;
export function pipeline(source: Source<unknown>, ...rest: (StageLike<unknown, unknown> | PipelineOptions)[]): Pipeline<unknown>;
export function pipeline(source: Source<unknown>, ...rest: unknown[]): Pipeline<unknown> {
  let options: PipelineOptions | undefined;
  if (rest.length > 0 && isOptions(rest[rest.length - 1])) options = rest.pop() as PipelineOptions;
  return new Pipeline(source, rest as StageLike<unknown, unknown>[], options);
}

