/**
 * One run of the order service as the command line and the demo do it: open the table, make
 * the load, run the service with a progress line every `progressMs`, and check the result
 * against the database (`select count(*)`). Shared by `main.ts` and `demo.ts`.
 */
import { randomBytes } from "node:crypto";
import { InMemoryBroker } from "./broker.js";
import { generateOrders } from "./generator.js";
import { CustomerLookup } from "./lookup.js";
import type { CliOptions } from "./options.js";
import { OrderService, type OrderServiceSummary } from "./service.js";
import { OrderStore } from "./store.js";

/** One progress sample: seconds since the start and the counts then. */
export interface Sample {
  readonly t: number;
  readonly consumed: number;
  readonly persisted: number;
  readonly deadLettered: number;
  /** Deliveries taken and not yet acked. */
  readonly inFlight: number;
}

/** What a session did, and what the database says about it. */
export interface SessionResult {
  readonly table: string;
  readonly summary: OrderServiceSummary;
  /** `select count(*)` at the start and at the end. */
  readonly rowsBefore: number;
  readonly rowsAfter: number;
  /** Rows written more than once (at the end). */
  readonly rewritten: number;
  /** Whether the counts add up and, on a table that started empty, match the table. */
  readonly ok: boolean;
  readonly verdict: string;
  readonly samples: readonly Sample[];
}

/** How a session is driven. */
export interface SessionControl {
  readonly out: (line: string) => void;
  /** Stops the intake and starts the drain. */
  readonly stop?: AbortSignal;
  /** Skips the rest of the drain. */
  readonly abortNow?: AbortSignal;
  /** The table when `options.table` is not set: `orders`, or a fresh `orders_demo_<hex>` (`"fresh"`). */
  readonly defaultTable?: "orders" | "fresh";
}

const int = (n: number): string => Math.round(n).toLocaleString("en-US");

/** Keeps at most this many progress samples (the oldest half is thinned when full). */
const MAX_SAMPLES = 2000;

/**
 * Runs one session. Rejects only when the database cannot be reached or the table cannot be
 * created (`DatabaseUnreachableError`...); everything else ends in the result's verdict.
 *
 * @example
 * const r = await runSession(parseCli([]) as CliOptions, { out: console.log, stop: signal });
 */
export async function runSession(o: CliOptions, control: SessionControl): Promise<SessionResult> {
  const { out } = control;
  const table = o.table ?? (control.defaultTable === "fresh" ? `orders_demo_${randomBytes(4).toString("hex")}` : "orders");
  const store = await OrderStore.open({ table });
  try {
    const rowsBefore = await store.count();
    out(`order service: ${int(o.orders)} messages (invalid ${o.invalidRate}, unknown customer ${o.unknownRate}, seed ${o.seed}) -> ${store.where}, table ${table}`);
    out(`  enrich: at most ${o.concurrency} lookups at once (adaptive), ${o.rate}/s, ${o.lookupMinMs}-${o.lookupMaxMs} ms, ${o.failureRate * 100}% transient failures; batches of ${o.batch}; drain deadline ${o.drainMs} ms`);
    const load = generateOrders({ count: o.orders, invalidRate: o.invalidRate, unknownCustomerRate: o.unknownRate, seed: o.seed });
    const broker = new InMemoryBroker((function* () {
      for (const m of load) yield m.body;
    })(), { maxUnacked: 256 });
    const lookup = new CustomerLookup({ minMs: o.lookupMinMs, maxMs: o.lookupMaxMs, failureRate: o.failureRate });
    const service = new OrderService({
      broker,
      store,
      lookup,
      signal: control.stop,
      drainMs: o.drainMs,
      enrichConcurrency: o.concurrency,
      rate: o.rate,
      batchSize: o.batch,
      name: "orders",
    });
    const onStop = (): void => out(`stop: intake stopped, draining ${int(service.inFlight)} in flight (deadline ${o.drainMs} ms)`);
    const onAbortNow = (): void => {
      out("abort: the drain is cut short");
      service.abortNow();
    };
    control.stop?.addEventListener("abort", onStop, { once: true });
    control.abortNow?.addEventListener("abort", onAbortNow, { once: true });
    const t0 = performance.now();
    const samples: Sample[] = [];
    const sample = (): Sample => {
      const p = service.progress;
      const s = { t: (performance.now() - t0) / 1000, consumed: p.consumed, persisted: p.persisted, deadLettered: p.deadLettered, inFlight: service.inFlight };
      if (samples.length === MAX_SAMPLES) samples.splice(0, MAX_SAMPLES / 2, ...samples.slice(0, MAX_SAMPLES / 2).filter((_, i) => i % 2 === 0));
      samples.push(s);
      return s;
    };
    const timer = setInterval(() => {
      const s = sample();
      out(`  ${s.t.toFixed(1).padStart(6)}s  consumed ${int(s.consumed).padStart(7)}  persisted ${int(s.persisted).padStart(7)}  dead-lettered ${int(s.deadLettered).padStart(5)}  in flight ${int(s.inFlight).padStart(4)}`);
    }, o.progressMs);
    let summary: OrderServiceSummary;
    try {
      summary = await service.run();
    } finally {
      clearInterval(timer);
      control.stop?.removeEventListener("abort", onStop);
      control.abortNow?.removeEventListener("abort", onAbortNow);
    }
    sample();
    const rowsAfter = await store.count();
    const rewritten = await store.rewritten();
    const s = summary;
    const addsUp = s.consumed === s.persisted + s.deadLettered + s.abandoned && s.acked === s.persisted + s.deadLettered;
    const fresh = rowsBefore === 0;
    const matches = !fresh || (rowsAfter === s.persisted && rewritten === 0);
    const failed = s.outcome === "failed";
    const ok = addsUp && matches && !failed;
    out(`summary: consumed ${int(s.consumed)} = persisted ${int(s.persisted)} + dead-lettered ${int(s.deadLettered)} + abandoned ${int(s.abandoned)}`);
    out(`  acked ${int(s.acked)} (only after the batch committed, or once dead-lettered); abandoned ones were given back to the broker`);
    out(`  dead letters: invalid ${int(s.deadLetters.invalid)}, unknown customer ${int(s.deadLetters.unknownCustomer)}, enrich failed ${int(s.deadLetters.enrichFailed)}`);
    out(`  lookups: ${int(s.retries)} retries (${int(s.retriesRefused)} refused by the retry budget), at most ${s.peakLookups} at once (adaptive limit ${s.enrichLimit}, lowest ${s.enrichLimitLowest}); ${int(s.batches)} batches`);
    out(`  stages (busy / blocked downstream, ms): ${s.stages.map((st) => `${st.name} ${int(st.busyMs)} / ${int(st.blockedMs)}`).join(", ")}`);
    out(`  table ${table}: select count(*) = ${int(rowsAfter)} (${int(rowsBefore)} before), ${int(rewritten)} rows written more than once`);
    const how = s.outcome === "completed" ? "all messages handled" : s.outcome === "drained" ? `stopped, drained in ${int(s.shutdownMs ?? 0)} ms` : s.outcome === "deadline" ? `stopped, the drain deadline (${o.drainMs} ms) cut ${int(s.abandoned)} short` : `failed: ${s.error instanceof Error ? s.error.message : String(s.error)}`;
    const verdict = !addsUp
      ? `FAIL: the counts do not add up (${how})`
      : !matches
        ? `FAIL: the table holds ${int(rowsAfter)} rows (${int(rewritten)} rewritten), the service persisted ${int(s.persisted)} (${how})`
        : failed
          ? `FAIL: ${how}`
          : `OK: ${how} (run ${(s.elapsedMs / 1000).toFixed(1)} s); the counts add up${fresh ? " and match select count(*)" : ""}`;
    out(verdict);
    return { table, summary, rowsBefore, rowsAfter, rewritten, ok, verdict, samples };
  } finally {
    if (o.drop) await store.drop();
    await store.close();
  }
}
