/**
 * Specification of `CircuitBreaker` (issue 4, "Retry and circuit breaking"): closed -> open ->
 * half-open -> closed, fail-fast with `BreakerOpenError` without running, counters, and
 * state-change events. Time is virtual: no real waits.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { getEventListeners } from "node:events";
import { CircuitBreaker, type BreakerStateChange, type CircuitBreakerOptions } from "../../src/flow/circuit-breaker.js";
import { BreakerOpenError } from "../../src/flow/errors.js";
import { BusyError } from "../../src/index.js";
import { VirtualClock, useClock } from "../../src/testing/index.js";
import { capture, collectWarnings, peek, stillPending, turns, withCode } from "../core/fixtures/probe.js";

const ok = (): Promise<string> => Promise.resolve("ok");
const fail = (): Promise<never> => Promise.reject(new Error("down"));

function aborted(reason: unknown = new Error("aborted before the call")): AbortSignal {
  const ac = new AbortController();
  ac.abort(reason);
  return ac.signal;
}

/** A call that stays running until the test settles it. */
function pending(): { fn: (signal: AbortSignal) => Promise<string>; resolve(v?: string): void; reject(e?: unknown): void; started: () => boolean; signal: () => AbortSignal | undefined } {
  let res!: (v: string) => void;
  let rej!: (e: unknown) => void;
  let started = false;
  let seen: AbortSignal | undefined;
  const promise = new Promise<string>((a, b) => {
    res = a;
    rej = b;
  });
  return {
    fn: (signal) => {
      started = true;
      seen = signal;
      return promise;
    },
    resolve: (v = "ok") => res(v),
    reject: (e = new Error("down")) => rej(e),
    started: () => started,
    signal: () => seen,
  };
}

/** Runs `n` calls of `fn` to completion, ignoring outcomes. */
async function runN(b: CircuitBreaker, n: number, fn: () => Promise<unknown>): Promise<void> {
  for (let i = 0; i < n; i++) await b.run(fn).catch(() => {});
}

/** A breaker on a virtual clock that opens after 2 failures of 4 calls, for 1 s. */
function small(more?: CircuitBreakerOptions): { clock: VirtualClock; b: CircuitBreaker; changes: BreakerStateChange[] } {
  const clock = new VirtualClock();
  const b = new CircuitBreaker({ clock, failureRate: 0.5, minimumCalls: 4, window: { kind: "count", size: 10 }, openMs: 1000, ...more });
  const changes: BreakerStateChange[] = [];
  b.onStateChange((c) => {
    if (changes.length < 100) changes.push(c);
  });
  return { clock, b, changes };
}

async function openIt(b: CircuitBreaker): Promise<void> {
  await runN(b, 4, fail);
  assert.equal(b.state, "open");
}

describe("CircuitBreaker closed", () => {
  it("passes values and errors through and counts them; fn gets an AbortSignal", async () => {
    const { b } = small();
    let seen: AbortSignal | undefined;
    assert.equal(await b.run((s) => ((seen = s), 7)), 7);
    assert.ok(seen instanceof AbortSignal && !seen.aborted, "fn gets a live AbortSignal");
    const e = new Error("x");
    await assert.rejects(b.run(() => Promise.reject(e)), (x) => x === e);
    await assert.rejects(b.run(() => { throw e; }), (x) => x === e);
    const s = b.stats;
    assert.deepEqual(
      { calls: s.calls, successes: s.successes, failures: s.failures, rejected: s.rejected, running: s.running, state: s.state },
      { calls: 3, successes: 1, failures: 2, rejected: 0, running: 0, state: "closed" },
    );
    assert.equal(s.windowCalls, 3);
    assert.equal(s.windowFailures, 2);
  });

  it("passes the caller's signal to fn", async () => {
    const { b } = small();
    const ac = new AbortController();
    let seen: AbortSignal | undefined;
    await b.run((s) => ((seen = s), 1), { signal: ac.signal });
    assert.equal(seen, ac.signal);
  });

  it("stays closed below minimumCalls, however many fail", async () => {
    const { b } = small();
    await runN(b, 3, fail);
    assert.equal(b.state, "closed");
    assert.equal(b.stats.failures, 3);
  });

  it("opens once calls >= minimumCalls and the failure rate reaches failureRate (the boundary included)", async () => {
    const { b, changes, clock } = small();
    await runN(b, 2, ok);
    await runN(b, 1, fail);
    assert.equal(b.state, "closed", "1 of 3: below minimumCalls");
    clock.advance(5);
    await runN(b, 1, fail);
    assert.equal(b.state, "open", "2 of 4 = 0.5 >= 0.5");
    assert.deepEqual(changes, [{ from: "closed", to: "open", at: 5 }]);
    assert.equal(b.stats.transitions, 1);
  });

  it("stays closed while the rate is below failureRate", async () => {
    const { b } = small();
    for (let i = 0; i < 10; i++) {
      await runN(b, 2, ok);
      await runN(b, 1, fail); // at most 1 in 3
    }
    assert.equal(b.state, "closed");
  });

  it("a count window forgets the oldest outcome as each new one arrives", async () => {
    const { b } = small({ window: { kind: "count", size: 4 }, minimumCalls: 4, failureRate: 0.75 });
    await runN(b, 2, fail);
    await runN(b, 4, ok); // window: ok ok ok ok
    await runN(b, 2, fail); // window: ok ok F F (0.5)
    assert.equal(b.state, "closed");
    assert.equal(b.stats.windowFailures, 2);
    await runN(b, 1, fail); // ok F F F (0.75)
    assert.equal(b.state, "open");
  });

  it("a time window forgets outcomes older than window.ms", async () => {
    const clock = new VirtualClock();
    const b = new CircuitBreaker({ clock, minimumCalls: 2, failureRate: 1, window: { kind: "time", ms: 1000 } });
    await runN(b, 1, fail);
    clock.advance(999);
    assert.equal(b.stats.windowCalls, 1);
    clock.advance(1);
    assert.equal(b.stats.windowCalls, 0, "the failure at t=0 expired at t=1000");
    await runN(b, 1, fail);
    assert.equal(b.state, "closed", "only one failure in the window");
    clock.advance(500);
    await runN(b, 1, fail);
    assert.equal(b.state, "open");
  });

  it("counts BusyError as a failure by default", async () => {
    const { b } = small();
    await runN(b, 4, () => Promise.reject(new BusyError("overloaded")));
    assert.equal(b.state, "open");
  });

  it("isFailure decides: an error it rejects counts as a success, and run still rejects with it", async () => {
    class NotFound extends Error {}
    const { b } = small({ isFailure: (e) => !(e instanceof NotFound) });
    const e = new NotFound("no such user");
    for (let i = 0; i < 6; i++) await assert.rejects(b.run(() => Promise.reject(e)), (x) => x === e);
    assert.equal(b.state, "closed");
    assert.equal(b.stats.successes, 6);
    assert.equal(b.stats.failures, 0);
  });

  it("an isFailure that throws counts the call as a failure and rejects run with what it threw", async () => {
    const bug = new Error("classifier bug");
    const { b } = small({ isFailure: () => { throw bug; } });
    await assert.rejects(b.run(fail), (x) => x === bug);
    assert.equal(b.stats.failures, 1);
  });

  it("uses the default clock when none is given (useClock)", async () => {
    const clock = new VirtualClock();
    const restore = useClock(clock);
    try {
      const b = new CircuitBreaker({ minimumCalls: 1, openMs: 500 });
      await runN(b, 1, fail);
      assert.equal(b.state, "open");
      clock.advance(500);
      assert.equal(b.state, "half-open");
    } finally {
      restore();
    }
  });
});

describe("CircuitBreaker open", () => {
  it("fails fast with BreakerOpenError (ERR_BREAKER_OPEN) without calling fn; retryAfterMs is the time left", async () => {
    const { b, clock } = small({ name: "payments" });
    await openIt(b);
    clock.advance(300);
    let called = false;
    const p = b.run(() => ((called = true), 1));
    const out = await peek(p);
    assert.equal(out.status, "rejected", "refused inside the call");
    const e = (out as { reason: unknown }).reason;
    assert.ok(e instanceof BreakerOpenError, "a BreakerOpenError");
    assert.equal(e.code, "ERR_BREAKER_OPEN");
    assert.equal(e.retryAfterMs, 700);
    assert.match(e.message, /payments/);
    assert.equal(called, false);
    assert.equal(b.stats.rejected, 1);
    assert.equal(b.stats.calls, 4);
  });

  it("an already-aborted signal wins over the open state: rejects with its reason, counts nothing", async () => {
    const { b } = small();
    await openIt(b);
    const reason = new Error("gone");
    await assert.rejects(b.run(ok, { signal: aborted(reason) }), (x) => x === reason);
    assert.equal(b.stats.rejected, 0);
  });

  it("moves to half-open exactly openMs after opening, at the next call or read (no timer is armed)", async () => {
    const { b, clock, changes } = small();
    await openIt(b);
    assert.equal(clock.pending, 0, "no timer");
    clock.advance(999);
    assert.equal(b.state, "open");
    await assert.rejects(b.run(ok), (e) => e instanceof BreakerOpenError && e.retryAfterMs === 1);
    clock.advance(1);
    assert.equal(b.stats.state, "half-open");
    assert.deepEqual(changes.map((c) => [c.from, c.to, c.at]), [["closed", "open", 0], ["open", "half-open", 1000]]);
  });

  it("openMs 0 lets a probe through at the very next call", async () => {
    const { b } = small({ openMs: 0 });
    await runN(b, 4, fail);
    assert.equal(await b.run(ok), "ok");
    assert.equal(b.state, "closed");
  });

  it("a call that started while closed and ends after the breaker opened changes nothing", async () => {
    const { b, changes } = small({ minimumCalls: 1 });
    const slowOk = pending();
    const slowFail = pending();
    const p1 = capture(b.run(slowOk.fn));
    const p2 = capture(b.run(slowFail.fn));
    await openIt(b);
    slowOk.resolve();
    slowFail.reject();
    assert.deepEqual(await p1, { status: "fulfilled", value: "ok" }, "its caller still gets the outcome");
    assert.equal((await p2).status, "rejected");
    assert.equal(b.state, "open");
    assert.equal(b.stats.successes, 1, "counted");
    assert.equal(b.stats.windowCalls, 0, "not in the window");
    assert.equal(changes.length, 1, "no second opening");
    await assert.rejects(b.run(ok), (e) => e instanceof BreakerOpenError && e.retryAfterMs === 1000, "the open period was not restarted");
  });
});

describe("CircuitBreaker half-open", () => {
  async function halfOpen(more?: CircuitBreakerOptions) {
    const s = small(more);
    await openIt(s.b);
    s.clock.advance(1000);
    assert.equal(s.b.state, "half-open");
    return s;
  }

  it("lets one probe through by default; a concurrent call fails fast with retryAfterMs 0", async () => {
    const { b } = await halfOpen();
    const probe = pending();
    const p = capture(b.run(probe.fn));
    assert.equal(probe.started(), true);
    let called = false;
    await assert.rejects(b.run(() => ((called = true), 1)), (e) => e instanceof BreakerOpenError && e.retryAfterMs === 0);
    assert.equal(called, false);
    assert.equal(b.stats.rejected, 1);
    probe.resolve();
    await p;
  });

  it("a probe that succeeds closes the breaker, with an empty window", async () => {
    const { b, changes, clock } = await halfOpen();
    assert.equal(await b.run(ok), "ok");
    assert.equal(b.state, "closed");
    assert.equal(b.stats.windowCalls, 0, "a fresh window: the probe is not in it");
    assert.deepEqual(changes.map((c) => c.to), ["open", "half-open", "closed"]);
    assert.equal(changes[2]!.at, clock.now());
    await runN(b, 3, fail);
    assert.equal(b.state, "closed", "old failures do not count after closing");
  });

  it("a probe that fails opens the breaker again for another openMs from the failure", async () => {
    const { b, clock, changes } = await halfOpen();
    clock.advance(250);
    await assert.rejects(b.run(fail), /down/);
    assert.equal(b.state, "open");
    await assert.rejects(b.run(ok), (e) => e instanceof BreakerOpenError && e.retryAfterMs === 1000);
    clock.advance(1000);
    assert.equal(b.state, "half-open");
    assert.deepEqual(changes.map((c) => c.to), ["open", "half-open", "open", "half-open"]);
    assert.equal(changes[2]!.at, 1250);
  });

  it("BusyError from a probe reopens it", async () => {
    const { b } = await halfOpen();
    await assert.rejects(b.run(() => Promise.reject(new BusyError())), BusyError);
    assert.equal(b.state, "open");
  });

  it("halfOpenProbes lets that many run at once; all must succeed to close; a success keeps its slot", async () => {
    const { b } = await halfOpen({ halfOpenProbes: 3 });
    const probes = [pending(), pending(), pending()];
    const runs = probes.map((p) => capture(b.run(p.fn)));
    assert.ok(probes.every((p) => p.started()), "all three probes started");
    await assert.rejects(b.run(ok), BreakerOpenError, "a fourth is refused");
    probes[0]!.resolve();
    await runs[0];
    assert.equal(b.state, "half-open");
    await assert.rejects(b.run(ok), BreakerOpenError, "a succeeded probe does not free its slot");
    probes[1]!.resolve();
    await runs[1];
    assert.equal(b.state, "half-open");
    probes[2]!.resolve();
    await runs[2];
    assert.equal(b.state, "closed");
    assert.equal(b.stats.rejected, 2);
  });

  it("with several probes, any failure reopens at once and the others' late outcomes change nothing", async () => {
    const { b, changes } = await halfOpen({ halfOpenProbes: 3 });
    const probes = [pending(), pending(), pending()];
    const runs = probes.map((p) => capture(b.run(p.fn)));
    probes[0]!.resolve();
    probes[1]!.reject();
    await runs[0];
    await runs[1];
    assert.equal(b.state, "open");
    probes[2]!.resolve();
    assert.equal((await runs[2]).status, "fulfilled");
    assert.equal(b.state, "open", "a probe of the previous half-open period cannot close it");
    assert.deepEqual(changes.map((c) => c.to), ["open", "half-open", "open"]);
  });

  it("an abort during a probe rejects at once with signal.reason, frees the slot, and counts neither way", async () => {
    const { b } = await halfOpen();
    const ac = new AbortController();
    const probe = pending();
    const p = b.run(probe.fn, { signal: ac.signal });
    assert.ok(await stillPending(p), "still waiting");
    assert.equal(probe.signal(), ac.signal);
    const reason = new Error("client went away");
    ac.abort(reason);
    assert.deepEqual(await peek(p), { status: "rejected", reason }, "rejected inside abort()");
    assert.equal(b.state, "half-open");
    const s = b.stats;
    assert.deepEqual([s.aborted, s.failures, s.successes, s.running], [1, 4, 0, 0], "the 4 failures are those that opened it");
    // the slot is free: another probe goes through and closes the breaker
    assert.equal(await b.run(ok), "ok");
    assert.equal(b.state, "closed");
    // the aborted probe's late outcome is ignored
    probe.reject();
    await turns(2);
    assert.equal(b.state, "closed");
    assert.equal(b.stats.failures, 4);
  });

  it("an aborted probe's late success does not close the breaker", async () => {
    const { b } = await halfOpen({ halfOpenProbes: 2 });
    const ac = new AbortController();
    const a = pending();
    const pa = capture(b.run(a.fn, { signal: ac.signal }));
    ac.abort();
    await pa;
    assert.equal(await b.run(ok), "ok");
    assert.equal(b.state, "half-open", "one of two probes succeeded");
    a.resolve();
    await turns(2);
    assert.equal(b.state, "half-open");
  });

  it("a call that started while closed and ends during half-open is not a probe", async () => {
    const { b, clock } = small({ minimumCalls: 1 });
    const slow = pending();
    const slowFail = pending();
    const p = capture(b.run(slow.fn));
    const pf = capture(b.run(slowFail.fn));
    await openIt(b);
    clock.advance(1000);
    assert.equal(b.state, "half-open");
    slow.resolve();
    await p;
    assert.equal(b.state, "half-open", "its success did not close it");
    slowFail.reject();
    await pf;
    assert.equal(b.state, "half-open", "its failure did not reopen it");
    const probe = pending();
    const pp = capture(b.run(probe.fn));
    assert.equal(probe.started(), true, "the probe slot was still free");
    probe.reject();
    await pp;
    assert.equal(b.state, "open");
  });
});

describe("CircuitBreaker aborts", () => {
  it("an abort while closed rejects at once with the reason and is not a failure", async () => {
    const { b } = small({ minimumCalls: 1, failureRate: 0.1 });
    const ac = new AbortController();
    const call = pending();
    const p = capture(b.run(call.fn, { signal: ac.signal }));
    assert.equal(b.stats.running, 1);
    const reason = new DOMException("deadline", "TimeoutError");
    ac.abort(reason);
    assert.deepEqual(await p, { status: "rejected", reason });
    call.reject(reason);
    await turns(2);
    assert.equal(b.state, "closed");
    const s = b.stats;
    assert.deepEqual([s.calls, s.aborted, s.failures, s.running, s.windowCalls], [1, 1, 0, 0, 0]);
  });

  it("fn aborting its caller's signal before returning counts as an abort", async () => {
    const { b } = small({ minimumCalls: 1 });
    const ac = new AbortController();
    const reason = new Error("self");
    await assert.rejects(b.run(() => (ac.abort(reason), Promise.reject(new Error("x"))), { signal: ac.signal }), (x) => x === reason);
    assert.equal(b.stats.aborted, 1);
    assert.equal(b.state, "closed");
  });

  it("an error from fn's own timeout (not the caller's signal) is a failure", async () => {
    const { b } = small({ minimumCalls: 1, failureRate: 1 });
    await assert.rejects(b.run(() => Promise.reject(new DOMException("t", "TimeoutError"))));
    assert.equal(b.state, "open");
  });

  it("many calls sharing one long-lived signal leave no abort listener behind", async () => {
    const { b } = small();
    const ac = new AbortController();
    for (let i = 0; i < 50; i++) await b.run(ok, { signal: ac.signal });
    assert.ok(getEventListeners(ac.signal, "abort").length <= 1);
    ac.abort();
    assert.equal(b.stats.aborted, 0);
  });
});

describe("CircuitBreaker state-change events", () => {
  it("listeners see the new state in place, in subscription order; unsubscribe stops them", async () => {
    const { b, clock } = small({ minimumCalls: 1 });
    const log: string[] = [];
    const offA = b.onStateChange((c) => log.push(`a:${c.from}->${c.to}:${b.state}`));
    b.onStateChange((c) => log.push(`b:${c.to}`));
    await runN(b, 1, fail);
    offA();
    offA();
    clock.advance(1000);
    void b.state;
    assert.deepEqual(log, ["a:closed->open:open", "b:open", "b:half-open"]);
  });

  it("the same function subscribed twice is called twice and unsubscribed one at a time", async () => {
    const { b } = small({ minimumCalls: 1 });
    let n = 0;
    const f = (): void => void n++;
    const off1 = b.onStateChange(f);
    b.onStateChange(f);
    off1();
    await runN(b, 1, fail);
    assert.equal(n, 1);
  });

  it("a listener that throws disturbs neither the breaker nor the other listeners; the error surfaces asynchronously", async () => {
    const { b } = small({ minimumCalls: 1 });
    const bug = new Error("listener bug");
    const seen: string[] = [];
    b.onStateChange(() => {
      throw bug;
    });
    b.onStateChange((c) => seen.push(c.to));
    const caught: unknown[] = [];
    process.setUncaughtExceptionCaptureCallback((e) => void caught.push(e));
    try {
      await runN(b, 1, fail);
      assert.equal(b.state, "open");
      assert.deepEqual(seen, ["open"]);
      await turns(2);
    } finally {
      process.setUncaughtExceptionCaptureCallback(null);
    }
    assert.deepEqual(caught, [bug]);
  });

  it("warns once (SLUICE_BREAKER_LISTENERS) past 100 listeners", async () => {
    const { b } = small({ name: "leaky" });
    const w = collectWarnings();
    try {
      const offs: (() => void)[] = [];
      for (let i = 0; i < 150; i++) offs.push(b.onStateChange(() => {}));
      await turns(2);
      const hits = withCode(w.warnings, "SLUICE_BREAKER_LISTENERS");
      assert.equal(hits.length, 1);
      assert.match(hits[0]!.message, /leaky/);
      for (const off of offs) off();
    } finally {
      w.stop();
    }
  });

  it("onStateChange refuses a non-function with TypeError", () => {
    const { b } = small();
    assert.throws(() => b.onStateChange("log" as never), TypeError);
  });
});

describe("CircuitBreaker validation", () => {
  it("refuses bad options with TypeError / RangeError naming the option", () => {
    const clock = new VirtualClock();
    const cases: [unknown, ErrorConstructor, RegExp][] = [
      [{ failureRate: 0 }, RangeError, /options\.failureRate/],
      [{ failureRate: 1.5 }, RangeError, /options\.failureRate/],
      [{ failureRate: NaN }, RangeError, /options\.failureRate/],
      [{ failureRate: "0.5" }, TypeError, /options\.failureRate/],
      [{ minimumCalls: 0 }, RangeError, /options\.minimumCalls/],
      [{ minimumCalls: 2.5 }, RangeError, /options\.minimumCalls/],
      [{ minimumCalls: 101 }, RangeError, /options\.minimumCalls.*options\.window\.size/],
      [{ minimumCalls: 20, window: { kind: "count", size: 10 } }, RangeError, /options\.minimumCalls/],
      [{ window: 100 }, TypeError, /options\.window/],
      [{ window: { kind: "sliding" } }, RangeError, /options\.window\.kind/],
      [{ window: {} }, TypeError, /options\.window\.kind/],
      [{ window: { kind: "count", size: 0 } }, RangeError, /options\.window\.size/],
      [{ window: { kind: "count", size: Infinity } }, RangeError, /options\.window\.size/],
      [{ window: { kind: "time", ms: 0 } }, RangeError, /options\.window\.ms/],
      [{ window: { kind: "time", ms: -1 } }, RangeError, /options\.window\.ms/],
      [{ window: { kind: "time" } }, TypeError, /options\.window\.ms/],
      [{ openMs: -1 }, RangeError, /options\.openMs/],
      [{ openMs: Infinity }, RangeError, /options\.openMs/],
      [{ halfOpenProbes: 0 }, RangeError, /options\.halfOpenProbes/],
      [{ halfOpenProbes: "1" }, TypeError, /options\.halfOpenProbes/],
      [{ isFailure: true }, TypeError, /options\.isFailure/],
      [{ clock: Date }, TypeError, /options\.clock/],
      [{ name: 1 }, TypeError, /options\.name/],
    ];
    for (const [options, type, message] of cases) {
      assert.throws(() => new CircuitBreaker({ clock, ...(options as object) }), (e: unknown) => {
        assert.ok(e instanceof type, `${JSON.stringify(options)}: ${String(e)}`);
        assert.match((e as Error).message, message);
        return true;
      });
    }
    assert.throws(() => new CircuitBreaker("x" as never), TypeError);
  });

  it("run rejects (never throws) a bad fn or options, counting nothing", async () => {
    const { b } = small();
    await assert.rejects(b.run(5 as never), (e: unknown) => e instanceof TypeError && /fn/.test(e.message));
    await assert.rejects(b.run(ok, { signal: "s" as never }), (e: unknown) => e instanceof TypeError && /options\.signal/.test(e.message));
    await assert.rejects(b.run(ok, 3 as never), TypeError);
    const s = b.stats;
    assert.deepEqual([s.calls, s.rejected], [0, 0]);
  });

  it("stats is a fresh snapshot with the documented keys", () => {
    const { b } = small({ name: "db" });
    const a = b.stats;
    assert.notEqual(a, b.stats);
    assert.deepEqual(Object.keys(a).sort(), [
      "aborted", "calls", "failures", "name", "rejected", "running", "state", "successes", "transitions", "windowCalls", "windowFailures",
    ]);
    assert.equal(a.name, "db");
  });
});

describe("CircuitBreaker under random schedules", () => {
  it("keeps calls = successes + failures + aborted + running, never runs fn while open, and never exceeds halfOpenProbes (seeded)", async () => {
    type Op = "start" | "succeed" | "fail" | "abort" | "advance";
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3 }),
        fc.array(fc.constantFrom<Op>("start", "start", "start", "succeed", "fail", "fail", "abort", "advance"), { minLength: 20, maxLength: 100 }),
        async (probes, ops) => {
          const clock = new VirtualClock();
          const b = new CircuitBreaker({ clock, minimumCalls: 2, failureRate: 0.5, window: { kind: "count", size: 4 }, openMs: 50, halfOpenProbes: probes });
          interface Running { call: ReturnType<typeof pending>; ac: AbortController; probe: boolean; out: Promise<unknown> }
          const live: Running[] = []; // at most ops.length entries
          const liveProbes = (): number => live.filter((r) => r.probe).length;
          for (const op of ops) {
            if (op === "start") {
              const before = b.state;
              const call = pending();
              const ac = new AbortController();
              const out = capture(b.run(call.fn, { signal: ac.signal }));
              if (before === "open") assert.equal(call.started(), false, "fn ran while open");
              if (call.started()) live.push({ call, ac, probe: before === "half-open", out });
              else {
                const o = await out;
                assert.ok(o.status === "rejected" && o.reason instanceof BreakerOpenError, "refused calls fail fast");
              }
            } else if (op === "advance") {
              clock.advance(60);
            } else if (live.length > 0) {
              const r = live.shift()!;
              if (op === "succeed") r.call.resolve();
              else if (op === "fail") r.call.reject();
              else r.ac.abort();
              await r.out;
            }
            // probes of the current half-open period never exceed halfOpenProbes
            if (b.state !== "half-open") for (const r of live) r.probe = false;
            assert.ok(liveProbes() <= probes, "never more probes running than halfOpenProbes");
            const s = b.stats;
            assert.equal(s.calls, s.successes + s.failures + s.aborted + s.running);
            assert.equal(s.running, live.length);
          }
          for (const r of live) r.ac.abort();
        },
      ),
      { seed: 777, numRuns: 150 },
    );
  });
});
