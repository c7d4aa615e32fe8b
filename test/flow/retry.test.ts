/**
 * Specification of `retry` (issue 4, "Retry and circuit breaking"): exponential backoff with
 * jitter, `retryIf`, `BusyError.retryAfterMs`, a shared `RetryBudget`, and a signal that it
 * never sleeps past. Time is virtual and randomness injected: no real waits.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { retry, defaultRetryIf, type RetryEvent, type RetryOptions } from "../../src/flow/retry.js";
import { RetryBudget } from "../../src/flow/retry-budget.js";
import { BreakerOpenError, DroppedError } from "../../src/flow/errors.js";
import { BusyError, ChannelClosedError } from "../../src/index.js";
import { VirtualClock, useClock } from "../../src/testing/index.js";
import { capture, peek, stillPending } from "../core/fixtures/probe.js";

function aborted(reason: unknown = new Error("aborted before the call")): AbortSignal {
  const ac = new AbortController();
  ac.abort(reason);
  return ac.signal;
}

/** A function that fails its first `failures` attempts with `error(attempt)`, then returns "ok". */
function flaky(failures: number, error: (attempt: number) => unknown = (n) => new Error(`attempt ${n} failed`)) {
  const seen: { signal: AbortSignal; attempt: number }[] = [];
  const fn = (signal: AbortSignal, attempt: number): Promise<string> => {
    if (seen.length < 100) seen.push({ signal, attempt });
    calls.n++;
    return calls.n <= failures ? Promise.reject(error(attempt)) : Promise.resolve("ok");
  };
  const calls = { n: 0 };
  return { fn, calls, seen };
}

/** Options for deterministic backoffs: no jitter, 100 ms base. */
function fixed(clock: VirtualClock, more?: RetryOptions): RetryOptions {
  return { clock, jitter: "none", baseMs: 100, maxMs: 10_000, ...more };
}

describe("retry: attempts and results", () => {
  it("resolves with the first attempt's value without waiting; fn gets (signal, 1)", async () => {
    const clock = new VirtualClock();
    const { fn, calls, seen } = flaky(0);
    const p = retry(fn, { clock });
    assert.equal(await p, "ok");
    assert.equal(calls.n, 1);
    assert.equal(seen[0]!.attempt, 1);
    assert.ok(seen[0]!.signal instanceof AbortSignal, "fn gets an AbortSignal");
    assert.equal(seen[0]!.signal.aborted, false);
    assert.equal(clock.pending, 0, "no timer armed");
  });

  it("passes the caller's signal to every attempt, and numbers attempts 1, 2, 3", async () => {
    const clock = new VirtualClock();
    const ac = new AbortController();
    const { fn, seen } = flaky(2);
    const p = retry(fn, fixed(clock, { signal: ac.signal }));
    await clock.advanceAsync(300);
    assert.equal(await p, "ok");
    assert.deepEqual(seen.map((s) => s.attempt), [1, 2, 3]);
    assert.ok(seen.every((s) => s.signal === ac.signal), "every attempt gets the caller's signal");
  });

  it("accepts a synchronous fn, and counts a synchronous throw as a failed attempt", async () => {
    const clock = new VirtualClock();
    let n = 0;
    const p = retry(() => {
      if (++n === 1) throw new Error("sync failure");
      return 42;
    }, fixed(clock));
    await clock.advanceAsync(100);
    assert.equal(await p, 42);
    assert.equal(n, 2);
  });

  it("waits baseMs * 2^k before retry k+1 (jitter none), capped at maxMs, through the clock only", async () => {
    const clock = new VirtualClock();
    const { fn, calls } = flaky(6);
    const p = capture(retry(fn, fixed(clock, { attempts: 7, baseMs: 100, maxMs: 1000 })));
    const expected = [100, 200, 400, 800, 1000, 1000];
    for (const [i, delay] of expected.entries()) {
      await clock.advanceAsync(delay - 1);
      assert.equal(calls.n, i + 1, `attempt ${i + 2} not yet started 1 ms before its backoff ends`);
      await clock.advanceAsync(1);
      assert.equal(calls.n, i + 2, `attempt ${i + 2} started after ${delay} ms`);
    }
    assert.deepEqual(await p, { status: "fulfilled", value: "ok" });
  });

  it("when attempts run out, rejects with the last error itself (same object, class intact)", async () => {
    const clock = new VirtualClock();
    class UpstreamError extends Error {
      constructor(readonly attempt: number) {
        super(`upstream failed on attempt ${attempt}`);
      }
    }
    const errors: UpstreamError[] = [];
    const p = capture(
      retry((_s, attempt) => {
        const e = new UpstreamError(attempt);
        errors.push(e);
        throw e;
      }, fixed(clock, { attempts: 3 })),
    );
    await clock.advanceAsync(300);
    const out = await p;
    assert.equal(out.status, "rejected");
    assert.equal((out as { reason: unknown }).reason, errors[2]);
    assert.ok((out as { reason: unknown }).reason instanceof UpstreamError, "the class is intact");
    assert.equal(errors.length, 3);
    assert.equal(clock.pending, 0, "no timer left armed");
  });

  it("attempts: 1 never retries", async () => {
    const clock = new VirtualClock();
    const { fn, calls } = flaky(1);
    const p = retry(fn, { clock, attempts: 1 });
    assert.equal(await stillPending(p), false, "settled without any clock advance");
    await assert.rejects(p, /attempt 1 failed/);
    assert.equal(calls.n, 1);
    assert.equal(clock.pending, 0);
  });

  it("defaults to 3 attempts with a 100 ms base", async () => {
    const clock = new VirtualClock();
    const { fn, calls } = flaky(10);
    const p = capture(retry(fn, { clock, jitter: "none" }));
    await clock.advanceAsync(99);
    assert.equal(calls.n, 1);
    await clock.advanceAsync(1);
    assert.equal(calls.n, 2);
    await clock.advanceAsync(200);
    assert.equal(calls.n, 3);
    assert.equal((await p).status, "rejected");
    assert.equal(calls.n, 3);
  });

  it("attempts: Infinity retries until success", async () => {
    const clock = new VirtualClock();
    const { fn, calls } = flaky(20);
    const p = retry(fn, fixed(clock, { attempts: Infinity, baseMs: 1, maxMs: 1 }));
    await clock.advanceAsync(20);
    assert.equal(await p, "ok");
    assert.equal(calls.n, 21);
  });

  it("uses the default clock when none is given (useClock)", async () => {
    const clock = new VirtualClock();
    const restore = useClock(clock);
    try {
      const { fn, calls } = flaky(1);
      const p = retry(fn, { jitter: "none", baseMs: 5000 });
      assert.ok(await stillPending(p), "still waiting");
      assert.equal(clock.pending, 1);
      await clock.advanceAsync(5000);
      assert.equal(await p, "ok");
      assert.equal(calls.n, 2);
    } finally {
      restore();
    }
  });
});

describe("retry: jitter", () => {
  async function delays(jitter: RetryOptions["jitter"], draws: number[], more?: RetryOptions): Promise<number[]> {
    const clock = new VirtualClock();
    const events: RetryEvent[] = [];
    let i = 0;
    const p = capture(
      retry(() => Promise.reject(new Error("down")), {
        clock,
        jitter,
        attempts: draws.length + 1,
        baseMs: 100,
        maxMs: 1000,
        random: () => draws[i++]!,
        onRetry: (e) => events.push(e),
        ...more,
      }),
    );
    await clock.advanceAsync(100_000);
    assert.equal((await p).status, "rejected");
    return events.map((e) => e.delayMs);
  }

  it('"full" (the default) draws uniformly from [0, cap): delay = random() * min(maxMs, baseMs * 2^k)', async () => {
    assert.deepEqual(await delays(undefined, [0.5, 0.5, 0.5, 0.5, 0.5]), [50, 100, 200, 400, 500]);
    assert.deepEqual(await delays("full", [0, 0.25, 0.999]), [0, 50, 399.6]);
  });

  it('"equal" waits cap/2 plus a draw from [0, cap/2)', async () => {
    assert.deepEqual(await delays("equal", [0, 0.5, 0, 0.5, 0]), [50, 150, 200, 600, 500]);
  });

  it('"none" waits exactly the cap and never draws', async () => {
    let drawn = 0;
    const clock = new VirtualClock();
    const events: RetryEvent[] = [];
    const p = capture(
      retry(() => Promise.reject(new Error("down")), {
        clock,
        jitter: "none",
        attempts: 4,
        random: () => {
          drawn++;
          return 0.5;
        },
        onRetry: (e) => events.push(e),
      }),
    );
    await clock.advanceAsync(1000);
    assert.equal((await p).status, "rejected");
    assert.deepEqual(events.map((e) => e.delayMs), [100, 200, 400]);
    assert.equal(drawn, 0);
  });

  it("a huge attempt count cannot overflow the backoff (2^k beyond float range stays at maxMs)", async () => {
    const clock = new VirtualClock();
    const events: RetryEvent[] = [];
    const p = capture(
      retry((_s, n) => (n < 1100 ? Promise.reject(new Error("down")) : Promise.resolve(n)), {
        clock,
        jitter: "none",
        attempts: Infinity,
        baseMs: 0,
        maxMs: 0,
        onRetry: (e) => {
          if (e.attempt > 1090) events.push(e);
        },
      }),
    );
    await clock.advanceAsync(0); // every backoff is 0 ms: all attempts run at t = 0
    assert.deepEqual(await p, { status: "fulfilled", value: 1100 });
    assert.ok(events.length > 0 && events.every((e) => e.delayMs === 0), "every late delay is exactly 0");
  });

  it("rejects with RangeError when options.random returns something outside [0, 1]", async () => {
    for (const bad of [-0.1, 1.5, NaN, "0.5"]) {
      await assert.rejects(
        retry(() => Promise.reject(new Error("down")), { clock: new VirtualClock(), random: () => bad as number }),
        (e: unknown) => e instanceof RangeError && /options\.random/.test(e.message),
      );
    }
  });

  it("onRetry is told the error, the attempt that failed and the delay, before each backoff", async () => {
    const clock = new VirtualClock();
    const errors = [new Error("a"), new Error("b")];
    const events: RetryEvent[] = [];
    const p = retry((_s, n) => (n <= 2 ? Promise.reject(errors[n - 1]) : Promise.resolve("ok")), fixed(clock, {
      onRetry: (e) => events.push(e),
    }));
    await Promise.resolve();
    await clock.advanceAsync(0);
    assert.equal(events.length, 1, "told before the first backoff elapsed");
    await clock.advanceAsync(300);
    assert.equal(await p, "ok");
    assert.deepEqual(events, [
      { error: errors[0], attempt: 1, delayMs: 100 },
      { error: errors[1], attempt: 2, delayMs: 200 },
    ]);
  });

  it("an onRetry that throws rejects retry with what it threw, and nothing more runs", async () => {
    const clock = new VirtualClock();
    const { fn, calls } = flaky(5);
    const boom = new Error("onRetry bug");
    await assert.rejects(retry(fn, fixed(clock, { onRetry: () => { throw boom; } })), (e) => e === boom);
    assert.equal(calls.n, 1);
    assert.equal(clock.pending, 0);
  });
});

describe("retry: retryIf", () => {
  it("stops at once, rejecting with the error, when retryIf(error, attempt) returns false", async () => {
    const clock = new VirtualClock();
    const seen: [unknown, number][] = [];
    const fatal = new Error("fatal");
    const p = capture(
      retry((_s, n) => Promise.reject(n === 2 ? fatal : new Error("transient")), fixed(clock, {
        attempts: 5,
        retryIf: (e, n) => {
          seen.push([e, n]);
          return e !== fatal;
        },
      })),
    );
    await clock.advanceAsync(1000);
    assert.deepEqual(await p, { status: "rejected", reason: fatal });
    assert.deepEqual(seen.map(([, n]) => n), [1, 2]);
    assert.equal(clock.pending, 0);
  });

  it("is not asked after the last attempt", async () => {
    const clock = new VirtualClock();
    let asked = 0;
    const p = capture(retry(() => Promise.reject(new Error("x")), fixed(clock, { attempts: 2, retryIf: () => (asked++, true) })));
    await clock.advanceAsync(1000);
    assert.equal((await p).status, "rejected");
    assert.equal(asked, 1);
  });

  it("a retryIf that throws rejects retry with what it threw", async () => {
    const clock = new VirtualClock();
    const bug = new Error("retryIf bug");
    await assert.rejects(retry(() => Promise.reject(new Error("x")), { clock, retryIf: () => { throw bug; } }), (e) => e === bug);
  });

  it("the default retries transient failures and gives up at once on errors retrying cannot fix", async () => {
    const retried: [string, unknown][] = [
      ["Error", new Error("x")],
      ["BusyError", new BusyError()],
      ["DroppedError", new DroppedError()],
      ["TimeoutError DOMException (a per-attempt timeout)", new DOMException("t", "TimeoutError")],
      ["AbortError DOMException of another signal", new DOMException("a", "AbortError")],
      ["fetch's network failure: TypeError with a cause", new TypeError("fetch failed", { cause: new Error("ECONNRESET") })],
      ["a thrown string", "boom"],
      ["undefined", undefined],
    ];
    const notRetried: [string, unknown][] = [
      ["BreakerOpenError", new BreakerOpenError()],
      ["ChannelClosedError", new ChannelClosedError()],
      ["TypeError", new TypeError("x is not a function")],
      ["RangeError", new RangeError("bad n")],
      ["ReferenceError", new ReferenceError("y is not defined")],
      ["SyntaxError", new SyntaxError("bad JSON")],
    ];
    for (const [what, e] of retried) assert.equal(defaultRetryIf(e, 1), true, what);
    for (const [what, e] of notRetried) assert.equal(defaultRetryIf(e, 1), false, what);

    for (const [what, e] of notRetried) {
      let n = 0;
      await assert.rejects(retry(() => (n++, Promise.reject(e)), { clock: new VirtualClock() }), (x) => x === e, what);
      assert.equal(n, 1, what);
    }
  });
});

describe("retry: retryAfterMs hints", () => {
  it("waits at least a BusyError's retryAfterMs when it is longer than the backoff", async () => {
    const clock = new VirtualClock();
    const { fn, calls } = flaky(1, () => new BusyError("full", { retryAfterMs: 750 }));
    const p = retry(fn, fixed(clock));
    await clock.advanceAsync(749);
    assert.equal(calls.n, 1);
    await clock.advanceAsync(1);
    assert.equal(await p, "ok");
    assert.equal(calls.n, 2);
  });

  it("keeps the backoff when it is longer than the hint", async () => {
    const clock = new VirtualClock();
    const events: RetryEvent[] = [];
    const { fn } = flaky(1, () => new BusyError("full", { retryAfterMs: 30 }));
    const p = retry(fn, fixed(clock, { onRetry: (e) => events.push(e) }));
    await clock.advanceAsync(100);
    assert.equal(await p, "ok");
    assert.equal(events[0]!.delayMs, 100);
  });

  it("a hint longer than maxMs ends retrying at once with that BusyError", async () => {
    const clock = new VirtualClock();
    const busy = new BusyError("full", { retryAfterMs: 60_000 });
    let n = 0;
    const p = retry(() => (n++, Promise.reject(busy)), fixed(clock, { maxMs: 5000 }));
    assert.equal(await stillPending(p), false, "gave up without waiting");
    await assert.rejects(p, (e) => e === busy);
    assert.equal(n, 1);
    assert.equal(clock.pending, 0);
  });

  it("a hint equal to maxMs is honoured", async () => {
    const clock = new VirtualClock();
    const { fn, calls } = flaky(1, () => new BusyError("full", { retryAfterMs: 5000 }));
    const p = retry(fn, fixed(clock, { maxMs: 5000 }));
    await clock.advanceAsync(4999);
    assert.equal(calls.n, 1);
    await clock.advanceAsync(1);
    assert.equal(await p, "ok");
  });

  it("ignores a missing or unusable hint (undefined, negative, NaN, Infinity)", async () => {
    for (const hint of [undefined, -5, NaN, Infinity]) {
      const clock = new VirtualClock();
      const events: RetryEvent[] = [];
      const { fn } = flaky(1, () => new BusyError("full", { retryAfterMs: hint }));
      const p = retry(fn, fixed(clock, { onRetry: (e) => events.push(e) }));
      await clock.advanceAsync(100);
      assert.equal(await p, "ok", String(hint));
      assert.equal(events[0]!.delayMs, 100, String(hint));
    }
  });

  it("honours a BreakerOpenError's retryAfterMs when retryIf chooses to retry it", async () => {
    const clock = new VirtualClock();
    const { fn, calls } = flaky(1, () => new BreakerOpenError("open", { retryAfterMs: 2500 }));
    const p = retry(fn, fixed(clock, { retryIf: () => true }));
    await clock.advanceAsync(2499);
    assert.equal(calls.n, 1);
    await clock.advanceAsync(1);
    assert.equal(await p, "ok");
  });

  it("ignores retryAfterMs on errors that are not sluice overload errors", async () => {
    const clock = new VirtualClock();
    const events: RetryEvent[] = [];
    const { fn } = flaky(1, () => Object.assign(new Error("x"), { retryAfterMs: 9000 }));
    const p = retry(fn, fixed(clock, { onRetry: (e) => events.push(e) }));
    await clock.advanceAsync(100);
    assert.equal(await p, "ok");
    assert.equal(events[0]!.delayMs, 100);
  });
});

describe("retry: the signal", () => {
  it("an already-aborted signal rejects with its reason without calling fn", async () => {
    const reason = new Error("gone");
    let called = false;
    await assert.rejects(retry(() => (called = true), { signal: aborted(reason), clock: new VirtualClock() }), (e) => e === reason);
    assert.equal(called, false);
  });

  it("an already-aborted signal wins over bad options and a bad fn", async () => {
    const reason = new Error("gone");
    await assert.rejects(retry(5 as never, { signal: aborted(reason), attempts: 0, jitter: "??" as never }), (e) => e === reason);
  });

  it("an abort during a backoff rejects at once with signal.reason, clears the timer, and calls fn no more", async () => {
    const clock = new VirtualClock();
    const ac = new AbortController();
    const { fn, calls } = flaky(5);
    const p = retry(fn, fixed(clock, { signal: ac.signal, baseMs: 10_000 }));
    assert.ok(await stillPending(p), "still waiting");
    assert.equal(calls.n, 1);
    assert.equal(clock.pending, 1, "one backoff timer armed");
    const reason = new Error("shutting down");
    ac.abort(reason);
    const out = await peek(p);
    assert.deepEqual(out, { status: "rejected", reason }, "rejected inside abort(), not after the backoff");
    assert.equal(clock.pending, 0, "the backoff timer was cleared");
    await clock.advanceAsync(100_000);
    assert.equal(calls.n, 1);
  });

  it("an abort during an attempt rejects at once with signal.reason; fn saw it on its signal; its late outcome is ignored", async () => {
    const clock = new VirtualClock();
    const ac = new AbortController();
    let release!: (v: string) => void;
    let sawAbort = false;
    let n = 0;
    const p = capture(
      retry(
        (signal) => {
          n++;
          signal.addEventListener("abort", () => (sawAbort = true), { once: true });
          return new Promise<string>((resolve) => (release = resolve));
        },
        fixed(clock, { signal: ac.signal }),
      ),
    );
    assert.ok(await stillPending(p), "still waiting");
    const reason = new DOMException("deadline", "TimeoutError");
    ac.abort(reason);
    assert.deepEqual(await p, { status: "rejected", reason });
    assert.equal(sawAbort, true);
    release("too late");
    await clock.advanceAsync(10_000);
    assert.equal(n, 1);
    assert.equal(clock.pending, 0);
  });

  it("an attempt that fails because of the abort rejects with signal.reason, not its own error", async () => {
    const clock = new VirtualClock();
    const ac = new AbortController();
    const reason = new Error("cancelled by user");
    const p = capture(
      retry(
        (signal) =>
          new Promise((_r, reject) => signal.addEventListener("abort", () => reject(new Error("fn's own abort error")), { once: true })),
        fixed(clock, { signal: ac.signal, retryIf: () => true }),
      ),
    );
    await stillPending(p);
    ac.abort(reason);
    assert.deepEqual(await p, { status: "rejected", reason });
  });

  it("fn aborting the caller's signal itself ends the call with that reason, no retry", async () => {
    const clock = new VirtualClock();
    const ac = new AbortController();
    const reason = new Error("self-abort");
    let n = 0;
    const p = retry(() => {
      n++;
      ac.abort(reason);
      return Promise.reject(new Error("after abort"));
    }, fixed(clock, { signal: ac.signal }));
    await assert.rejects(p, (e) => e === reason);
    assert.equal(n, 1);
    assert.equal(clock.pending, 0);
  });

  it("many calls sharing one long-lived signal leave no abort listener behind", async () => {
    const clock = new VirtualClock();
    const ac = new AbortController();
    for (let i = 0; i < 50; i++) {
      const { fn } = flaky(1);
      const p = retry(fn, fixed(clock, { signal: ac.signal }));
      await clock.advanceAsync(100);
      assert.equal(await p, "ok");
    }
    assert.ok(getEventListeners(ac.signal, "abort").length <= 1, "at most sluice's one shared listener");
    ac.abort(); // no pending retry: nothing to reject, nothing thrown
  });
});

describe("retry: budget", () => {
  it("the first attempt never needs the budget; each retry withdraws; a success deposits once", async () => {
    const clock = new VirtualClock();
    const budget = new RetryBudget({ ratio: 1, minPerSecond: 0, clock });
    const { fn, calls } = flaky(0);
    assert.equal(await retry(fn, { clock, budget }), "ok", "an empty budget does not stop a first attempt");
    assert.equal(calls.n, 1);
    assert.deepEqual({ ...budget.stats, name: undefined }, { name: undefined, available: 1, deposits: 1, withdrawals: 0, refused: 0 });

    const second = flaky(1);
    const p = retry(second.fn, fixed(clock, { budget }));
    await clock.advanceAsync(100);
    assert.equal(await p, "ok");
    assert.equal(second.calls.n, 2);
    const s = budget.stats;
    assert.equal(s.withdrawals, 1);
    assert.equal(s.deposits, 2, "one deposit per successful call, not per attempt");
  });

  it("when the budget refuses, stops retrying at once and rejects with the last error", async () => {
    const clock = new VirtualClock();
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 0.2, windowMs: 10_000, clock }); // 2 retries per window
    const last = new Error("still down");
    let n = 0;
    const p = capture(retry(() => (n++, Promise.reject(n === 3 ? last : new Error("down"))), fixed(clock, { attempts: 10, budget })));
    await clock.advanceAsync(1000);
    assert.deepEqual(await p, { status: "rejected", reason: last });
    assert.equal(n, 3);
    assert.equal(budget.stats.refused, 1);
    assert.equal(clock.pending, 0);
  });

  it("withdraws before the backoff: a refusal is known at once, without sleeping", async () => {
    const clock = new VirtualClock();
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 0, clock });
    const p = retry(() => Promise.reject(new Error("down")), fixed(clock, { budget, baseMs: 60_000, maxMs: 60_000 }));
    assert.equal(await stillPending(p), false, "gave up without waiting");
    await assert.rejects(p, /down/);
    assert.equal(clock.now(), 0);
  });

  it("accepts any object with deposit() and tryWithdraw()", async () => {
    const clock = new VirtualClock();
    const log: string[] = [];
    const budget = { deposit: () => void log.push("deposit"), tryWithdraw: () => (log.push("withdraw"), true) };
    const { fn } = flaky(2);
    const p = retry(fn, fixed(clock, { budget }));
    await clock.advanceAsync(300);
    assert.equal(await p, "ok");
    assert.deepEqual(log, ["withdraw", "withdraw", "deposit"]);
  });

  it("during an outage, 1000 calls with 5 attempts each make at most 1000 * 1.1 + the reserve attempts", async () => {
    const clock = new VirtualClock();
    const budget = new RetryBudget({ ratio: 0.1, minPerSecond: 10, windowMs: 10_000, clock });
    const reserve = 10 * 10;
    let attempts = 0;
    const fail = (): Promise<never> => {
      attempts++;
      return Promise.reject(new BusyError("upstream down"));
    };
    let settled = 0;
    for (let i = 0; i < 1000; i++) {
      void retry(fail, { clock, budget, attempts: 5, baseMs: 10, maxMs: 100, random: () => 0.5 }).catch(() => settled++);
    }
    for (let step = 0; step < 50 && settled < 1000; step++) await clock.advanceAsync(100);
    assert.equal(settled, 1000);
    assert.ok(attempts <= 1000 * 1.1 + reserve, `${attempts} attempts`);
    assert.equal(attempts, 1000 + reserve, "with no success, only the reserve pays for retries");
    assert.equal(budget.stats.withdrawals, reserve);
    assert.equal(clock.pending, 0);
  });

  it("under partial failure spread over time, retries stay within ratio * successes + the per-second floor", async () => {
    const clock = new VirtualClock();
    const budget = new RetryBudget({ ratio: 0.1, minPerSecond: 2, windowMs: 10_000, clock });
    let attempts = 0;
    let successes = 0;
    const fn = (): Promise<string> => {
      attempts++;
      // a deterministic 30% success rate
      if (attempts % 10 < 3) {
        successes++;
        return Promise.resolve("ok");
      }
      return Promise.reject(new Error("flaky"));
    };
    let settled = 0;
    const calls = 2000;
    const spreadMs = 20_000; // 100 calls per second for 20 s
    for (let i = 0; i < calls; i++) {
      if (i % 10 === 0) await clock.advanceAsync(100);
      void retry(fn, { clock, budget, attempts: 4, baseMs: 50, maxMs: 400, random: () => 0.5 }).then(
        () => settled++,
        () => settled++,
      );
    }
    for (let step = 0; step < 50 && settled < calls; step++) await clock.advanceAsync(100);
    assert.equal(settled, calls);
    const retries = attempts - calls;
    const windows = Math.ceil((clock.now() + 10_000) / 10_000);
    const bound = 0.1 * successes + 2 * 10 * windows;
    assert.ok(retries <= bound, `${retries} retries > ${bound}`);
    assert.ok(retries > 0, "the budget did allow some retries");
    assert.ok(clock.now() >= spreadMs, "the calls were spread over time");
  });
});

describe("retry: validation", () => {
  it("rejects (never throws) with TypeError / RangeError naming the option, before calling fn", async () => {
    const cases: [unknown, ErrorConstructor, RegExp][] = [
      [{ attempts: 0 }, RangeError, /options\.attempts/],
      [{ attempts: 1.5 }, RangeError, /options\.attempts/],
      [{ attempts: NaN }, RangeError, /options\.attempts/],
      [{ attempts: "3" }, TypeError, /options\.attempts/],
      [{ baseMs: -1 }, RangeError, /options\.baseMs/],
      [{ baseMs: Infinity }, RangeError, /options\.baseMs/],
      [{ baseMs: "100" }, TypeError, /options\.baseMs/],
      [{ maxMs: -1 }, RangeError, /options\.maxMs/],
      [{ maxMs: NaN }, RangeError, /options\.maxMs/],
      [{ baseMs: 500, maxMs: 100 }, RangeError, /options\.maxMs.*options\.baseMs/],
      [{ jitter: "decorrelated" }, RangeError, /options\.jitter/],
      [{ jitter: 1 }, TypeError, /options\.jitter/],
      [{ retryIf: true }, TypeError, /options\.retryIf/],
      [{ signal: {} }, TypeError, /options\.signal/],
      [{ budget: {} }, TypeError, /options\.budget/],
      [{ budget: null }, TypeError, /options\.budget/],
      [{ clock: { now: () => 0 } }, TypeError, /options\.clock/],
      [{ random: 0.5 }, TypeError, /options\.random/],
      [{ onRetry: "log" }, TypeError, /options\.onRetry/],
    ];
    for (const [options, type, message] of cases) {
      let called = false;
      const p = retry(() => (called = true), options as RetryOptions);
      await assert.rejects(p, (e: unknown) => {
        assert.ok(e instanceof type, `${JSON.stringify(options)}: ${String(e)}`);
        assert.match((e as Error).message, message);
        return true;
      });
      assert.equal(called, false, JSON.stringify(options));
    }
    await assert.rejects(retry(() => 1, 7 as never), TypeError);
    await assert.rejects(retry("fn" as never), (e: unknown) => e instanceof TypeError && /fn/.test(e.message));
  });
});
