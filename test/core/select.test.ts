/**
 * Specification of `select`, `trySelect` and the `recv`/`send` case builders (DESIGN.md "Core
 * API contract", "Settled details", issue 3 §2).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BusyError, Channel, ChannelClosedError, recv, select, send, trySelect } from "../../src/index.js";
import type { SelectCase } from "../../src/index.js";
import { capture, peek, stillPending } from "./fixtures/probe.js";

function aborted(reason: unknown = new Error("aborted before the call")): AbortSignal {
  const ac = new AbortController();
  ac.abort(reason);
  return ac.signal;
}

function filled<T>(capacity: number, ...values: T[]): Channel<T> {
  const ch = new Channel<T>(capacity);
  for (const v of values) assert.ok(ch.trySend(v));
  return ch;
}

function noWaiters(...chs: Channel<unknown>[]): void {
  for (const ch of chs) {
    assert.equal(ch.stats.parkedSenders, 0, `${ch.stats.name}: parked senders`);
    assert.equal(ch.stats.parkedReceivers, 0, `${ch.stats.name}: parked receivers`);
  }
}

describe("select case builders", () => {
  it("recv(ch) and send(ch, v) accept a Channel or null", () => {
    const ch = new Channel<number>(0);
    assert.doesNotThrow(() => recv(ch));
    assert.doesNotThrow(() => send(ch, 1));
    assert.doesNotThrow(() => recv(null));
    assert.doesNotThrow(() => send(null, 1));
  });

  it("recv/send refuse something that is not a Channel (nor null) with TypeError", () => {
    for (const bad of [undefined, {}, 1, "ch", [], { recv() {}, send() {} }]) {
      assert.throws(() => recv(bad as never), TypeError);
      assert.throws(() => send(bad as never, 1), TypeError);
    }
  });

  it("select rejects (never throws) for cases that are not an array of cases", async () => {
    const ch = new Channel<number>(1);
    for (const bad of [undefined, null, {}, "x", [1], [{}], [recv(ch), { ch }], [recv(ch), undefined]]) {
      let p: Promise<unknown> | undefined;
      assert.doesNotThrow(() => {
        p = select(bad as never);
      });
      await assert.rejects(p!, TypeError);
    }
  });

  it("select with a ready case and a non-case rejects with TypeError and takes nothing", async () => {
    const ch = filled(1, 5);
    await assert.rejects(select([recv(ch), { ch } as unknown as SelectCase]), TypeError);
    assert.equal(ch.length, 1);
  });

  it("select with a bad signal rejects with TypeError and takes nothing", async () => {
    const ch = filled(1, 5);
    await assert.rejects(select([recv(ch)], { signal: 3 as unknown as AbortSignal }), TypeError);
    await assert.rejects(select([recv(ch)], "x" as never), TypeError);
    assert.equal(ch.length, 1);
  });

  it("trySelect throws TypeError for a non-case and takes nothing", () => {
    const ch = filled(1, 5);
    assert.throws(() => trySelect([recv(ch), {} as SelectCase]), TypeError);
    assert.throws(() => trySelect("x" as never), TypeError);
    assert.equal(ch.length, 1);
  });
});

describe("select results", () => {
  it("index is the position of the case that fired; a receive gives value/ok as in RecvResult", async () => {
    const a = new Channel<number>(1);
    const b = filled(1, 42);
    assert.deepEqual(await select([recv(a), recv(b)]), { index: 1, value: 42, ok: true });
  });

  it("a send case that fires gives value undefined and ok true", async () => {
    const a = new Channel<number>(0);
    const b = new Channel<number>(1);
    assert.deepEqual(await select([recv(a), send(b, 7)]), { index: 1, value: undefined, ok: true });
    assert.deepEqual(b.tryRecv(), { value: 7, ok: true });
  });

  it("a receive case on a closed channel fires with value undefined and ok false", async () => {
    const a = new Channel<number>(0);
    a.close();
    assert.deepEqual(await select([recv(a)]), { index: 0, value: undefined, ok: false });
    assert.deepEqual(trySelect([recv(a)]), { index: 0, value: undefined, ok: false });
  });

  it("a receive case drains buffered values of a closed channel before reporting ok false", async () => {
    const a = filled(2, 1, 2);
    a.close();
    assert.deepEqual(await select([recv(a)]), { index: 0, value: 1, ok: true });
    assert.deepEqual(trySelect([recv(a)]), { index: 0, value: 2, ok: true });
    assert.deepEqual(await select([recv(a)]), { index: 0, value: undefined, ok: false });
  });

  it("every result is a fresh object owned by the caller", async () => {
    const a = new Channel<number>(0);
    a.close();
    const r1 = await select([recv(a)]);
    const r2 = await select([recv(a)]);
    const r3 = trySelect([recv(a)]);
    const r4 = trySelect([recv(a)]);
    assert.notEqual(r1, r2);
    assert.notEqual(r3, r4);
    assert.notEqual(r1, r3);
    const b = new Channel<number>(0);
    const p1 = select([recv(b)]);
    const p2 = select([recv(b)]);
    b.close();
    assert.notEqual(await p1, await p2);
  });

  it("a case may be reused across selects", async () => {
    const a = new Channel<number>(2);
    const c = send(a, 1);
    assert.equal((await select([c])).index, 0);
    assert.equal(trySelect([c])?.index, 0);
    assert.deepEqual([a.tryRecv(), a.tryRecv()], [{ value: 1, ok: true }, { value: 1, ok: true }]);
  });
});

describe("select readiness and fast paths", () => {
  it("a ready case settles select inside the call (an already-settled promise)", async () => {
    const a = filled(1, 1);
    const p = select([recv(a)]);
    assert.equal(a.length, 0, "the value was taken inside the call");
    assert.deepEqual(await peek(p), { status: "fulfilled", value: { index: 0, value: 1, ok: true } });
    const b = new Channel<number>(1);
    const q = select([send(b, 2)]);
    assert.equal(b.length, 1);
    assert.deepEqual(await peek(q), { status: "fulfilled", value: { index: 0, value: undefined, ok: true } });
  });

  it("a receive case is ready on a parked sender: it takes the value and completes the sender", async () => {
    const a = new Channel<number>(0);
    const s = a.send(9);
    assert.deepEqual(await select([recv(a)]), { index: 0, value: 9, ok: true });
    assert.deepEqual(await peek(s), { status: "fulfilled", value: undefined });
  });

  it("a send case is ready on a parked receiver: it hands the value over", async () => {
    const a = new Channel<number>(0);
    const r = a.recv();
    assert.deepEqual(trySelect([send(a, 3)]), { index: 0, value: undefined, ok: true });
    assert.deepEqual(await r, { value: 3, ok: true });
  });

  it("cases that are not ready are never chosen while another is ready", async () => {
    const empty = new Channel<number>(1);
    const full = filled(1, 0);
    for (let i = 0; i < 50; i++) {
      assert.ok(full.trySend(i) || full.length === 1);
      const r = await select([recv(empty), send(full, -1), recv(full)]);
      assert.equal(r.index, 2);
    }
    noWaiters(empty, full);
  });

  it("trySelect returns undefined when no case is ready (Go's default) and takes, sends and parks nothing", () => {
    const a = new Channel<number>(0);
    const b = filled(1, 1);
    assert.equal(trySelect([recv(a), send(b, 2), send(a, 3)]), undefined);
    assert.equal(b.length, 1);
    assert.deepEqual(b.tryRecv(), { value: 1, ok: true });
    noWaiters(a, b);
    assert.equal(a.stats.sent, 0);
  });

  it("trySelect performs a ready case", () => {
    const a = filled(1, "x");
    assert.deepEqual(trySelect([recv(a)]), { index: 0, value: "x", ok: true });
    assert.equal(a.length, 0);
  });
});

describe("select: exactly one case fires", () => {
  it("with several ready receive cases, exactly one value is taken", () => {
    for (let i = 0; i < 200; i++) {
      const a = filled(1, "a");
      const b = filled(1, "b");
      const c = filled(1, "c");
      const r = trySelect([recv(a), recv(b), recv(c)])!;
      assert.equal(a.length + b.length + c.length, 2);
      assert.equal([a, b, c][r.index]!.length, 0, "the emptied channel is the one that fired");
      assert.equal(r.value, ["a", "b", "c"][r.index]);
    }
  });

  it("with several ready send cases, exactly one value is delivered", async () => {
    for (let i = 0; i < 200; i++) {
      const a = new Channel<number>(1);
      const b = new Channel<number>(1);
      const r = await select([send(a, 1), send(b, 2)]);
      assert.equal(a.length + b.length, 1);
      assert.equal([a, b][r.index]!.length, 1);
    }
  });

  it("a parked select fires on the first operation that matches; the other cases leave no trace", async () => {
    const a = new Channel<number>(0);
    const b = new Channel<number>(0);
    const p = select([recv(a), recv(b)]);
    assert.equal(a.stats.parkedReceivers, 1);
    assert.equal(b.stats.parkedReceivers, 1);
    assert.equal(b.trySend(2), true);
    noWaiters(a, b);
    assert.equal(a.trySend(1), false, "the case on a no longer takes values");
    assert.deepEqual(await p, { index: 1, value: 2, ok: true });
  });

  it("a parked select's send case that did not fire is never delivered later", async () => {
    const a = new Channel<string>(0);
    const b = new Channel<string>(0);
    const p = select([send(a, "to-a"), send(b, "to-b")]);
    assert.equal(a.stats.parkedSenders, 1);
    assert.equal(b.stats.parkedSenders, 1);
    assert.deepEqual(a.tryRecv(), { value: "to-a", ok: true });
    noWaiters(a, b);
    assert.equal(b.tryRecv(), undefined, "to-b was not delivered");
    assert.deepEqual(await p, { index: 0, value: undefined, ok: true });
  });

  it("a parked select with a send and a receive case completes exactly one of them", async () => {
    const out = new Channel<number>(0);
    const inp = new Channel<number>(0);
    const p = select([send(out, 1), recv(inp)]);
    assert.equal(inp.trySend(5), true);
    assert.deepEqual(await p, { index: 1, value: 5, ok: true });
    assert.equal(out.tryRecv(), undefined);
    noWaiters(out, inp);
  });

  it("a parked select is woken by close of a receive case's channel with { ok: false }", async () => {
    const a = new Channel<number>(0);
    const b = new Channel<number>(0);
    const p = select([recv(a), recv(b)]);
    a.close();
    assert.deepEqual(await p, { index: 0, value: undefined, ok: false });
    noWaiters(a, b);
  });

  it("a parked select is rejected with ChannelClosedError when a send case's channel closes, and its other cases are withdrawn", async () => {
    const a = new Channel<number>(0);
    const b = new Channel<number>(0);
    const p = capture(select([send(a, 1), recv(b)]));
    a.close();
    const o = await p;
    assert.equal(o.status, "rejected");
    assert.ok((o as { reason: unknown }).reason instanceof ChannelClosedError);
    noWaiters(a, b);
    assert.equal(b.trySend(1), false);
  });

  it("a parked select's send case on a full buffer fires when a receive frees a slot, its value moved into the buffer in order", async () => {
    const c = filled(1, 1);
    const other = new Channel<number>(0);
    const p = select([recv(other), send(c, 2)]);
    assert.deepEqual(await c.recv(), { value: 1, ok: true });
    assert.deepEqual(await peek(p), { status: "fulfilled", value: { index: 1, value: undefined, ok: true } });
    assert.equal(c.length, 1);
    assert.deepEqual(c.tryRecv(), { value: 2, ok: true });
    noWaiters(c, other);
  });

  it("duplicate send cases on one channel: one receive takes exactly one value", async () => {
    const c = new Channel<string>(0);
    const p = select([send(c, "x"), send(c, "y")]);
    const r = await c.recv();
    const fired = await p;
    assert.equal(r.value, ["x", "y"][fired.index]);
    noWaiters(c);
    assert.equal(c.tryRecv(), undefined);
  });

  it("close of a channel on which a parked select both sends and receives fires the receive case with { ok: false } (as Go's closechan)", async () => {
    const c = new Channel<number>(0);
    const p = capture(select([send(c, 1), recv(c)]));
    c.close();
    assert.deepEqual(await p, { status: "fulfilled", value: { index: 1, value: undefined, ok: false } });
    noWaiters(c);
  });

  it("duplicate channel in one select: one value fires exactly one case, and no waiter remains (TestSelectDuplicateChannel)", async () => {
    const c = new Channel<number>(0);
    const p = select([recv(c), recv(c), recv(c)]);
    assert.equal(c.stats.parkedReceivers, 3);
    assert.equal(c.trySend(1), true);
    const r = await p;
    assert.equal(r.value, 1);
    assert.ok(r.index >= 0 && r.index < 3);
    noWaiters(c);
    assert.equal(c.trySend(2), false);
  });

  it("a select never matches itself: a send and a receive on the same unbuffered channel park (TestSelfSelect)", async () => {
    const c = new Channel<number>(0);
    const ac = new AbortController();
    const p = select([send(c, 1), recv(c)], { signal: ac.signal });
    assert.equal(await stillPending(p), true);
    ac.abort();
    await assert.rejects(p);
    noWaiters(c);
  });

  it("two selects with a send and a receive on the same channel pair up (TestSelfSelect)", async () => {
    const c = new Channel<number>(0);
    const p1 = select([send(c, 1), recv(c)]);
    const p2 = select([send(c, 2), recv(c)]);
    const [r1, r2] = await Promise.all([p1, p2]);
    assert.notEqual(r1.index, r2.index, "one sent, the other received");
    if (r1.index === 1) assert.deepEqual(r1, { index: 1, value: 2, ok: true }, "the first received the second's value");
    else assert.deepEqual(r2, { index: 1, value: 1, ok: true }, "the second received the first's value");
    noWaiters(c);
  });
});

describe("select: uniform random choice among ready cases", () => {
  // 3 ready cases, 3000 trials: each expected 1000 (sd ~26); the bound [800, 1200] is ~8 sd wide,
  // so a fair implementation fails it with negligible probability, while a fixed or biased order fails.
  function histogram(trials: number, pick: () => number, n: number): number[] {
    const counts = new Array<number>(n).fill(0);
    for (let i = 0; i < trials; i++) counts[pick()]!++;
    return counts;
  }

  it("select picks uniformly among ready receive cases (TestSelectFairness)", () => {
    const chans = [new Channel<number>(1), new Channel<number>(1), new Channel<number>(1)];
    const counts = histogram(3000, () => {
      for (const ch of chans) if (ch.length === 0) ch.trySend(1);
      return trySelect(chans.map((ch) => recv(ch)))!.index;
    }, 3);
    for (const c of counts) assert.ok(c >= 800 && c <= 1200, `counts ${counts.join(",")}`);
  });

  it("select (the promise form) picks uniformly too", async () => {
    const chans = [new Channel<number>(1), new Channel<number>(1), new Channel<number>(1)];
    const counts = [0, 0, 0];
    for (let i = 0; i < 3000; i++) {
      for (const ch of chans) if (ch.length === 0) ch.trySend(1);
      counts[(await select(chans.map((ch) => recv(ch)))).index]!++;
    }
    for (const c of counts) assert.ok(c >= 800 && c <= 1200, `counts ${counts.join(",")}`);
  });

  it("picks uniformly among ready send cases", () => {
    const chans = [new Channel<number>(1), new Channel<number>(1), new Channel<number>(1)];
    const counts = histogram(3000, () => {
      for (const ch of chans) ch.tryRecv();
      return trySelect(chans.map((ch) => send(ch, 1)))!.index;
    }, 3);
    for (const c of counts) assert.ok(c >= 800 && c <= 1200, `counts ${counts.join(",")}`);
  });

  it("a send case on a closed channel counts as ready and stays in the random pick", async () => {
    const closed = new Channel<number>(1);
    closed.close();
    const ready = new Channel<number>(1);
    let fired = 0;
    let rejected = 0;
    for (let i = 0; i < 2000; i++) {
      if (ready.length === 0) ready.trySend(1);
      const o = await capture(select([recv(ready), send(closed, 1)]));
      if (o.status === "fulfilled") {
        assert.equal(o.value.index, 0);
        fired++;
      } else {
        assert.ok((o as { reason: unknown }).reason instanceof ChannelClosedError);
        rejected++;
      }
    }
    assert.ok(fired >= 800 && fired <= 1200, `recv fired ${fired}, rejected ${rejected}`);
    let thrown = 0;
    for (let i = 0; i < 2000; i++) {
      if (ready.length === 0) ready.trySend(1);
      try {
        trySelect([recv(ready), send(closed, 1)]);
      } catch (e) {
        assert.ok(e instanceof ChannelClosedError);
        thrown++;
      }
    }
    assert.ok(thrown >= 800 && thrown <= 1200, `trySelect threw ${thrown} times in 2000`);
  });
});

describe("select: send case on a closed channel", () => {
  it("select rejects with ChannelClosedError at once (the case counts as ready: it does not park)", async () => {
    const closed = new Channel<number>(0, { name: "gone" });
    closed.close();
    const other = new Channel<number>(0);
    const o = await peek(select([recv(other), send(closed, 1)]));
    assert.equal(o.status, "rejected");
    const e = (o as { reason: unknown }).reason;
    assert.ok(e instanceof ChannelClosedError);
    assert.equal(e.code, "ERR_CHANNEL_CLOSED");
    noWaiters(other, closed);
  });

  it("trySelect throws ChannelClosedError", () => {
    const closed = new Channel<number>(3);
    closed.close();
    assert.throws(() => trySelect([send(closed, 1)]), ChannelClosedError);
    assert.throws(() => trySelect([recv(new Channel<number>(0)), send(closed, 1)]), ChannelClosedError);
  });

  it("a rejected select takes nothing from its other cases", async () => {
    const closed = new Channel<number>(1);
    closed.close();
    const empty = new Channel<number>(0);
    await assert.rejects(select([recv(empty), send(closed, 1), recv(null)]), ChannelClosedError);
    noWaiters(empty);
    assert.equal(empty.trySend(1), false);
  });
});

describe("select: abort", () => {
  it("an abort of a parked select rejects with signal.reason and leaves no waiter on any channel", async () => {
    const a = new Channel<number>(0);
    const b = new Channel<number>(0);
    const ac = new AbortController();
    const reason = new Error("cancelled");
    const p = capture(select([recv(a), send(b, 1)], { signal: ac.signal }));
    ac.abort(reason);
    noWaiters(a, b);
    assert.deepEqual(await p, { status: "rejected", reason });
    assert.equal(a.trySend(1), false);
    assert.equal(b.tryRecv(), undefined, "the send case's value is never delivered later");
  });

  it("an already-aborted signal wins over a ready case: nothing is taken or sent", async () => {
    const a = filled(1, 1);
    const b = new Channel<number>(1);
    const reason = new Error("already");
    assert.deepEqual(await peek(select([recv(a), send(b, 2)], { signal: aborted(reason) })), { status: "rejected", reason });
    assert.equal(a.length, 1);
    assert.equal(b.length, 0);
  });

  it("an already-aborted signal wins over a send case on a closed channel", async () => {
    const closed = new Channel<number>(0);
    closed.close();
    const reason = new Error("already");
    assert.deepEqual(await peek(select([send(closed, 1)], { signal: aborted(reason) })), { status: "rejected", reason });
  });

  it("an abort after the select fired changes nothing", async () => {
    const a = new Channel<number>(0);
    const ac = new AbortController();
    const p = select([recv(a)], { signal: ac.signal });
    a.trySend(4);
    ac.abort();
    assert.deepEqual(await p, { index: 0, value: 4, ok: true });
  });
});

describe("select: nil channels and select([])", () => {
  it("select([]) with no signal never settles (Go's select {})", async () => {
    assert.equal(await stillPending(select([]), 10), true);
  });

  it("select([], { signal }) rejects with signal.reason when it aborts", async () => {
    const ac = new AbortController();
    const p = capture(select([], { signal: ac.signal }));
    assert.equal(await stillPending(p), true);
    const reason = new Error("shutdown");
    ac.abort(reason);
    assert.deepEqual(await p, { status: "rejected", reason });
  });

  it("trySelect([]) returns undefined", () => {
    assert.equal(trySelect([]), undefined);
  });

  it("recv(null) and send(null, v) are never ready", async () => {
    const ac = new AbortController();
    const p = capture(select([recv(null), send(null, 1)], { signal: ac.signal }));
    assert.equal(await stillPending(p), true);
    ac.abort();
    assert.equal((await p).status, "rejected");
    assert.equal(trySelect([recv(null), send(null, 1)]), undefined);
  });

  it("a null case is skipped while another case is ready", async () => {
    const a = filled(1, 5);
    assert.deepEqual(await select([recv(null), recv(a), send(null, 1)]), { index: 1, value: 5, ok: true });
  });

  it("a null case is skipped by a parked select, which fires on its other case", async () => {
    const a = new Channel<number>(0);
    const p = select([recv(null), recv(a)]);
    a.trySend(3);
    assert.deepEqual(await p, { index: 1, value: 3, ok: true });
  });
});

describe("select: bounds and stats", () => {
  it("a select that would park past maxParkedSends rejects with BusyError and links nothing", async () => {
    const bounded = new Channel<number>(0, { maxParkedSends: 1 });
    const other = new Channel<number>(0);
    const s = bounded.send(1);
    const o = await peek(select([recv(other), send(bounded, 2)]));
    assert.equal(o.status, "rejected");
    assert.ok((o as { reason: unknown }).reason instanceof BusyError);
    assert.equal(other.stats.parkedReceivers, 0);
    assert.equal(bounded.stats.parkedSenders, 1);
    assert.equal(bounded.stats.rejectedSends, 1);
    assert.deepEqual(await bounded.recv(), { value: 1, ok: true });
    await s;
  });

  it("a select that would park past maxParkedRecvs rejects with BusyError", async () => {
    const bounded = new Channel<number>(0, { maxParkedRecvs: 0 });
    const other = new Channel<number>(0);
    await assert.rejects(select([recv(other), recv(bounded)]), BusyError);
    noWaiters(other, bounded);
    assert.equal(bounded.stats.rejectedRecvs, 1);
  });

  it("duplicate cases on one bounded channel count against its bound", async () => {
    const c = new Channel<number>(0, { maxParkedRecvs: 1 });
    await assert.rejects(select([recv(c), recv(c)]), BusyError);
    noWaiters(c);
  });

  it("a select that does not need to park is not refused by a full parked queue", async () => {
    const c = new Channel<number>(1, { maxParkedSends: 0 });
    assert.deepEqual(await select([send(c, 1)]), { index: 0, value: undefined, ok: true });
  });

  it("a parked select counts as one parked operation per case, and fired cases count as sent/received", async () => {
    const a = new Channel<number>(0);
    const b = new Channel<number>(0);
    const p = select([recv(a), send(b, 1)]);
    assert.equal(a.stats.recvsWaited, 1);
    assert.equal(b.stats.sendsWaited, 1);
    assert.equal(a.stats.parkedReceivers, 1);
    assert.equal(b.stats.parkedSenders, 1);
    assert.deepEqual(await b.recv(), { value: 1, ok: true });
    await p;
    assert.equal(b.stats.sent, 1);
    assert.equal(b.stats.received, 1);
    assert.equal(a.stats.sent, 0);
    noWaiters(a, b);
  });
});
