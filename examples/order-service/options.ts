/**
 * The command line of the order service (`npm run orders -- [options]`) and of its demo
 * (`sluice demo orders [options]`): one parser, so that both take the same options.
 */
import { parseArgs } from "node:util";

/** The parsed options, with their defaults. */
export interface CliOptions {
  /** Messages in the generated load. */
  readonly orders: number;
  readonly invalidRate: number;
  readonly unknownRate: number;
  readonly seed: number;
  /** The table (created if missing); the demo uses a fresh one unless given. */
  readonly table: string | undefined;
  readonly drainMs: number;
  readonly concurrency: number;
  /** Lookup attempts per second. */
  readonly rate: number;
  readonly batch: number;
  /** Lookup latency, uniform in [minMs, maxMs]. */
  readonly lookupMinMs: number;
  readonly lookupMaxMs: number;
  readonly failureRate: number;
  /** Progress line period, ms. */
  readonly progressMs: number;
  /** Print the summary as one JSON line, last. */
  readonly json: boolean;
  /** Drop the table at the end. */
  readonly drop: boolean;
}

/** Usage, printed on `--help` and on a bad option. */
export const USAGE = `usage: npm run orders -- [options]
  --orders N          messages in the generated load (default 20000)
  --invalid-rate R    fraction of invalid messages (default 0.05)
  --unknown-rate R    fraction of orders for unknown customers (default 0.01)
  --seed N            seed of the load (default 1)
  --table NAME        PostgreSQL table (default orders; created if missing)
  --drain-ms MS       on SIGTERM/SIGINT, how long in-flight work may take (default 5000)
  --concurrency N     lookups at once (default 16)
  --rate N            lookup attempts per second (default 2000)
  --batch N           rows per batch (default 50)
  --lookup-ms A-B     lookup latency range in ms (default 2-10)
  --failure-rate R    fraction of lookups failing transiently (default 0.05)
  --progress-ms MS    progress line period (default 500)
  --json              print the summary as one JSON line, last
  --drop              drop the table at the end
PostgreSQL: $PGHOST:$PGPORT, database $PGDATABASE, user $PGUSER, password $PGPASSWORD,
where set; else 127.0.0.1:5432, database test, user postgres (trust auth).`;

/** A bad command line; its message says which option and why. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

function num(v: string | undefined, fallback: number, name: string, check: (n: number) => boolean, what: string): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (v.trim() === "" || !check(n)) throw new UsageError(`--${name} must be ${what}, got ${JSON.stringify(v)}`);
  return n;
}
const int = (n: number): boolean => Number.isSafeInteger(n) && n >= 0;
const pos = (n: number): boolean => Number.isSafeInteger(n) && n >= 1;
const unit = (n: number): boolean => n >= 0 && n <= 1;

/** Parses `args` (without the script name); throws `UsageError` for an unknown or bad option. */
export function parseCli(args: readonly string[]): CliOptions | "help" {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...args],
      strict: true,
      allowPositionals: false,
      options: {
        orders: { type: "string" },
        "invalid-rate": { type: "string" },
        "unknown-rate": { type: "string" },
        seed: { type: "string" },
        table: { type: "string" },
        "drain-ms": { type: "string" },
        concurrency: { type: "string" },
        rate: { type: "string" },
        batch: { type: "string" },
        "lookup-ms": { type: "string" },
        "failure-rate": { type: "string" },
        "progress-ms": { type: "string" },
        json: { type: "boolean" },
        drop: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  if (values.help === true) return "help";
  let lookupMinMs = 2;
  let lookupMaxMs = 10;
  if (values["lookup-ms"] !== undefined) {
    const m = /^(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)$/.exec(values["lookup-ms"]);
    if (m === null || Number(m[1]) > Number(m[2])) throw new UsageError(`--lookup-ms must be A-B with 0 <= A <= B, got ${JSON.stringify(values["lookup-ms"])}`);
    lookupMinMs = Number(m[1]);
    lookupMaxMs = Number(m[2]);
  }
  const table = values.table;
  if (table !== undefined && !/^[A-Za-z][A-Za-z0-9_]{0,62}$/.test(table)) {
    throw new UsageError(`--table must be a plain identifier (a letter, then letters, digits or _), got ${JSON.stringify(table)}`);
  }
  return {
    orders: num(values.orders, 20_000, "orders", int, "a non-negative integer"),
    invalidRate: num(values["invalid-rate"], 0.05, "invalid-rate", unit, "a number in [0, 1]"),
    unknownRate: num(values["unknown-rate"], 0.01, "unknown-rate", unit, "a number in [0, 1]"),
    seed: num(values.seed, 1, "seed", int, "a non-negative integer"),
    table,
    drainMs: num(values["drain-ms"], 5000, "drain-ms", int, "a non-negative integer"),
    concurrency: num(values.concurrency, 16, "concurrency", pos, "a positive integer"),
    rate: num(values.rate, 2000, "rate", (n) => n > 0 && Number.isFinite(n), "a positive number"),
    batch: num(values.batch, 50, "batch", pos, "a positive integer"),
    lookupMinMs,
    lookupMaxMs,
    failureRate: num(values["failure-rate"], 0.05, "failure-rate", unit, "a number in [0, 1]"),
    progressMs: num(values["progress-ms"], 500, "progress-ms", pos, "a positive integer"),
    json: values.json === true,
    drop: values.drop === true,
  };
}
