/**
 * The HTML report of a bench run (`bench/report.html`, beside `bench/RESULTS.md`): per
 * workload, a bar chart of ns/op per implementation (sluice's rows in the accent colour, one
 * group per order), the metrics-overhead pairs, and the targets, drawn by `sluice/metrics`'
 * `renderReport` (inline SVG: no script, no network).
 */
import { writeReport, type ReportBar, type ReportChart, type ReportSection } from "../src/metrics/index.js";
import type { OverheadRow } from "./metrics-overhead.js";

/** One row of a workload's table: an implementation in one order. */
export interface BenchRow {
  readonly impl: string;
  readonly label: string;
  /** "consumer first", "producer first", or "" when the workload has no orders. */
  readonly order: string;
  readonly nsPerOp: number;
}

/** One workload of the run. */
export interface BenchWorkload {
  readonly id: string;
  readonly title: string;
  /** Whether the rows are times (W5 reports peak heap MB instead). */
  readonly unit: string;
  readonly rows: readonly BenchRow[];
}

/** Everything the report shows. */
export interface BenchReportInput {
  readonly machine: string;
  readonly command: string;
  readonly workloads: readonly BenchWorkload[];
  readonly overhead: readonly OverheadRow[];
  readonly targets: readonly { text: string; met: boolean | undefined; detail: string }[];
}

const isSluice = (impl: string): boolean => impl.startsWith("sluice") || impl.startsWith("pool-");

/** Writes the report to `file`; returns its absolute path. */
export function writeBenchReport(file: string, input: BenchReportInput): string {
  const sections: ReportSection[] = input.workloads.map((w) => {
    const bars: ReportBar[] = w.rows
      .filter((r) => Number.isFinite(r.nsPerOp))
      .map((r) => ({ label: r.label, value: r.nsPerOp, group: r.order === "" ? undefined : r.order, highlight: isSluice(r.impl) }));
    const charts: ReportChart[] = [{ type: "bars", title: w.title, unit: w.unit, bars, note: "shorter is better; sluice's rows in red, floors and peers in grey" }];
    return { title: w.id, charts };
  });
  if (input.overhead.length > 0) {
    const bars: ReportBar[] = input.overhead.flatMap((r) => [
      { label: "plain", value: r.plainNs, group: r.label },
      { label: `attached (${r.ratio.toFixed(3)}×)`, value: r.attachedNs, group: r.label, highlight: true },
    ]);
    sections.push({
      title: "Metrics overhead",
      description: "Every boundary registered (SLUICE_OBSERVE=all) and a Prometheus exporter scraped every 100 ms, against the same workload plain, in pairs of fresh processes. Target: within 1.03×.",
      figures: Object.fromEntries(input.overhead.map((r) => [`${r.label}: attached / plain`, Number(r.ratio.toFixed(3))])),
      charts: [{ type: "bars", title: "ns/op, plain against attached", unit: "ns/op", bars }],
    });
  }
  const measured = input.targets.filter((t) => t.met !== undefined);
  if (measured.length > 0) {
    sections.push({
      title: "Targets",
      figures: Object.fromEntries(measured.map((t) => [t.text, `${t.met === true ? "met" : "MISSED"} (${t.detail})`])),
      charts: [],
    });
  }
  return writeReport(file, {
    title: "sluice benchmarks",
    subtitle: `${input.command}. ${input.machine}`,
    sections,
  });
}
