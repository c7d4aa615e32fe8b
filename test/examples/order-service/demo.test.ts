import assert from "node:assert/strict";
import { test } from "node:test";
import { main, UsageError } from "../../../examples/order-service/demo.js";
import { OrderStore } from "../../../examples/order-service/store.js";

test("the demo runs a load into a fresh table, checks itself, drops the table, and returns figures and charts", { timeout: 90_000 }, async () => {
  const lines: string[] = [];
  const r = await main({ args: ["--orders", "600", "--progress-ms", "100"], out: (l) => lines.push(l), signal: new AbortController().signal });
  assert.equal(r.demo, "orders");
  assert.equal(r.ok, true, r.verdict);
  assert.match(r.verdict, /^OK: all messages handled/);
  const f = r.figures;
  assert.equal(f.outcome, "completed");
  assert.equal(f.consumed, 600);
  assert.equal(f.consumed, (f.persisted as number) + (f.deadLettered as number) + (f.abandoned as number));
  assert.equal(f.tableRows, f.persisted);
  assert.equal(f.tableDropped, true);
  assert.equal(lines.at(-1), r.verdict);
  assert.equal(r.charts.length, 2);
  const consumed = r.charts[0]!.series[0]!;
  assert.equal(consumed.points.at(-1)![1], 600, "the last sample is the final count");
  for (let i = 1; i < consumed.points.length; i++) assert.ok(consumed.points[i]![0] >= consumed.points[i - 1]![0], "time order");
  assert.ok(r.charts[1]!.series[0]!.points.every(([, v]) => v <= 256), "in flight within the broker's bound");
  // The demo's table was dropped: opening the name creates an empty one.
  const again = await OrderStore.open({ table: String(f.table) });
  try {
    assert.equal(await again.count(), 0);
  } finally {
    await again.drop();
    await again.close();
  }
});

test("the demo's signal stops it early and it still resolves, with the counts adding up", { timeout: 90_000 }, async () => {
  const ctl = new AbortController();
  const r = await main({
    args: ["--orders", "50000", "--progress-ms", "50"],
    out: (l) => {
      if (/persisted\s+[1-9]/.test(l)) ctl.abort();
    },
    signal: ctl.signal,
  });
  assert.equal(r.ok, true, r.verdict);
  assert.ok(r.figures.outcome === "drained" || r.figures.outcome === "deadline");
  assert.ok((r.figures.consumed as number) < 50_000);
  assert.equal(r.figures.tableRows, r.figures.persisted);
});

test("a bad option rejects with UsageError", async () => {
  await assert.rejects(main({ args: ["--batch", "0"], out: () => {}, signal: new AbortController().signal }), UsageError);
});
