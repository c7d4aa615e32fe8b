/**
 * `sluice demo orders [options]`: seed 001's order service as a demo. It runs a load of 5,000
 * messages (the same options as `npm run orders`, see `options.ts`) into a fresh table of the
 * local PostgreSQL (dropped at the end unless `--table` is given), stops early and drains on
 * the context's signal (SIGINT/SIGTERM), checks the printed counts against `select count(*)`,
 * and resolves with the figures and two charts: the counts over time, and the deliveries in
 * flight (bounded by the broker's 256 unacked).
 *
 * Rejects with `UsageError` for a bad option and with `DatabaseUnreachableError` when
 * PostgreSQL cannot be reached; resolves otherwise (`ok` says whether the checks held).
 */
import type { DemoChart, DemoMain, DemoResult } from "../../demo/demo.js";
import { parseCli, USAGE } from "./options.js";
import { runSession } from "./session.js";

export { UsageError } from "./options.js";

/**
 * The demo's own flags, for `sluice demo orders --help` (the CLI takes `--json`, `--report`,
 * `--dashboard` itself).
 */
export const usage = `${USAGE.split("\n")
  .slice(1)
  .filter((l) => !l.startsWith("  --json"))
  .join("\n")
  .replace("(default 20000)", "(default 5000)")
  .replace("(default orders; created if missing)", "(default: a fresh one, dropped at the end)")}\n`;

/** Messages in the demo's load unless `--orders` says otherwise. */
const DEMO_ORDERS = 5000;

/**
 * The demo's entry point.
 *
 * @example
 * const result = await main({ args: ["--orders", "2000"], out: console.log, signal });
 * console.log(result.verdict);
 */
export const main: DemoMain = async ({ args, out, signal }): Promise<DemoResult> => {
  const parsed = parseCli(["--orders", String(DEMO_ORDERS), ...args]);
  if (parsed === "help") {
    out(`usage: sluice demo orders [options]\n${usage}`);
    return { demo: "orders", title: "Seed 001's order service on PostgreSQL", ok: true, verdict: "usage printed", figures: {}, charts: [] };
  }
  const o = { ...parsed, drop: parsed.drop || parsed.table === undefined };
  const r = await runSession(o, { out, stop: signal, defaultTable: "fresh" });
  const s = r.summary;
  const points = (pick: (x: (typeof r.samples)[number]) => number): [number, number][] => r.samples.map((x) => [x.t, pick(x)]);
  const charts: DemoChart[] = [
    {
      title: "Messages: consumed, persisted (acked after commit), dead-lettered",
      unit: "messages",
      series: [
        { label: "consumed", points: points((x) => x.consumed) },
        { label: "persisted", points: points((x) => x.persisted) },
        { label: "dead-lettered", points: points((x) => x.deadLettered) },
      ],
    },
    {
      title: "Deliveries in flight (taken, not yet acked; the broker allows 256)",
      unit: "deliveries",
      series: [{ label: "in flight", points: points((x) => x.inFlight) }],
    },
  ];
  return {
    demo: "orders",
    title: "Seed 001's order service: consume -> validate -> enrich -> persist (PostgreSQL) -> ack",
    ok: r.ok,
    verdict: r.verdict,
    figures: {
      outcome: s.outcome,
      consumed: s.consumed,
      persisted: s.persisted,
      acked: s.acked,
      deadLettered: s.deadLettered,
      abandoned: s.abandoned,
      invalid: s.deadLetters.invalid,
      unknownCustomer: s.deadLetters.unknownCustomer,
      enrichFailed: s.deadLetters.enrichFailed,
      retries: s.retries,
      retriesRefused: s.retriesRefused,
      peakLookups: s.peakLookups,
      enrichLimit: s.enrichLimit,
      enrichLimitLowest: s.enrichLimitLowest,
      batches: s.batches,
      tableRows: r.rowsAfter,
      rewritten: r.rewritten,
      elapsedMs: Math.round(s.elapsedMs),
      table: r.table,
      tableDropped: o.drop,
    },
    charts,
  };
};
