import assert from "node:assert/strict";
import { test } from "node:test";
import { parseCli, UsageError } from "../../../examples/order-service/options.js";

test("defaults, and every option parsed", () => {
  const d = parseCli([]);
  assert.ok(d !== "help");
  assert.deepEqual(
    [d.orders, d.invalidRate, d.unknownRate, d.seed, d.table, d.drainMs, d.concurrency, d.rate, d.batch, d.lookupMinMs, d.lookupMaxMs, d.failureRate, d.progressMs, d.json, d.drop],
    [20_000, 0.05, 0.01, 1, undefined, 5000, 16, 2000, 50, 2, 10, 0.05, 500, false, false],
  );
  const o = parseCli([
    "--orders", "7", "--invalid-rate", "0.5", "--unknown-rate", "0", "--seed", "3", "--table", "t_1", "--drain-ms", "0",
    "--concurrency", "2", "--rate", "10.5", "--batch", "9", "--lookup-ms", "1-1.5", "--failure-rate", "1", "--progress-ms", "20", "--json", "--drop",
  ]);
  assert.ok(o !== "help");
  assert.deepEqual(
    [o.orders, o.invalidRate, o.unknownRate, o.seed, o.table, o.drainMs, o.concurrency, o.rate, o.batch, o.lookupMinMs, o.lookupMaxMs, o.failureRate, o.progressMs, o.json, o.drop],
    [7, 0.5, 0, 3, "t_1", 0, 2, 10.5, 9, 1, 1.5, 1, 20, true, true],
  );
  assert.equal(parseCli(["--help"]), "help");
  assert.deepEqual((parseCli(["--orders", "5", "--orders", "6"]) as { orders: number }).orders, 6, "the last one wins (the demo's default relies on it)");
});

const bad: [string[], RegExp][] = [
  [["--orders", "1.5"], /--orders must be a non-negative integer, got "1.5"/],
  [["--concurrency", "0"], /--concurrency must be a positive integer, got "0"/],
  [["--invalid-rate", "2"], /--invalid-rate must be a number in \[0, 1\], got "2"/],
  [["--rate", "Infinity"], /--rate must be a positive number/],
  [["--lookup-ms", "5-2"], /--lookup-ms must be A-B with 0 <= A <= B, got "5-2"/],
  [["--table", "x;drop"], /--table must be a plain identifier/],
  [["--what"], /Unknown option '--what'/],
  [["extra"], /positional/],
];
for (const [args, message] of bad) {
  test(`refused: ${args.join(" ")}`, () => {
    assert.throws(() => parseCli(args), (e: unknown) => e instanceof UsageError && message.test(e.message));
  });
}
