/**
 * Specification of `registerOpenTelemetry` (issue 16, "Exporters"): observable instruments
 * `sluice.<kind>.<stat>`, read through the OpenTelemetry SDK's in-memory exporter at each
 * collection, attributes `name` (+ the metric's extra labels).
 */
import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import {
  AggregationTemporality, DataPointType, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader,
} from "@opentelemetry/sdk-metrics";
import { Channel } from "../../src/index.js";
import { CircuitBreaker, Pool } from "../../src/flow/index.js";
import { registerOpenTelemetry } from "../../src/metrics/index.js";

const tag = Math.random().toString(36).slice(2, 8);

describe("registerOpenTelemetry", () => {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const provider = new MeterProvider({ readers: [reader] });
  const handle = registerOpenTelemetry(provider.getMeter("sluice-test"));
  after(() => provider.shutdown());

  /** Collects now and returns name -> data points (of the latest export). */
  async function collect(): Promise<Map<string, { type: DataPointType; points: { attributes: Record<string, unknown>; value: unknown }[] }>> {
    exporter.reset();
    await reader.forceFlush();
    const out = new Map<string, { type: DataPointType; points: { attributes: Record<string, unknown>; value: unknown }[] }>();
    const rm = exporter.getMetrics().at(-1);
    assert.ok(rm !== undefined, "an export happened");
    for (const scope of rm.scopeMetrics) {
      for (const m of scope.metrics) {
        out.set(m.descriptor.name, {
          type: m.dataPointType,
          points: m.dataPoints.map((p) => ({ attributes: p.attributes as Record<string, unknown>, value: p.value })),
        });
      }
    }
    return out;
  }

  const value = (
    data: Awaited<ReturnType<typeof collect>>,
    name: string,
    attrs: Record<string, string>,
  ): unknown => data.get(name)?.points.find((p) => Object.entries(attrs).every(([k, v]) => p.attributes[k] === v))?.value;

  it("observes gauges and counters named sluice.<kind>.<stat> with a name attribute, at each collection", { timeout: 20_000 }, async () => {
    const ch = new Channel<number>(8, { name: `otel-ch-${tag}` });
    const pool = new Pool({ concurrency: 3, name: `otel-pool-${tag}` });
    ch.trySend(1);
    ch.trySend(2);
    await pool.run(() => 1);
    let data = await collect();
    const n = { name: `otel-ch-${tag}` };
    assert.equal(value(data, "sluice.channel.length", n), 2);
    assert.equal(value(data, "sluice.channel.capacity", n), 8);
    assert.equal(value(data, "sluice.channel.sent", n), 2);
    assert.equal(data.get("sluice.channel.length")?.type, DataPointType.GAUGE);
    assert.equal(data.get("sluice.channel.sent")?.type, DataPointType.SUM);
    assert.equal(value(data, "sluice.pool.completed", { name: `otel-pool-${tag}` }), 1);
    assert.equal(value(data, "sluice.pool.concurrency", { name: `otel-pool-${tag}` }), 3);

    ch.tryRecv();
    await pool.run(() => 2);
    data = await collect();
    assert.equal(value(data, "sluice.channel.length", n), 1);
    assert.equal(value(data, "sluice.channel.received", n), 1);
    assert.equal(value(data, "sluice.pool.completed", { name: `otel-pool-${tag}` }), 2);
  });

  it("carries extra labels as attributes (a breaker's state) and reports seconds for times", { timeout: 20_000 }, async () => {
    const breaker = new CircuitBreaker({ name: `otel-br-${tag}`, minimumCalls: 1, failureRate: 1 });
    await assert.rejects(breaker.run(() => Promise.reject(new Error("x"))));
    const data = await collect();
    assert.equal(value(data, "sluice.circuit-breaker.state", { name: `otel-br-${tag}`, state: "open" }), 1);
    assert.equal(value(data, "sluice.circuit-breaker.state", { name: `otel-br-${tag}`, state: "closed" }), 0);
    const wait = value(data, "sluice.pool.waitTime", { name: `otel-pool-${tag}`, quantile: "0.99" });
    assert.equal(typeof wait, "number");
    assert.ok((wait as number) < 10, "in seconds");
  });

  it("stops observing after unregister; refuses what is not a meter", async () => {
    assert.ok(handle.instrumentNames.includes("sluice.channel.length"));
    handle.unregister();
    handle.unregister();
    const late = new Channel<number>(1, { name: `otel-late-${tag}` });
    const data = await collect();
    assert.equal(value(data, "sluice.channel.capacity", { name: `otel-late-${tag}` }), undefined, "not observed any more");
    assert.equal(late.capacity, 1);
    assert.throws(() => registerOpenTelemetry({} as never), TypeError);
    assert.throws(() => registerOpenTelemetry(provider.getMeter("x"), { maxSeriesPerKind: -2 }), RangeError);
  });
});
