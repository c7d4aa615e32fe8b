/**
 * Specification of `registerPrometheus` (issue 16, "Exporters"): a real `/metrics` endpoint
 * scraped over HTTP, its text format parsed; names `sluice_*`, counters `_total`, label `name`,
 * values read at scrape time, cardinality bounded.
 */
import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Registry } from "prom-client";
import { Channel, ErrGroup, Semaphore } from "../../src/index.js";
import { CircuitBreaker, Pool } from "../../src/flow/index.js";
import { observeAll, registerPrometheus, snapshot } from "../../src/metrics/index.js";
import { CATALOG } from "../../src/metrics/catalog.js";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

interface Line {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text exposition format (0.0.4): samples, and the TYPE of each family. */
function parse(text: string): { samples: Line[]; types: Map<string, string>; helps: Set<string> } {
  const samples: Line[] = [];
  const types = new Map<string, string>();
  const helps = new Set<string>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "") continue;
    let m = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (m !== null) {
      types.set(m[1]!, m[2]!);
      continue;
    }
    m = /^# HELP (\S+) /.exec(line);
    if (m !== null) {
      helps.add(m[1]!);
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m !== null, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const lm of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[lm[1]!] = lm[2]!.replace(/\\n/g, "\n").replace(/\\"/g, '"').replace(/\\\\/g, "\\");
    }
    const v = m[3]!;
    samples.push({ name: m[1]!, labels, value: v === "+Inf" ? Infinity : v === "-Inf" ? -Infinity : Number(v) });
  }
  return { samples, types, helps };
}

async function serve(registry: Registry): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    if (req.url !== "/metrics") {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { "content-type": registry.contentType }).end(body),
      (e: unknown) => res.writeHead(500).end(String(e)),
    );
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/metrics`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

async function scrape(url: string): Promise<ReturnType<typeof parse> & { contentType: string }> {
  const res = await fetch(url);
  assert.equal(res.status, 200);
  return { ...parse(await res.text()), contentType: res.headers.get("content-type") ?? "" };
}

const get = (samples: Line[], name: string, labels: Record<string, string>): number | undefined =>
  samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

const tag = Math.random().toString(36).slice(2, 8);

describe("registerPrometheus", () => {
  const registry = new Registry();
  const handle = registerPrometheus(registry, { maxSeriesPerKind: 5 });
  let server: Awaited<ReturnType<typeof serve>>;
  after(async () => {
    handle.unregister();
    await server?.close();
  });

  it("serves sluice_* gauges and _total counters labelled by name, read at scrape time", { timeout: 20_000 }, async () => {
    server = await serve(registry);
    const ch = new Channel<number>(16, { name: `jobs-${tag}` });
    const pool = new Pool({ concurrency: 2, queue: 1, overflow: "reject", name: `db-${tag}` });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    for (let i = 0; i < 5; i++) ch.trySend(i);
    await pool.submit(() => gate);
    await pool.submit(() => gate);
    await pool.submit(() => gate);
    assert.equal(pool.trySubmit(() => undefined), false);

    const first = await scrape(server.url);
    assert.match(first.contentType, /^text\/plain; version=0\.0\.4/);
    const name = { name: `jobs-${tag}` };
    assert.equal(get(first.samples, "sluice_channel_length", name), 5);
    assert.equal(get(first.samples, "sluice_channel_capacity", name), 16);
    assert.equal(get(first.samples, "sluice_channel_sent_total", name), 5);
    assert.equal(get(first.samples, "sluice_pool_running", { name: `db-${tag}` }), 2);
    assert.equal(get(first.samples, "sluice_pool_queued", { name: `db-${tag}` }), 1);
    assert.equal(get(first.samples, "sluice_pool_rejected_total", { name: `db-${tag}` }), 1);
    assert.equal(get(first.samples, "sluice_pool_concurrency", { name: `db-${tag}` }), 2);
    assert.equal(first.types.get("sluice_channel_length"), "gauge");
    assert.equal(first.types.get("sluice_channel_sent_total"), "counter");

    // Values move between scrapes with no call in between: read at scrape time.
    ch.tryRecv();
    ch.tryRecv();
    release();
    await pool.drain();
    const second = await scrape(server.url);
    assert.equal(get(second.samples, "sluice_channel_length", name), 3);
    assert.equal(get(second.samples, "sluice_channel_received_total", name), 2);
    assert.equal(get(second.samples, "sluice_pool_completed_total", { name: `db-${tag}` }), 3);
    assert.equal(get(second.samples, "sluice_pool_running", { name: `db-${tag}` }), 0);
  });

  it("follows Prometheus naming: every family sluice_*, counters end in _total, all have HELP", { timeout: 20_000 }, async () => {
    const sem = new Semaphore(3, { name: `sem-${tag}` });
    const g = new ErrGroup({ name: `group-${tag}` });
    await g.go(() => undefined);
    await g.wait();
    sem.tryAcquire(2);
    const { samples, types, helps } = await scrape(server.url);
    assert.ok(types.size > 50, `many families (${types.size})`);
    for (const [family, type] of types) {
      assert.match(family, /^sluice_[a-z0-9_]+$/);
      assert.ok(helps.has(family), `${family} has HELP`);
      if (type === "counter") assert.match(family, /_total$/, `${family} is a counter`);
      else assert.doesNotMatch(family, /_total$/, `${family} is not a counter`);
    }
    for (const s of samples) assert.ok("name" in s.labels, `${s.name} has a name label`);
    assert.equal(get(samples, "sluice_semaphore_held", { name: `sem-${tag}` }), 2);
    assert.equal(get(samples, "sluice_errgroup_limit", { name: `group-${tag}` }), Infinity);
    assert.equal(get(samples, "sluice_errgroup_settled_total", { name: `group-${tag}` }), 1);
  });

  it("exports a breaker's state, a pool's wait-time quantiles in seconds, and the rest by kind and stat", { timeout: 20_000 }, async () => {
    const breaker = new CircuitBreaker({ name: `br-${tag}`, minimumCalls: 1, failureRate: 1 });
    await assert.rejects(breaker.run(() => Promise.reject(new Error("x"))));
    const { samples } = await scrape(server.url);
    const br = { name: `br-${tag}` };
    assert.equal(get(samples, "sluice_circuit_breaker_state", { ...br, state: "open" }), 1);
    assert.equal(get(samples, "sluice_circuit_breaker_state", { ...br, state: "closed" }), 0);
    assert.equal(get(samples, "sluice_circuit_breaker_failures_total", br), 1);
    const p99 = get(samples, "sluice_pool_wait_seconds", { name: `db-${tag}`, quantile: "0.99" });
    assert.equal(typeof p99, "number");
    const peak = get(samples, "sluice_boundary_stat", { kind: "pool", name: `db-${tag}`, stat: "aboveHighWater" });
    assert.equal(peak, undefined, "a stat with a metric of its own is not repeated in the shared gauge");
  });

  it("bounds label cardinality: past maxSeriesPerKind names go to _other, unnamed to _unnamed, summed", { timeout: 20_000 }, async () => {
    const kind = `card-${tag}`;
    // 4 more named semaphores (the earlier test made one): 5 get names; then 3 more go to _other.
    const sems = Array.from({ length: 8 }, (_, i) => new Semaphore(10, { name: `${kind}-${i}` }));
    sems.forEach((s, i) => s.tryAcquire(i + 1));
    const was = observeAll(true);
    const unnamed = [new Semaphore(4), new Semaphore(6)];
    observeAll(was);
    unnamed[0]!.tryAcquire(1);
    const { samples } = await scrape(server.url);
    const held = samples.filter((s) => s.name === "sluice_semaphore_held");
    const names = held.map((s) => s.labels.name!);
    assert.ok(names.length <= 5 + 2, `at most maxSeriesPerKind + 2 series (${names.join(", ")})`);
    assert.ok(names.includes("_other") && names.includes("_unnamed"));
    // The sums add up to what snapshot() says.
    const total = snapshot().filter((e) => e.kind === "semaphore").reduce((n, e) => n + (e.held as number), 0);
    assert.equal(held.reduce((n, s) => n + s.value, 0), total);
    assert.equal(get(samples, "sluice_semaphore_size", { name: "_unnamed" }), 10);
    void sems;
    void unnamed;
  });

  it("refuses bad options and a second registration in the same registry", () => {
    assert.throws(() => registerPrometheus(new Registry(), { maxSeriesPerKind: -1 }), /RangeError|maxSeriesPerKind/);
    assert.throws(() => registerPrometheus(new Registry(), { maxSeriesPerKind: 1.5 }), RangeError);
    assert.throws(() => registerPrometheus(registry), /already registered/);
    assert.throws(() => registerPrometheus({} as Registry), TypeError);
  });

  it("unregister removes every sluice metric", async () => {
    const r = new Registry();
    const h = registerPrometheus(r);
    assert.ok((await r.metrics()).includes("sluice_channel_length"));
    h.unregister();
    h.unregister();
    assert.equal((await r.metrics()).trim(), "");
    assert.ok(h.metricNames.every((n) => n.startsWith("sluice_")));
  });
});

describe("the metric catalog", () => {
  it("has metrics of their own for every kind of boundary sluice registers (none left to the shared gauge)", () => {
    // Every `observe("<kind>", ...)` in the sources: each kind must be in the catalog.
    const root = fileURLToPath(new URL("../../src/", import.meta.url));
    const kinds = new Set<string>();
    for (const file of readdirSync(root, { recursive: true }) as string[]) {
      if (!file.endsWith(".ts")) continue;
      for (const m of readFileSync(join(root, file), "utf8").matchAll(/\bobserve\("([a-z-]+)"/g)) kinds.add(m[1]!);
    }
    assert.ok(kinds.size >= 15, `found ${kinds.size} kinds`);
    const catalogued = new Set(CATALOG.map((m) => m.kind));
    assert.deepEqual([...kinds].filter((k) => !catalogued.has(k)).sort(), []);
  });
});
