/**
 * Specification of the signal helpers: `done(signal)` (Go's `ctx.Done()`) and `timeoutSignal`
 * (Go's `context.WithTimeout`), DESIGN.md "Core API contract" and "Settled details".
 */
import { describe, it, afterEach } from "node:test";
import assert from "node:assert/strict";
import { Channel, done, recv, select, timeoutSignal } from "../../src/index.js";
import { VirtualClock, useClock } from "../../src/testing/index.js";
import { capture, peek, stillPending } from "./fixtures/probe.js";

let restore: (() => void) | undefined;
afterEach(() => {
  restore?.();
  restore = undefined;
});

describe("done(signal)", () => {
  it("returns a channel that is open while the signal is not aborted, and never receives a value", async () => {
    const ac = new AbortController();
    const ch = done(ac.signal);
    assert.ok(ch instanceof Channel);
    assert.equal(ch.closed, false);
    assert.equal(ch.tryRecv(), undefined);
    const r = ch.recv({ signal: AbortSignal.abort() }).catch(() => "refused");
    assert.equal(await r, "refused");
    ac.abort();
  });

  it("is closed synchronously inside abort()", () => {
    const ac = new AbortController();
    const ch = done(ac.signal);
    let seenInListener: boolean | undefined;
    ac.signal.addEventListener("abort", () => {
      seenInListener = ch.closed;
    });
    ac.abort();
    assert.equal(ch.closed, true, "closed when abort() returns");
    assert.equal(seenInListener, true, "already closed for listeners added after done()");
  });

  it("is closed already when the signal was aborted before the call", () => {
    const ch = done(AbortSignal.abort());
    assert.equal(ch.closed, true);
    assert.deepEqual(ch.tryRecv(), { value: undefined, ok: false });
  });

  it("the same signal always gives the same channel; different signals, different channels", () => {
    const a = new AbortController();
    const b = new AbortController();
    assert.equal(done(a.signal), done(a.signal));
    assert.notEqual(done(a.signal), done(b.signal));
    const aborted = AbortSignal.abort();
    assert.equal(done(aborted), done(aborted));
    a.abort();
    assert.equal(done(a.signal), done(a.signal));
    assert.equal(done(a.signal).closed, true);
  });

  it("wakes a parked receiver with { ok: false } inside abort()", async () => {
    const ac = new AbortController();
    const r = done(ac.signal).recv();
    assert.equal(await stillPending(r), true);
    ac.abort();
    assert.deepEqual(await peek(r), { status: "fulfilled", value: { value: undefined, ok: false } });
  });

  it("fires a recv(done(signal)) select case when the signal aborts, and the other cases leave no trace", async () => {
    const ac = new AbortController();
    const work = new Channel<number>(0);
    const p = select([recv(work), recv(done(ac.signal))]);
    ac.abort();
    assert.deepEqual(await p, { index: 1, value: undefined, ok: false });
    assert.equal(work.stats.parkedReceivers, 0);
  });

  it("select([recv(done(s))], { signal: s }): when s aborts, the done case fires rather than the select rejecting", async () => {
    const ac = new AbortController();
    const work = new Channel<number>(0);
    const p = capture(select([recv(work), recv(done(ac.signal))], { signal: ac.signal }));
    ac.abort();
    assert.deepEqual(await p, { status: "fulfilled", value: { index: 1, value: undefined, ok: false } });
    assert.equal(work.stats.parkedReceivers, 0);
  });

  it("a for-await loop over done(signal) ends when the signal aborts", async () => {
    const ac = new AbortController();
    const loop = (async () => {
      let n = 0;
      for await (const _ of done(ac.signal)) n++;
      return n;
    })();
    ac.abort();
    assert.equal(await loop, 0);
  });

  it("many done() calls for one signal add one abort listener at most", async () => {
    const ac = new AbortController();
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => {
      warnings.push(w);
    };
    process.on("warning", onWarning);
    try {
      for (let i = 0; i < 50; i++) done(ac.signal);
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(warnings.filter((w) => w.name === "MaxListenersExceededWarning").length, 0);
    } finally {
      process.off("warning", onWarning);
      ac.abort();
    }
  });

  it("refuses something that is not an AbortSignal with TypeError", () => {
    for (const bad of [undefined, null, {}, new AbortController(), "signal"]) {
      assert.throws(() => done(bad as unknown as AbortSignal), TypeError);
    }
  });
});

describe("timeoutSignal(ms, { signal, clock })", () => {
  it("aborts ms from now with a DOMException named TimeoutError", () => {
    const clock = new VirtualClock(0);
    const s = timeoutSignal(100, { clock });
    assert.ok(s instanceof AbortSignal);
    clock.advance(99);
    assert.equal(s.aborted, false);
    clock.advance(1);
    assert.equal(s.aborted, true);
    assert.ok(s.reason instanceof DOMException);
    assert.equal((s.reason as DOMException).name, "TimeoutError");
    assert.equal(clock.pending, 0);
  });

  it("uses the default clock installed by useClock", () => {
    const clock = new VirtualClock(0);
    restore = useClock(clock);
    const s = timeoutSignal(50);
    assert.equal(clock.pending, 1);
    clock.advance(50);
    assert.equal(s.aborted, true);
  });

  it("aborts earlier with the parent's reason, and clears its timer", () => {
    const clock = new VirtualClock(0);
    const parent = new AbortController();
    const s = timeoutSignal(100, { signal: parent.signal, clock });
    const reason = new Error("client went away");
    parent.abort(reason);
    assert.equal(s.aborted, true);
    assert.equal(s.reason, reason);
    assert.equal(clock.pending, 0);
  });

  it("is aborted at once, with the parent's reason and no timer, when the parent already aborted", () => {
    const clock = new VirtualClock(0);
    const reason = new Error("already");
    const s = timeoutSignal(100, { signal: AbortSignal.abort(reason), clock });
    assert.equal(s.aborted, true);
    assert.equal(s.reason, reason);
    assert.equal(clock.pending, 0);
  });

  it("once it timed out, a later parent abort does not change its reason", () => {
    const clock = new VirtualClock(0);
    const parent = new AbortController();
    const s = timeoutSignal(10, { signal: parent.signal, clock });
    clock.advance(10);
    const first = s.reason;
    parent.abort(new Error("later"));
    assert.equal(s.reason, first);
    assert.equal((s.reason as DOMException).name, "TimeoutError");
  });

  it("timeoutSignal(0) aborts on the next clock turn, not inside the call", () => {
    const clock = new VirtualClock(0);
    const s = timeoutSignal(0, { clock });
    assert.equal(s.aborted, false);
    clock.advance(0);
    assert.equal(s.aborted, true);
  });

  it("refuses bad input: ms -1/NaN/Infinity -> RangeError, \"1\" -> TypeError; bad signal, clock or options -> TypeError", () => {
    for (const bad of [-1, NaN, Infinity]) assert.throws(() => timeoutSignal(bad), RangeError);
    assert.throws(() => timeoutSignal("1" as unknown as number), TypeError);
    assert.throws(() => timeoutSignal(1, { signal: {} as AbortSignal }), TypeError);
    assert.throws(() => timeoutSignal(1, { clock: { now: () => 0 } as never }), TypeError);
    assert.throws(() => timeoutSignal(1, 3 as never), TypeError);
  });

  it("with the real clock, aborts with TimeoutError after ms", async () => {
    const s = timeoutSignal(5);
    // The signal's timer is unreferenced; a referenced guard keeps this test's loop alive.
    const guard = setTimeout(() => {}, 10_000);
    try {
      await new Promise<void>((resolve) => s.addEventListener("abort", () => resolve(), { once: true }));
    } finally {
      clearTimeout(guard);
    }
    assert.equal((s.reason as DOMException).name, "TimeoutError");
  });
});
