/**
 * What every demo is, for the `sluice demo <name>` command and `npm run demo*` scripts: a
 * function that runs the demo, prints its progress through `out`, and resolves with its final
 * figures (`--json` prints them as one JSON line) and its time series (`--report FILE` draws
 * them as charts in a self-contained HTML file).
 */

/** One line of a chart: `points` are `[seconds since the start, value]`, in time order. */
export interface DemoSeries {
  readonly label: string;
  readonly points: readonly (readonly [number, number])[];
}

/** One chart of a report: a title, the unit of its y axis, and its lines. */
export interface DemoChart {
  readonly title: string;
  readonly unit: string;
  readonly series: readonly DemoSeries[];
}

/** What a demo run resolves with. */
export interface DemoResult {
  /** The demo's command name: "oom", "agent", "orders", "broker". */
  readonly demo: string;
  /** A one-line title for the report. */
  readonly title: string;
  /** Whether the demo's own checks held (every accepted item completed, the bound held, ...). */
  readonly ok: boolean;
  /** The verdict the demo printed last, in words. */
  readonly verdict: string;
  /** The run's final figures, flat (what `--json` prints). */
  readonly figures: Readonly<Record<string, number | string | boolean>>;
  /** The run as charts (what `--report` draws). */
  readonly charts: readonly DemoChart[];
}

/** What a demo is given. */
export interface DemoContext {
  /** The command-line arguments after the demo's name (each demo parses its own with `parseArgs`). */
  readonly args: readonly string[];
  /** Prints one line of progress (stdout by default). */
  readonly out: (line: string) => void;
  /** Aborted on SIGINT/SIGTERM: the demo stops early, cleans up, and still resolves. */
  readonly signal: AbortSignal;
}

/** A demo's entry point. */
export type DemoMain = (context: DemoContext) => Promise<DemoResult>;
