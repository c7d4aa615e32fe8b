/**
 * `npm run demo:broker` (demo/broker.ts), run small against the real NATS server: the bug run
 * holds far more messages than the fix's bound, the fix never exceeds its pool's capacity, both
 * process the whole backlog, and the result has the shape every demo resolves with.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { main } from "../../demo/broker.js";

test("broker demo, small: bug unbounded, fix bounded by its pool, both drain the backlog", { timeout: 120_000 }, async () => {
  const lines: string[] = [];
  const result = await main({
    args: ["--messages", "800", "--size", "2048", "--work-ms", "20"],
    out: (l) => {
      if (lines.length < 1000) lines.push(l);
    },
    signal: new AbortController().signal,
  });
  assert.equal(result.demo, "broker");
  assert.equal(result.ok, true, result.verdict);
  assert.equal(result.figures.messages, 800);
  assert.ok(Number(result.figures.fixMaxInFlight) <= 32);
  assert.ok(Number(result.figures.bugMaxInFlight) > 32, `bug held ${result.figures.bugMaxInFlight}`);
  assert.equal(result.charts.length, 2);
  assert.ok(result.charts.every((c) => c.series.length === 2 && c.series.every((s) => s.points.length > 0)));
  assert.equal(lines.at(-1), result.verdict);
});

test("broker demo: bad arguments are refused before anything is published", async () => {
  await assert.rejects(main({ args: ["--messages", "0"], out: () => undefined, signal: new AbortController().signal }), /--messages must be a positive integer/);
});
