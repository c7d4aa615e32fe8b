/**
 * Specification of `WaitGroup` (Go's `sync.WaitGroup`): DESIGN.md "Core API contract" and
 * "Settled details" (counter below zero throws RangeError; a refused add adds nothing).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { WaitGroup } from "../../src/index.js";
import { capture, peek, stillPending } from "./fixtures/probe.js";

describe("WaitGroup", () => {
  it("starts at zero; wait() then resolves inside the call", async () => {
    const wg = new WaitGroup();
    assert.equal(wg.count, 0);
    assert.deepEqual(await peek(wg.wait()), { status: "fulfilled", value: undefined });
  });

  it("add() adds 1 by default, add(n) adds n", () => {
    const wg = new WaitGroup();
    wg.add();
    wg.add(3);
    assert.equal(wg.count, 4);
  });

  it("wait() waits until the counter is back to zero", async () => {
    const wg = new WaitGroup();
    wg.add(2);
    const w = wg.wait();
    wg.done();
    assert.equal(await stillPending(w), true);
    wg.done();
    assert.deepEqual(await peek(w), { status: "fulfilled", value: undefined }, "released inside the done() that reached zero");
  });

  it("releases every waiter when the counter reaches zero", async () => {
    const wg = new WaitGroup();
    wg.add(1);
    const ws = [wg.wait(), wg.wait(), wg.wait()];
    wg.done();
    await Promise.all(ws);
  });

  it("add(-n) that reaches zero releases the waiters too", async () => {
    const wg = new WaitGroup();
    wg.add(3);
    const w = wg.wait();
    wg.add(-3);
    await w;
    assert.equal(wg.count, 0);
  });

  it("can be reused: after reaching zero, a new add makes wait() wait again", async () => {
    const wg = new WaitGroup();
    wg.add(1);
    wg.done();
    await wg.wait();
    wg.add(1);
    const w = wg.wait();
    assert.equal(await stillPending(w), true);
    wg.done();
    await w;
  });

  it("done() below zero throws RangeError and leaves the counter at zero", () => {
    const wg = new WaitGroup();
    assert.throws(() => wg.done(), RangeError);
    assert.equal(wg.count, 0);
  });

  it("an add that would take the counter below zero throws RangeError, adds nothing and releases nobody", async () => {
    const wg = new WaitGroup();
    wg.add(2);
    const w = wg.wait();
    assert.throws(() => wg.add(-3), RangeError);
    assert.equal(wg.count, 2);
    assert.equal(await stillPending(w), true);
    wg.add(-2);
    await w;
  });

  it("refuses a bad n: 1.5, NaN, Infinity -> RangeError; \"1\" -> TypeError; nothing added", () => {
    const wg = new WaitGroup();
    for (const bad of [1.5, NaN, Infinity, -Infinity]) assert.throws(() => wg.add(bad), RangeError);
    assert.throws(() => wg.add("1" as unknown as number), TypeError);
    assert.throws(() => wg.add(null as unknown as number), TypeError);
    assert.equal(wg.count, 0);
  });

  it("an abort while waiting rejects with signal.reason, leaves the counter alone and the other waiters waiting", async () => {
    const wg = new WaitGroup();
    wg.add(1);
    const ac = new AbortController();
    const reason = new Error("stop waiting");
    const mine = capture(wg.wait({ signal: ac.signal }));
    const other = wg.wait();
    ac.abort(reason);
    assert.deepEqual(await mine, { status: "rejected", reason });
    assert.equal(wg.count, 1);
    assert.equal(await stillPending(other), true);
    wg.done();
    await other;
  });

  it("an already-aborted signal rejects with its reason, even when the counter is zero", async () => {
    const wg = new WaitGroup();
    const reason = new Error("already");
    assert.deepEqual(await peek(wg.wait({ signal: AbortSignal.abort(reason) })), { status: "rejected", reason });
  });

  it("wait() with bad options rejects with TypeError (never throws)", async () => {
    const wg = new WaitGroup();
    let p: Promise<void> | undefined;
    assert.doesNotThrow(() => {
      p = wg.wait({ signal: "s" as unknown as AbortSignal });
    });
    await assert.rejects(p!, TypeError);
    await assert.rejects(wg.wait(1 as never), TypeError);
  });

  it("refuses bad constructor options with TypeError", () => {
    assert.throws(() => new WaitGroup(1 as never), TypeError);
    assert.throws(() => new WaitGroup({ name: 1 as unknown as string }), TypeError);
  });
});
