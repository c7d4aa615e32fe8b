/**
 * The agent inbox demo (demo/agent.ts) at a small size, through its `main`: the inbox is
 * overloaded, refuses with 503 + Retry-After, every 202 ends completed, the queue stays within
 * its bound, and the result has the shape every demo resolves with.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { main } from "../../demo/agent.js";

test("demo agent: overloaded inbox answers 503 + Retry-After, every 202 ends completed", { timeout: 60_000 }, async () => {
  const lines: string[] = [];
  const result = await main({
    args: ["--duration", "3", "--agents", "24", "--workers", "2", "--queue", "8", "--task-ms", "40"],
    out: (line) => lines.push(line),
    signal: new AbortController().signal,
  });
  assert.equal(result.demo, "agent");
  assert.equal(result.ok, true, lines.join("\n"));
  const f = result.figures;
  assert.ok((f.accepted as number) > 0);
  assert.ok((f.rejected as number) > 0, "the run overloaded the inbox");
  assert.equal(f.notCompleted, 0);
  assert.equal(f.accepted, f.completed);
  assert.equal(f.accepted, f.acceptedSeenByAgents);
  assert.equal(f.withoutRetryAfter, 0);
  assert.ok((f.maxQueued as number) <= 8);
  assert.equal(lines.filter((l) => /^\s+\d+s\s/.test(l)).length, 3, "one row per second");
  assert.match(result.verdict, /^Verdict: bounded/);
  assert.equal(result.charts.length, 3);
  for (const c of result.charts) for (const s of c.series) assert.equal(s.points.length, 3);
});
