/**
 * Specification of `RetryBudget` (issue 4, "Retry and circuit breaking"): retries allowed as a
 * ratio of recent successful calls plus a small floor per second, in fixed memory.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { RetryBudget } from "../../src/flow/retry-budget.js";
import { VirtualClock, useClock } from "../../src/testing/index.js";

function drain(budget: RetryBudget): number {
  let n = 0;
  while (budget.tryWithdraw()) {
    n++;
    assert.ok(n <= 1_000_000, "tryWithdraw never refused");
  }
  return n;
}

describe("RetryBudget defaults and options", () => {
  it("defaults to ratio 0.1, 10 retries per second, a 10 s window: a reserve of 100 retries", () => {
    const clock = new VirtualClock();
    const budget = new RetryBudget({ clock });
    assert.equal(budget.available, 100);
    assert.equal(drain(budget), 100);
    for (let i = 0; i < 10; i++) budget.deposit();
    assert.equal(budget.available, 1, "ten successes earn one retry at ratio 0.1");
  });

  it("refuses bad options with TypeError / RangeError naming the option", () => {
    const clock = new VirtualClock();
    const cases: [unknown, ErrorConstructor, RegExp][] = [
      [{ ratio: "0.1" }, TypeError, /options\.ratio/],
      [{ ratio: -0.1 }, RangeError, /options\.ratio/],
      [{ ratio: NaN }, RangeError, /options\.ratio/],
      [{ ratio: Infinity }, RangeError, /options\.ratio/],
      [{ minPerSecond: false }, TypeError, /options\.minPerSecond/],
      [{ minPerSecond: -1 }, RangeError, /options\.minPerSecond/],
      [{ minPerSecond: Infinity }, RangeError, /options\.minPerSecond/],
      [{ windowMs: 0 }, RangeError, /options\.windowMs/],
      [{ windowMs: -5 }, RangeError, /options\.windowMs/],
      [{ windowMs: Infinity }, RangeError, /options\.windowMs/],
      [{ windowMs: "1s" }, TypeError, /options\.windowMs/],
      [{ clock: {} }, TypeError, /options\.clock/],
      [{ name: 3 }, TypeError, /options\.name/],
    ];
    for (const [options, type, message] of cases) {
      assert.throws(() => new RetryBudget({ clock, ...(options as object) }), (e: unknown) => {
        assert.ok(e instanceof type, `${JSON.stringify(options)}: ${String(e)}`);
        assert.match((e as Error).message, message);
        return true;
      });
    }
    assert.throws(() => new RetryBudget(5 as never), TypeError);
    assert.throws(() => new RetryBudget(null as never), TypeError);
  });

  it("uses the default clock when none is given (sluice/testing's useClock)", () => {
    const clock = new VirtualClock(50_000);
    const restore = useClock(clock);
    try {
      const budget = new RetryBudget({ ratio: 0, minPerSecond: 1, windowMs: 1000 });
      assert.equal(drain(budget), 1);
      clock.advance(999);
      assert.equal(budget.available, 0);
      clock.advance(1);
      assert.equal(budget.available, 1);
    } finally {
      restore();
    }
  });
});

describe("RetryBudget accounting", () => {
  it("with no successes allows only the reserve, minPerSecond * windowMs / 1000, and counts refusals", () => {
    const clock = new VirtualClock();
    const budget = new RetryBudget({ ratio: 0.5, minPerSecond: 2, windowMs: 5000, clock });
    assert.equal(drain(budget), 10);
    assert.equal(budget.tryWithdraw(), false);
    const s = budget.stats;
    assert.deepEqual({ ...s }, { name: undefined, available: 0, deposits: 0, withdrawals: 10, refused: 2 });
  });

  it("earns `ratio` of a retry per success, without float rounding losing one (0.1 * 30 is 3)", () => {
    const clock = new VirtualClock();
    const budget = new RetryBudget({ ratio: 0.1, minPerSecond: 0, clock });
    assert.equal(budget.tryWithdraw(), false);
    for (let i = 0; i < 9; i++) budget.deposit();
    assert.equal(budget.available, 0);
    budget.deposit();
    assert.equal(budget.available, 1);
    for (let i = 0; i < 20; i++) budget.deposit();
    assert.equal(budget.available, 3);
    assert.equal(drain(budget), 3);
    assert.equal(budget.stats.deposits, 30);
  });

  it("a ratio above 1 allows several retries per success", () => {
    const budget = new RetryBudget({ ratio: 2, minPerSecond: 0, clock: new VirtualClock() });
    budget.deposit();
    assert.equal(drain(budget), 2);
  });

  it("ratio 0 and minPerSecond 0 allow no retry at all", () => {
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 0, clock: new VirtualClock() });
    for (let i = 0; i < 100; i++) budget.deposit();
    assert.equal(budget.tryWithdraw(), false);
    assert.equal(budget.available, 0);
  });

  it("a refusal changes nothing but the refused counter", () => {
    const budget = new RetryBudget({ ratio: 0.5, minPerSecond: 0, clock: new VirtualClock() });
    budget.deposit();
    assert.equal(budget.tryWithdraw(), false); // 0.5 < 1
    budget.deposit();
    assert.equal(budget.tryWithdraw(), true); // the refusal did not consume the first half
    assert.equal(budget.stats.refused, 1);
    assert.equal(budget.stats.withdrawals, 1);
  });

  it("forgets retries after windowMs (a slice of windowMs/10 at a time)", () => {
    const clock = new VirtualClock();
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 1, windowMs: 10_000, clock });
    assert.equal(drain(budget), 10); // all in the slice [0, 1000)
    clock.advance(9_999);
    assert.equal(budget.available, 0, "still inside the window");
    clock.advance(1);
    assert.equal(budget.available, 10, "the slice of t=0 expired at t=10 000");
  });

  it("forgets successes after windowMs", () => {
    const clock = new VirtualClock();
    const budget = new RetryBudget({ ratio: 1, minPerSecond: 0, windowMs: 1000, clock });
    budget.deposit();
    budget.deposit();
    clock.advance(500);
    budget.deposit();
    assert.equal(budget.available, 3);
    clock.advance(500);
    assert.equal(budget.available, 1, "the two deposits of t=0 expired");
    clock.advance(1000);
    assert.equal(budget.available, 0);
  });

  it("a long idle gap empties the window in one step", () => {
    const clock = new VirtualClock();
    const budget = new RetryBudget({ ratio: 1, minPerSecond: 0, windowMs: 1000, clock });
    for (let i = 0; i < 5; i++) budget.deposit();
    clock.advance(1e9);
    assert.equal(budget.available, 0);
    budget.deposit();
    assert.equal(budget.available, 1);
  });

  it("survives a clock that goes backwards: nothing expires early or is counted twice", () => {
    let now = 10_000;
    const clock = { now: () => now, setTimeout: () => 0, clearTimeout: () => {} };
    const budget = new RetryBudget({ ratio: 1, minPerSecond: 0, windowMs: 1000, clock });
    budget.deposit();
    now = 5_000;
    assert.equal(budget.available, 1);
    assert.equal(budget.tryWithdraw(), true);
    assert.equal(budget.tryWithdraw(), false);
    now = 11_000;
    assert.equal(budget.available, 0);
    budget.deposit();
    assert.equal(budget.available, 1);
  });

  it("works with negative clock times (a virtual clock started before 1970)", () => {
    const clock = new VirtualClock(-12_345);
    const budget = new RetryBudget({ ratio: 1, minPerSecond: 0, windowMs: 1000, clock });
    budget.deposit();
    clock.advance(500);
    assert.equal(budget.available, 1);
    clock.advance(1000);
    assert.equal(budget.available, 0);
  });

  it("stats is a fresh snapshot each time", () => {
    const budget = new RetryBudget({ clock: new VirtualClock(), name: "upstream" });
    const a = budget.stats;
    budget.deposit();
    const b = budget.stats;
    assert.notEqual(a, b);
    assert.equal(a.deposits, 0);
    assert.equal(b.deposits, 1);
    assert.equal(b.name, "upstream");
  });

  it("at every retry, retries in the window <= reserve + ratio * successes in it (random schedules, seeded)", () => {
    const SLICE_MS = 100; // windowMs 1000 in 10 slices
    fc.assert(
      fc.property(
        fc.constantFrom(0, 0.1, 0.25, 1),
        fc.constantFrom(0, 1, 5),
        fc.array(
          fc.oneof(
            fc.constant<"deposit" | "withdraw">("deposit"),
            fc.constant<"deposit" | "withdraw">("withdraw"),
            fc.integer({ min: 1, max: 400 }),
          ),
          { maxLength: 300 },
        ),
        (ratio, minPerSecond, ops) => {
          const clock = new VirtualClock();
          const budget = new RetryBudget({ ratio, minPerSecond, windowMs: 1000, clock });
          const reserve = minPerSecond; // per 1000 ms window
          // per-slice counts: at most ops.length entries each
          const deposits = new Map<number, number>();
          const retries = new Map<number, number>();
          const inWindow = (m: Map<number, number>, end: number): number => {
            let n = 0;
            for (let s = end - 9; s <= end; s++) n += m.get(s) ?? 0;
            return n;
          };
          for (const op of ops) {
            const slice = Math.floor(clock.now() / SLICE_MS);
            if (op === "deposit") {
              budget.deposit();
              deposits.set(slice, (deposits.get(slice) ?? 0) + 1);
            } else if (op === "withdraw") {
              const expected = reserve + ratio * inWindow(deposits, slice) - inWindow(retries, slice) >= 1 - 1e-9;
              assert.equal(budget.tryWithdraw(), expected, `withdraw at slice ${slice}`);
              if (expected) retries.set(slice, (retries.get(slice) ?? 0) + 1);
              const r = inWindow(retries, slice);
              const d = inWindow(deposits, slice);
              assert.ok(r <= reserve + ratio * d + 1e-9, `slice ${slice}: ${r} retries, ${d} successes`);
            } else {
              clock.advance(op);
            }
          }
        },
      ),
      { seed: 4242, numRuns: 200 },
    );
  });
});
