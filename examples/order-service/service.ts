/**
 * Seed 001's reference service, wired with sluice: consume -> validate -> enrich -> persist ->
 * ack, with graceful shutdown.
 *
 *   broker --intake--> [Channel] validate --> enrich (AIMD limit <= 16) --> batch(50) --> persist x2 --> ack
 *                          |                    |  RateLimiter, retry + RetryBudget
 *                          +-- dead letters ----+--> desk (select over both) --> ack
 *
 * Invariants:
 *  - Bounded end to end: the broker hands out at most `maxUnacked` deliveries; every link of the
 *    pipeline is a bounded channel; the enrich stage runs at most `enrichConcurrency` lookups,
 *    the persist stage at most `persistConcurrency` batches; dead-letter channels are bounded.
 *  - A delivery is acked only after its row's batch committed (or after it was dead-lettered),
 *    exactly once; every delivery taken and not acked when the run ends is given back (nacked)
 *    and counted as abandoned. So `consumed = persisted + deadLettered + abandoned` and
 *    `acked = persisted + deadLettered`, always, whatever stopped the run.
 *  - A batch whose statement was sent is waited for even when the run is aborted (a query
 *    cannot be withdrawn once sent): its outcome decides, so nothing is acked that did not
 *    commit, and nothing committed is left unacked, except when the connection is lost between
 *    the commit and its reply: then the redelivery rewrites the row, which the upsert makes
 *    harmless (and `writes` shows).
 */
import { Channel } from "../../src/index.js";
import { AdaptiveLimit, RateLimiter, RetryBudget, retry } from "../../src/flow/index.js";
import { batch, map, pipeline, type PipelineStats } from "../../src/pipeline/index.js";
import type { Delivery, InMemoryBroker } from "./broker.js";
import { DeadLetterDesk, type DeadLetterCounts, type DeadLetterSample } from "./dead-letters.js";
import { createEnricher } from "./enrich.js";
import { feed } from "./intake.js";
import type { CustomerLookup } from "./lookup.js";
import { AbandonedError, type Enriched, type Validated } from "./messages.js";
import { Shutdown, ShutdownDeadlineError } from "./shutdown.js";
import { isTransientDatabaseError, type OrderStore } from "./store.js";
import { validateOrder } from "./validate.js";

/** Options of `new OrderService(options)` and `runOrderService(options)`. */
export interface OrderServiceOptions {
  readonly broker: InMemoryBroker;
  readonly store: OrderStore;
  readonly lookup: CustomerLookup;
  /** Aborting it stops the intake and starts the drain (SIGTERM/SIGINT in `main.ts`). */
  readonly signal?: AbortSignal;
  /** How long the drain may take after the stop before the rest is aborted (ms, default 5000). */
  readonly drainMs?: number;
  /**
   * The most lookups running at once (default 16): the ceiling of the enrich stage's
   * `AdaptiveLimit` (AIMD), which starts there and backs off (down to a quarter of it) when
   * enrichments take longer than `enrichTargetMs`, so that a directory in trouble gets fewer
   * concurrent calls, and grows back as they speed up.
   */
  readonly enrichConcurrency?: number;
  /** An enrichment slower than this (ms, default 250) makes the enrich limit back off. */
  readonly enrichTargetMs?: number;
  /** Lookup attempts per second, the directory's quota (default 2000), and its burst (default 50). */
  readonly rate?: number;
  readonly burst?: number;
  /** Rows per batch (default 50) and the longest a partial batch waits (ms, default 50). */
  readonly batchSize?: number;
  readonly batchWaitMs?: number;
  /** Batches written at once (default 2). */
  readonly persistConcurrency?: number;
  /** Capacity of the channel between the intake and the pipeline (default 64). */
  readonly intakeBuffer?: number;
  /** Names the pipeline's stages in `sluice/metrics` (`"<name>/validate"`, ...). */
  readonly name?: string;
  /** Called after each batch committed and was acked. */
  readonly onCommit?: (progress: OrderServiceProgress) => void;
  /** Called once per ack: the message id and why it was acked (tests check against the table). */
  readonly onAck?: (messageId: number, outcome: "persisted" | "dead-lettered") => void;
}

/** The counts so far. */
export interface OrderServiceProgress {
  readonly consumed: number;
  readonly persisted: number;
  readonly acked: number;
  readonly deadLettered: number;
  readonly batches: number;
}

/**
 * How a run ended:
 *  - `"completed"`: the broker had no more messages and all of them were handled;
 *  - `"drained"`: stopped by the signal, and everything in flight finished within `drainMs`;
 *  - `"deadline"`: stopped by the signal, and what had not finished within `drainMs` was abandoned;
 *  - `"failed"`: a stage failed (`error`), e.g. the database went away; the rest was abandoned.
 */
export type OrderServiceOutcome = "completed" | "drained" | "deadline" | "failed";

/** What a run did. `consumed = persisted + deadLettered + abandoned`; `acked = persisted + deadLettered`. */
export interface OrderServiceSummary extends OrderServiceProgress {
  /** Taken from the broker and given back unacked (it will be delivered again). */
  readonly abandoned: number;
  readonly deadLetters: DeadLetterCounts;
  readonly deadLetterSamples: readonly DeadLetterSample[];
  readonly outcome: OrderServiceOutcome;
  /** The failure, when `outcome` is "failed". */
  readonly error: unknown;
  /** Retries of transient lookup failures, and those the retry budget refused. */
  readonly retries: number;
  readonly retriesRefused: number;
  /** The most lookups that ran at once (never above `enrichConcurrency`). */
  readonly peakLookups: number;
  /** The enrich stage's adaptive concurrency limit at the end, and its lowest during the run. */
  readonly enrichLimit: number;
  readonly enrichLimitLowest: number;
  readonly elapsedMs: number;
  /** From the stop to the end of the run (undefined when it was not stopped). */
  readonly shutdownMs: number | undefined;
  readonly stages: PipelineStats["stages"];
}

function positive(v: number | undefined, fallback: number, name: string): number {
  const n = v ?? fallback;
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`${name} must be a positive safe integer, got ${String(n)}`);
  return n;
}

/**
 * The service: `run()` consumes until the broker has no more messages, or `stop()` (or the
 * `signal` option) stops it, or a stage fails. A stop stops the intake at once and lets the
 * work in flight finish within `drainMs`; then the rest is aborted and given back to the
 * broker. `abortNow()` skips the drain.
 *
 * Bounded: see the invariants at the top of this file. Blocks: nothing of the caller's; `run`
 * resolves once nothing of the service is left running, holding a timer or parked.
 *
 * @example
 * const service = new OrderService({ broker, store, lookup, drainMs: 5000 });
 * process.once("SIGTERM", () => service.stop());
 * const summary = await service.run();
 * console.log(summary.consumed, summary.persisted, summary.deadLettered, summary.abandoned);
 */
export class OrderService {
  readonly #o: OrderServiceOptions;
  readonly #shutdown: Shutdown;
  readonly #enrichConcurrency: number;
  readonly #batchSize: number;
  readonly #persistConcurrency: number;
  readonly #intakeBuffer: number;
  readonly #desk: DeadLetterDesk;
  /** Deliveries taken and not yet acked: at most the broker's `maxUnacked`. */
  readonly #pending = new Map<number, Delivery>();
  #consumed = 0;
  #persisted = 0;
  #batches = 0;
  #running: Promise<OrderServiceSummary> | undefined;

  /** Checks the options (`RangeError`/`TypeError` naming the one that is wrong); takes nothing yet. */
  constructor(options: OrderServiceOptions) {
    this.#o = options;
    this.#enrichConcurrency = positive(options.enrichConcurrency, 16, "enrichConcurrency");
    this.#batchSize = positive(options.batchSize, 50, "batchSize");
    this.#persistConcurrency = positive(options.persistConcurrency, 2, "persistConcurrency");
    this.#intakeBuffer = positive(options.intakeBuffer, 64, "intakeBuffer");
    this.#shutdown = new Shutdown(options.signal, options.drainMs ?? 5000);
    this.#desk = new DeadLetterDesk((d) => this.#ack(d, "dead-lettered"));
  }

  /** The counts so far (a fresh snapshot). */
  get progress(): OrderServiceProgress {
    const dead = this.#desk.total;
    return { consumed: this.#consumed, persisted: this.#persisted, acked: this.#persisted + dead, deadLettered: dead, batches: this.#batches };
  }

  /** Deliveries taken and not yet acked (in the pipeline now). */
  get inFlight(): number {
    return this.#pending.size;
  }

  /** Stops the intake and starts the drain (idempotent). */
  stop(): void {
    this.#shutdown.stop();
  }

  /** Abandons the drain: what is in flight now is aborted and given back. */
  abortNow(): void {
    this.#shutdown.abortNow();
  }

  /** Runs the service once (a second call returns the same promise). Never rejects; see `OrderServiceOutcome`. */
  run(): Promise<OrderServiceSummary> {
    this.#running ??= this.#run();
    return this.#running;
  }

  #ack(d: Delivery, outcome: "persisted" | "dead-lettered"): void {
    this.#pending.delete(d.tag);
    this.#o.broker.ack(d.tag);
    this.#o.onAck?.(d.messageId, outcome);
  }

  async #run(): Promise<OrderServiceSummary> {
    const { broker, store, lookup, onCommit } = this.#o;
    const shutdown = this.#shutdown;
    const desk = this.#desk;
    const limiter = new RateLimiter({ rate: this.#o.rate ?? 2000, burst: this.#o.burst ?? 50, name: "orders/lookup-quota" });
    const budget = new RetryBudget({ name: "orders/lookup-retries" });
    const enricher = createEnricher({ lookup, limiter, budget });
    const { enrich } = enricher;
    const n = this.#enrichConcurrency;
    const enrichLimit = new AdaptiveLimit({
      algorithm: "aimd",
      initialLimit: n,
      minLimit: Math.max(1, Math.ceil(n / 4)),
      maxLimit: n,
      latencyTargetMs: this.#o.enrichTargetMs ?? 250,
      name: "orders/enrich-limit",
    });
    let lowest = enrichLimit.limit;
    const unsubscribe = enrichLimit.subscribe((limit) => {
      if (limit < lowest) lowest = limit;
    });
    const t0 = performance.now();

    const source = new Channel<Delivery>(this.#intakeBuffer, { name: "orders/intake" });
    const stopFeeding = new AbortController();
    const intake = feed(broker, source, { signal: AbortSignal.any([shutdown.intake, stopFeeding.signal]) }, (d) => {
      this.#consumed++;
      this.#pending.set(d.tag, d);
    });
    const desking = desk.run();

    const persist = async (rows: Enriched[], signal: AbortSignal): Promise<void> => {
      // Once sent, a statement is waited for (see the invariants): no signal for the attempt,
      // and no new attempt once the run is stopping (not retried, and refused after a backoff
      // that the stop overtook; a backoff is at most 500 ms).
      const orders = rows.map((r) => r.order);
      await retry((_s, attempt) => {
        if (attempt > 1 && signal.aborted) throw new AbandonedError(signal.reason);
        return store.upsert(orders);
      }, {
        attempts: 3,
        baseMs: 50,
        maxMs: 500,
        retryIf: (e) => !signal.aborted && isTransientDatabaseError(e),
      });
      this.#persisted += rows.length;
      this.#batches++;
      for (const r of rows) this.#ack(r.delivery, "persisted");
      onCommit?.(this.progress);
    };

    const p = pipeline(
      source,
      map((d: Delivery): Validated => ({ delivery: d, order: validateOrder(d.body) }), { name: "validate", deadLetter: desk.invalid }),
      map(
        async (v: Validated, signal: AbortSignal): Promise<Enriched> => {
          try {
            return { delivery: v.delivery, order: await enrich(v.order, signal) };
          } catch (e) {
            throw signal.aborted ? new AbandonedError(signal.reason) : e;
          }
        },
        { name: "enrich", concurrency: enrichLimit, ordered: false, deadLetter: desk.failed },
      ),
      batch<Enriched>({ name: "batch", size: this.#batchSize, maxWaitMs: this.#o.batchWaitMs ?? 50 }),
      map(persist, { name: "persist", concurrency: this.#persistConcurrency }),
      this.#o.name === undefined ? {} : { name: this.#o.name },
    );

    let outcome: OrderServiceOutcome;
    let error: unknown;
    try {
      await p.run({ signal: shutdown.hard });
      outcome = shutdown.intake.aborted ? "drained" : "completed";
    } catch (e) {
      if (e instanceof ShutdownDeadlineError) {
        outcome = "deadline";
      } else {
        outcome = "failed";
        error = e;
      }
    } finally {
      shutdown.dispose();
      unsubscribe();
    }
    // The pipeline is settled: nothing of it runs. Stop the intake (it may be waiting for a
    // credit), let the desk take what its channels still hold, then give back the rest.
    stopFeeding.abort();
    await intake.catch((e: unknown) => {
      if (outcome !== "failed") {
        outcome = "failed";
        error = e;
      }
    });
    desk.close();
    await desking;
    const abandoned = this.#pending.size;
    for (const d of this.#pending.values()) broker.nack(d.tag);
    this.#pending.clear();
    const end = performance.now();
    return {
      ...this.progress,
      abandoned,
      deadLetters: desk.counts,
      deadLetterSamples: desk.samples,
      outcome,
      error,
      retries: enricher.stats.retries,
      retriesRefused: budget.stats.refused,
      peakLookups: lookup.peakInFlight,
      enrichLimit: enrichLimit.limit,
      enrichLimitLowest: lowest,
      elapsedMs: end - t0,
      shutdownMs: shutdown.stoppedAt === undefined ? undefined : end - shutdown.stoppedAt,
      stages: p.stats.stages,
    };
  }
}

/**
 * `new OrderService(options).run()`: runs until the broker has no more messages, or the signal
 * stops it (then it drains within `drainMs` and abandons the rest), or a stage fails. Never
 * rejects for those: it resolves with the summary once nothing is left running (the outcome
 * says how it ended). Throws only for bad options (`RangeError`/`TypeError`, before anything
 * is taken).
 *
 * @example
 * const summary = await runOrderService({ broker, store, lookup, signal: ctl.signal, drainMs: 5000 });
 * console.log(summary.consumed, summary.persisted, summary.abandoned);
 */
export function runOrderService(options: OrderServiceOptions): Promise<OrderServiceSummary> {
  return new OrderService(options).run();
}
