/**
 * Specification of `ErrGroup` (golang.org/x/sync/errgroup with WithContext and SetLimit):
 * DESIGN.md "Core API contract" and "Settled details".
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ErrGroup } from "../../src/index.js";
import { capture, peek, stillPending, turns } from "./fixtures/probe.js";

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
}

function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe("ErrGroup construction", () => {
  it("starts with a live signal and nothing pending", () => {
    const g = new ErrGroup();
    assert.ok(g.signal instanceof AbortSignal);
    assert.equal(g.signal.aborted, false);
    assert.equal(g.pending, 0);
  });

  for (const bad of [0, -1, 1.5, NaN]) {
    it(`refuses limit ${String(bad)} with RangeError naming options.limit`, () => {
      assert.throws(() => new ErrGroup({ limit: bad }), (e: unknown) => e instanceof RangeError && /limit/.test(e.message));
    });
  }

  it("refuses limit \"2\", a bad signal, or options that are not an object, with TypeError", () => {
    assert.throws(() => new ErrGroup({ limit: "2" as unknown as number }), TypeError);
    assert.throws(() => new ErrGroup({ signal: {} as AbortSignal }), TypeError);
    assert.throws(() => new ErrGroup(3 as never), TypeError);
  });

  it("accepts limit Infinity as no limit", () => {
    const g = new ErrGroup({ limit: Infinity });
    for (let i = 0; i < 5; i++) assert.equal(g.tryGo(() => new Promise(() => {})), true);
    assert.equal(g.pending, 5);
  });
});

describe("ErrGroup go / wait", () => {
  it("without a limit, go() starts the task inside the call, with the group's signal, and resolves at once", async () => {
    const g = new ErrGroup();
    let got: AbortSignal | undefined;
    const p = g.go((signal) => {
      got = signal;
      return Promise.resolve();
    });
    assert.equal(got, g.signal, "started inside go(), given group.signal");
    assert.deepEqual(await peek(p), { status: "fulfilled", value: undefined });
    await g.wait();
  });

  it("wait() resolves once every task has settled, and then aborts group.signal even though all succeeded", async () => {
    const g = new ErrGroup();
    const a = deferred();
    const b = deferred();
    await g.go(() => a.promise);
    await g.go(() => b.promise);
    assert.equal(g.pending, 2);
    const w = g.wait();
    a.resolve();
    assert.equal(await stillPending(w), true);
    assert.equal(g.signal.aborted, false, "not aborted while tasks run");
    b.resolve();
    await w;
    assert.equal(g.pending, 0);
    assert.equal(g.signal.aborted, true, "aborted when wait() returns (as WithContext's cancel)");
  });

  it("wait() on a group with no tasks resolves and aborts the signal", async () => {
    const g = new ErrGroup();
    await g.wait();
    assert.equal(g.signal.aborted, true);
  });

  it("wait() rejects with the first error, after every task settled", async () => {
    const g = new ErrGroup();
    const first = new Error("first");
    const second = new Error("second");
    const t1 = deferred();
    const t2 = deferred();
    const t3 = deferred();
    await g.go(() => t1.promise);
    await g.go(() => t2.promise);
    await g.go(() => t3.promise);
    const w = capture(g.wait());
    t2.reject(first);
    t1.reject(second);
    assert.equal(await stillPending(w), true, "t3 is still running");
    t3.resolve();
    assert.deepEqual(await w, { status: "rejected", reason: first });
  });

  it("group.signal is aborted at the first error, with that error as its reason, while other tasks still run", async () => {
    const g = new ErrGroup();
    const boom = new Error("boom");
    const slow = deferred();
    let seenBySlow: unknown;
    await g.go(async (signal) => {
      await slow.promise;
      seenBySlow = signal.reason;
    });
    await g.go(() => Promise.reject(boom));
    await turns(1);
    assert.equal(g.signal.aborted, true);
    assert.equal(g.signal.reason, boom);
    slow.resolve();
    await assert.rejects(g.wait(), (e) => e === boom);
    assert.equal(seenBySlow, boom);
    assert.equal(g.signal.reason, boom, "wait() keeps the first error as the reason");
  });

  it("a task that throws synchronously counts as a failure", async () => {
    const g = new ErrGroup();
    const boom = new Error("sync throw");
    await g.go(() => {
      throw boom;
    });
    assert.equal(g.signal.reason, boom);
    await assert.rejects(g.wait(), (e) => e === boom);
  });

  it("a task that returns a non-promise value counts as a success", async () => {
    const g = new ErrGroup();
    await g.go(() => 42);
    assert.equal(g.pending, 0);
    await g.wait();
  });

  it("go() with a task that is not a function rejects with TypeError (never throws) and accepts nothing", async () => {
    const g = new ErrGroup();
    let p: Promise<void> | undefined;
    assert.doesNotThrow(() => {
      p = g.go("task" as never);
    });
    await assert.rejects(p!, TypeError);
    await assert.rejects(g.go(() => 1, { signal: 1 as unknown as AbortSignal }), TypeError);
    assert.equal(g.pending, 0);
  });

  it("pending counts tasks accepted and not yet settled, including those waiting for a slot", async () => {
    const g = new ErrGroup({ limit: 1 });
    const a = deferred();
    await g.go(() => a.promise);
    const b = g.go(() => Promise.resolve());
    assert.equal(g.pending, 2);
    a.resolve();
    await b;
    await g.wait();
    assert.equal(g.pending, 0);
  });
});

describe("ErrGroup limit", () => {
  it("never runs more than limit tasks at once, and starts waiting tasks in FIFO order", async () => {
    const g = new ErrGroup({ limit: 2 });
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    const gates = Array.from({ length: 6 }, () => deferred());
    const gos = gates.map((gate, i) =>
      g.go(async () => {
        started.push(i);
        running++;
        peak = Math.max(peak, running);
        await gate.promise;
        running--;
      }),
    );
    await turns(2);
    assert.deepEqual(started, [0, 1]);
    gates[1]!.resolve();
    await turns(2);
    assert.deepEqual(started, [0, 1, 2]);
    for (const gate of gates) gate.resolve();
    await Promise.all(gos);
    await g.wait();
    assert.equal(peak, 2);
    assert.deepEqual(started, [0, 1, 2, 3, 4, 5]);
  });

  it("go() resolves once its task has started, and waits for a slot under the limit", async () => {
    const g = new ErrGroup({ limit: 1 });
    const a = deferred();
    await g.go(() => a.promise);
    let bStarted = false;
    const b = g.go(() => {
      bStarted = true;
      return Promise.resolve();
    });
    assert.equal(await stillPending(b), true);
    assert.equal(bStarted, false);
    a.resolve();
    await b;
    assert.equal(bStarted, true, "started by the time go() resolved");
    await g.wait();
  });

  it("a slot is held until the task's promise settles", async () => {
    const g = new ErrGroup({ limit: 1 });
    const a = deferred();
    await g.go(() => a.promise);
    await turns(3);
    assert.equal(g.tryGo(() => 1), false);
    a.resolve();
    await turns(1);
    assert.equal(g.tryGo(() => 1), true);
    await g.wait();
  });

  it("tryGo() starts the task at once and returns true when a slot is free; false otherwise, the task never run", async () => {
    const g = new ErrGroup({ limit: 1 });
    const a = deferred();
    let ran = 0;
    assert.equal(g.tryGo(() => {
      ran++;
      return a.promise;
    }), true);
    assert.equal(ran, 1);
    assert.equal(g.tryGo(() => {
      ran++;
    }), false);
    assert.equal(g.pending, 1);
    a.resolve();
    await g.wait();
    assert.equal(ran, 1);
  });

  it("tryGo() without a limit always starts the task", async () => {
    const g = new ErrGroup();
    let ran = 0;
    for (let i = 0; i < 3; i++) assert.equal(g.tryGo(() => ran++), true);
    assert.equal(ran, 3);
    await g.wait();
  });

  it("tryGo() does not jump ahead of go() calls waiting for a slot", async () => {
    const g = new ErrGroup({ limit: 1 });
    const a = deferred();
    await g.go(() => a.promise);
    const order: string[] = [];
    const waiting = g.go(() => {
      order.push("waiting");
    });
    a.resolve();
    await waiting;
    assert.equal(g.tryGo(() => {
      order.push("try");
    }), true);
    await g.wait();
    assert.deepEqual(order, ["waiting", "try"]);
  });

  it("tryGo() with a task that is not a function throws TypeError", () => {
    assert.throws(() => new ErrGroup().tryGo(5 as never), TypeError);
  });

  it("wait() also waits for tasks still waiting for a slot", async () => {
    const g = new ErrGroup({ limit: 1 });
    const a = deferred();
    const b = deferred();
    await g.go(() => a.promise);
    const gb = g.go(() => b.promise);
    const w = g.wait();
    a.resolve();
    await gb;
    assert.equal(await stillPending(w), true, "b was waiting for a slot when wait() was called; it runs now");
    b.resolve();
    await w;
  });

  it("go({ signal }): an abort while waiting for a slot rejects with signal.reason, and the task never runs", async () => {
    const g = new ErrGroup({ limit: 1 });
    const a = deferred();
    await g.go(() => a.promise);
    const ac = new AbortController();
    const reason = new Error("no longer needed");
    let ran = false;
    const p = capture(g.go(() => {
      ran = true;
    }, { signal: ac.signal }));
    assert.equal(g.pending, 2);
    ac.abort(reason);
    assert.deepEqual(await p, { status: "rejected", reason });
    assert.equal(g.pending, 1, "the withdrawn task is no longer pending");
    a.resolve();
    await g.wait();
    assert.equal(ran, false);
  });

  it("go({ signal }) with an already-aborted signal rejects with its reason and runs nothing, even with a slot free", async () => {
    const g = new ErrGroup();
    const reason = new Error("already");
    let ran = false;
    assert.deepEqual(await peek(g.go(() => {
      ran = true;
    }, { signal: AbortSignal.abort(reason) })), { status: "rejected", reason });
    assert.equal(ran, false);
    assert.equal(g.pending, 0);
  });

  it("once the group failed, tasks still waiting for a slot run when their turn comes, with the aborted signal", async () => {
    const g = new ErrGroup({ limit: 1 });
    const boom = new Error("boom");
    const a = deferred();
    await g.go(() => a.promise);
    let seen: AbortSignal | undefined;
    const b = g.go((signal) => {
      seen = signal;
    });
    a.reject(boom);
    await b;
    assert.ok(seen !== undefined, "the waiting task ran");
    assert.equal(seen.aborted, true);
    assert.equal(seen.reason, boom);
    await assert.rejects(g.wait(), (e) => e === boom);
  });
});

describe("ErrGroup parent signal", () => {
  it("an abort of the parent signal aborts group.signal with the parent's reason", async () => {
    const parent = new AbortController();
    const g = new ErrGroup({ signal: parent.signal });
    let seen: unknown;
    const gate = deferred();
    await g.go(async (signal) => {
      await gate.promise;
      seen = signal.reason;
    });
    const reason = new Error("request cancelled");
    parent.abort(reason);
    assert.equal(g.signal.aborted, true);
    assert.equal(g.signal.reason, reason);
    gate.resolve();
    await g.wait();
    assert.equal(seen, reason);
  });

  it("a parent aborted before construction gives an already-aborted group.signal", () => {
    const reason = new Error("gone");
    const g = new ErrGroup({ signal: AbortSignal.abort(reason) });
    assert.equal(g.signal.aborted, true);
    assert.equal(g.signal.reason, reason);
  });

  it("wait() with no task failure resolves even if the parent aborted (the tasks decide what an abort means)", async () => {
    const parent = new AbortController();
    const g = new ErrGroup({ signal: parent.signal });
    await g.go(() => 1);
    parent.abort();
    await g.wait();
  });

  it("a parent abort after wait() returned does not change group.signal's reason", async () => {
    const parent = new AbortController();
    const g = new ErrGroup({ signal: parent.signal });
    await g.wait();
    const reason = g.signal.reason;
    parent.abort(new Error("later"));
    assert.equal(g.signal.reason, reason);
  });
});

describe("ErrGroup wait({ signal })", () => {
  it("an already-aborted signal rejects with its reason, even with nothing pending, and does not abort group.signal", async () => {
    const g = new ErrGroup();
    const reason = new Error("already");
    assert.deepEqual(await capture(g.wait({ signal: AbortSignal.abort(reason) })), { status: "rejected", reason });
    assert.equal(g.signal.aborted, false);
  });

  it("an abort stops the wait with signal.reason; the tasks go on and the group's signal is not aborted", async () => {
    const g = new ErrGroup();
    const a = deferred();
    await g.go(() => a.promise);
    const ac = new AbortController();
    const reason = new Error("stop waiting");
    const w = capture(g.wait({ signal: ac.signal }));
    ac.abort(reason);
    assert.deepEqual(await w, { status: "rejected", reason });
    assert.equal(g.signal.aborted, false);
    assert.equal(g.pending, 1);
    a.resolve();
    await g.wait();
  });
});
