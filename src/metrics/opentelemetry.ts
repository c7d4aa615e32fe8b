/**
 * OpenTelemetry observable instruments (through `@opentelemetry/api`, an optional peer
 * dependency: the caller passes its `Meter`, so nothing is imported here at run time).
 *
 * Invariants:
 *  - One observable instrument per catalog metric, named `sluice.<kind>.<stat>` (gauges as
 *    ObservableGauge, counters as ObservableCounter), and `sluice.boundary.stat` for the rest;
 *    all observed by one batch callback, which takes one `snapshot()` per collection.
 *  - Attributes: `name` (bounded per kind as for Prometheus), plus the metric's extra labels.
 */
import type { BatchObservableResult, Meter, Observable } from "@opentelemetry/api";
import { snapshot } from "./snapshot.js";
import { CATALOG, OTHER_STAT, checkMaxSeries, collect } from "./catalog.js";

/** Options of `registerOpenTelemetry`. */
export interface OpenTelemetryOptions {
  /** As for `registerPrometheus` (default 100). */
  maxSeriesPerKind?: number;
}

/** What `registerOpenTelemetry` returns. */
export interface OpenTelemetryHandle {
  /** The names of the instruments created. */
  readonly instrumentNames: readonly string[];
  /** Stops observing (the instruments stay, with no values). Idempotent. */
  unregister(): void;
}

/**
 * Creates sluice's observable instruments on `meter`, observed at each collection from a
 * fresh `snapshot()`. Never blocks; costs nothing between collections.
 *
 * @example
 * import { metrics } from "@opentelemetry/api";
 * registerOpenTelemetry(metrics.getMeter("my-service"));
 */
export function registerOpenTelemetry(meter: Meter, options?: OpenTelemetryOptions): OpenTelemetryHandle {
  if (meter === null || typeof meter !== "object" || typeof meter.addBatchObservableCallback !== "function") {
    throw new TypeError("meter must be an OpenTelemetry Meter");
  }
  if (options !== undefined && (options === null || typeof options !== "object")) {
    throw new TypeError("options must be an object");
  }
  const max = checkMaxSeries(options?.maxSeriesPerKind);
  const instruments = CATALOG.map((spec) => {
    const opts = { description: `${spec.help} (sluice ${spec.kind})`, unit: spec.unit };
    const instrument: Observable = spec.type === "gauge"
      ? meter.createObservableGauge(spec.otel, opts)
      : meter.createObservableCounter(spec.otel, opts);
    return [spec, instrument] as const;
  });
  const other = meter.createObservableGauge(OTHER_STAT.otel, { description: OTHER_STAT.help });
  const callback = (result: BatchObservableResult): void => {
    const { byMetric, other: rest } = collect(snapshot(), max);
    for (const [spec, instrument] of instruments) {
      for (const s of byMetric.get(spec)?.values() ?? []) result.observe(instrument, s.value, s.labels);
    }
    for (const s of rest.values()) result.observe(other, s.value, s.labels);
  };
  const all = [...instruments.map(([, i]) => i), other];
  meter.addBatchObservableCallback(callback, all);
  let registered = true;
  return {
    instrumentNames: [...CATALOG.map((c) => c.otel), OTHER_STAT.otel],
    unregister() {
      if (!registered) return;
      registered = false;
      meter.removeBatchObservableCallback(callback, all);
    },
  };
}
