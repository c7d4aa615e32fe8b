/**
 * Prometheus collectors through prom-client (an optional peer dependency, loaded only when
 * `registerPrometheus` is called).
 *
 * Invariants:
 *  - Every metric of the catalog is registered once, up front, as a prom-client Gauge or
 *    Counter whose `collect` fills it from a `snapshot()` taken when the registry is scraped.
 *    One scrape takes one snapshot (shared by all the metrics of that scrape); nothing is
 *    counted or stored per operation.
 *  - Label cardinality is bounded per kind by `maxSeriesPerKind` (see catalog.ts).
 */
import { createRequire } from "node:module";
import type * as PromClientModule from "prom-client";
import type { Counter, Gauge, Registry } from "prom-client";
import { snapshot, type SnapshotEntry } from "./snapshot.js";
import { CATALOG, OTHER_STAT, checkMaxSeries, collect } from "./catalog.js";

/** Options of `registerPrometheus`. */
export interface PrometheusOptions {
  /**
   * At most this many names per kind get series of their own (default 100); later named
   * boundaries are summed under `name="_other"`, unnamed ones under `name="_unnamed"`.
   */
  maxSeriesPerKind?: number;
}

/** What `registerPrometheus` returns. */
export interface PrometheusHandle {
  /** The names of the metrics registered. */
  readonly metricNames: readonly string[];
  /** Removes every sluice metric from the registry (idempotent). */
  unregister(): void;
}

type PromClient = typeof PromClientModule;

function loadPromClient(): PromClient {
  try {
    return createRequire(import.meta.url)("prom-client") as PromClient;
  } catch (e) {
    throw new Error('sluice/metrics: registerPrometheus needs the "prom-client" package (npm install prom-client)', { cause: e });
  }
}

/**
 * Adds sluice's collectors to a prom-client `Registry` (default: prom-client's global
 * `register`). Every metric is named `sluice_<kind>_<stat>`, labelled by boundary `name` (the
 * shared `sluice_boundary_stat` also by `kind` and `stat`); gauges are read at scrape time;
 * counters end in `_total`. Never blocks; each scrape reads every observed boundary's `stats`
 * once. Throws if a sluice metric is already registered in `registry`.
 *
 * @example
 * import { Registry } from "prom-client";
 * const registry = new Registry();
 * registerPrometheus(registry);
 * http.createServer(async (req, res) => {
 *   res.setHeader("content-type", registry.contentType);
 *   res.end(await registry.metrics());
 * }).listen(9464);
 */
export function registerPrometheus(registry?: Registry, options?: PrometheusOptions): PrometheusHandle {
  if (options !== undefined && (options === null || typeof options !== "object")) {
    throw new TypeError("options must be an object");
  }
  const max = checkMaxSeries(options?.maxSeriesPerKind);
  const prom = loadPromClient();
  const target = registry ?? prom.register;
  if (target === null || typeof target !== "object" || typeof target.registerMetric !== "function") {
    throw new TypeError("registry must be a prom-client Registry");
  }
  for (const m of [...CATALOG.map((c) => c.prom), OTHER_STAT.prom]) {
    if (target.getSingleMetric(m) !== undefined) throw new Error(`sluice/metrics: ${m} is already registered in this registry`);
  }

  // One snapshot per scrape: every collect of one `registry.metrics()` runs in the same tick.
  let cached: ReturnType<typeof collect> | undefined;
  const current = (): ReturnType<typeof collect> => {
    if (cached === undefined) {
      const entries: SnapshotEntry[] = snapshot();
      cached = collect(entries, max);
      queueMicrotask(() => (cached = undefined));
    }
    return cached;
  };

  const names: string[] = [];
  for (const spec of CATALOG) {
    const config = {
      name: spec.prom,
      help: `${spec.help} (sluice ${spec.kind})`,
      labelNames: ["name", ...spec.labels],
      registers: [target],
    };
    if (spec.type === "gauge") {
      new prom.Gauge({
        ...config,
        collect(this: Gauge) {
          this.reset();
          for (const s of current().byMetric.get(spec)?.values() ?? []) this.set(s.labels, s.value);
        },
      });
    } else {
      new prom.Counter({
        ...config,
        collect(this: Counter) {
          this.reset();
          for (const s of current().byMetric.get(spec)?.values() ?? []) this.inc(s.labels, Math.max(0, s.value));
        },
      });
    }
    names.push(spec.prom);
  }
  new prom.Gauge({
    name: OTHER_STAT.prom,
    help: OTHER_STAT.help,
    labelNames: ["kind", "name", "stat"],
    registers: [target],
    collect(this: Gauge) {
      this.reset();
      for (const s of current().other.values()) this.set(s.labels, s.value);
    },
  });
  names.push(OTHER_STAT.prom);

  let registered = true;
  return {
    metricNames: names,
    unregister() {
      if (!registered) return;
      registered = false;
      for (const n of names) target.removeSingleMetric(n);
    },
  };
}
