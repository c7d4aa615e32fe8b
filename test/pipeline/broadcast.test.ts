import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { BusyError, ChannelClosedError, parkedWork } from "../../src/index.js";
import { observed } from "../../src/core/registry.js";
import { Broadcast, LaggedError } from "../../src/pipeline/index.js";

const T = { timeout: 20_000 };

async function settle(n = 3): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r));
}

async function take<T>(it: AsyncIterator<T>, n: number): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i++) {
    const r = await it.next();
    if (r.done === true) break;
    out.push(r.value);
  }
  return out;
}

describe("Broadcast", () => {
  test("every subscriber gets every value published after it subscribed, in order", T, async () => {
    const b = new Broadcast<number>();
    const s1 = b.subscribe({ buffer: 100 });
    await b.publish(1);
    const s2 = b.subscribe({ buffer: 100 });
    for (const x of [2, 3, 4]) await b.publish(x);
    b.close();
    const all = async (s: AsyncIterable<number>): Promise<number[]> => {
      const out: number[] = [];
      for await (const v of s) out.push(v);
      return out;
    };
    assert.deepEqual(await all(s1), [1, 2, 3, 4]);
    assert.deepEqual(await all(s2), [2, 3, 4]);
    assert.equal(b.size, 0);
    assert.equal(s1.stats.received, 4);
  });

  test('"block": the publisher waits for the slowest block subscriber, and only for it', T, async () => {
    const b = new Broadcast<number>();
    const slow = b.subscribe({ buffer: 1, policy: "block" });
    const fast = b.subscribe({ buffer: 1, policy: "drop-newest" });
    await b.publish(1);
    let done = false;
    const p = b.publish(2).then(() => (done = true));
    await settle();
    assert.equal(done, false, "waits for the full block subscriber");
    const it = slow[Symbol.asyncIterator]();
    assert.deepEqual(await take(it, 1), [1]);
    await p;
    assert.equal(done, true);
    assert.deepEqual(fast.stats, { policy: "drop-newest", buffer: 1, received: 0, dropped: 1, length: 1, lagged: false });
    assert.deepEqual(await take(it, 1), [2]);
  });

  test('"drop-oldest" keeps the newest values; "drop-newest" keeps the oldest', T, async () => {
    const b = new Broadcast<number>();
    const oldest = b.subscribe({ buffer: 3, policy: "drop-oldest" });
    const newest = b.subscribe({ buffer: 3, policy: "drop-newest" });
    for (let i = 0; i < 10; i++) await b.publish(i);
    b.close();
    assert.deepEqual(await take(oldest[Symbol.asyncIterator](), 10), [7, 8, 9]);
    assert.deepEqual(await take(newest[Symbol.asyncIterator](), 10), [0, 1, 2]);
    assert.equal(oldest.stats.dropped, 7);
    assert.equal(newest.stats.dropped, 7);
    assert.equal(b.stats.dropped, 14);
  });

  test('"disconnect": a subscriber that falls behind ends with LaggedError counting what it missed', T, async () => {
    const b = new Broadcast<number>();
    const sub = b.subscribe({ buffer: 2, policy: "disconnect" });
    for (let i = 0; i < 3; i++) await b.publish(i);
    assert.equal(b.size, 0, "it left the broadcast at once");
    const it = sub[Symbol.asyncIterator]();
    await assert.rejects(it.next(), (e) => e instanceof LaggedError && e.code === "ERR_LAGGED" && e.missed === 3);
    assert.deepEqual(await it.next(), { value: undefined, done: true });
    assert.equal(b.stats.disconnected, 1);
    // A subscriber parked in next() learns at once.
    const sub2 = b.subscribe({ buffer: 0, policy: "disconnect" });
    const it2 = sub2[Symbol.asyncIterator]();
    const pending = it2.next();
    await b.publish(10); // handed to the parked receiver
    await b.publish(11); // nobody waits: it is disconnected
    assert.deepEqual(await pending, { value: 10, done: false });
    await assert.rejects(it2.next(), (e) => e instanceof LaggedError && e.missed === 1);
  });

  test("maxSubscribers: past it subscribe throws BusyError; unsubscribe and break free a place", T, async () => {
    const b = new Broadcast<number>({ maxSubscribers: 2 });
    const a = b.subscribe();
    const c = b.subscribe();
    assert.throws(() => b.subscribe(), (e) => e instanceof BusyError && e.code === "ERR_BUSY");
    a.unsubscribe();
    a.unsubscribe();
    const d = b.subscribe();
    void b.publish(1);
    for await (const _ of c) break;
    assert.equal(b.size, 1);
    d.unsubscribe();
    assert.equal(b.size, 0);
  });

  test("unsubscribe while a publish waits on that subscriber lets the publish go on", T, async () => {
    const b = new Broadcast<number>();
    const s = b.subscribe({ buffer: 0 });
    const p = b.publish(1);
    s.unsubscribe();
    await p;
    assert.deepEqual(parkedWork(), []);
  });

  test("an aborted publish rejects with the reason and leaves nothing parked; a closed broadcast refuses", T, async () => {
    const b = new Broadcast<number>();
    b.subscribe({ buffer: 0 });
    const ac = new AbortController();
    const p = b.publish(1, { signal: ac.signal });
    const reason = new Error("late");
    ac.abort(reason);
    await assert.rejects(p, (e) => e === reason);
    assert.deepEqual(parkedWork(), []);
    await assert.rejects(b.publish(2, { signal: AbortSignal.abort(reason) }), (e) => e === reason);
    const waiting = b.publish(3);
    b.close();
    await assert.rejects(waiting, (e) => e instanceof ChannelClosedError && /^publish on closed broadcast/.test(e.message), "the error names the broadcast, not a subscriber's channel");
    await assert.rejects(b.publish(4), (e) => e instanceof ChannelClosedError && /^publish on closed broadcast/.test(e.message));
    assert.throws(() => b.subscribe(), ChannelClosedError);
  });

  test("subscribe({ signal }): an abort unsubscribes at once, a waiting iteration rejects with the reason, then ends", T, async () => {
    const b = new Broadcast<number>({ maxSubscribers: 1 });
    const ac = new AbortController();
    const reason = new Error("request ended");
    const sub = b.subscribe({ buffer: 0, signal: ac.signal });
    const it = sub[Symbol.asyncIterator]();
    const first = it.next();
    await b.publish(1);
    assert.deepEqual(await first, { value: 1, done: false });
    const waiting = it.next();
    const blocked = b.publish(2); // a "block" subscriber without room: the publish waits for it
    ac.abort(reason);
    await assert.rejects(waiting, (e) => e === reason);
    await blocked; // the subscriber left: the publish goes on
    assert.deepEqual(await it.next(), { value: undefined, done: true });
    assert.equal(b.stats.subscribers, 0);
    b.subscribe().unsubscribe(); // its place is free again (maxSubscribers 1)
    // Not iterated: the abort still takes it out of the broadcast.
    const ac2 = new AbortController();
    b.subscribe({ signal: ac2.signal });
    assert.equal(b.stats.subscribers, 1);
    ac2.abort();
    assert.equal(b.stats.subscribers, 0);
    assert.throws(() => b.subscribe({ signal: AbortSignal.abort(reason) }), (e) => e === reason);
    assert.throws(() => b.subscribe({ signal: {} as never }), /options.signal must be an AbortSignal/);
    assert.equal(b.stats.subscribers, 0);
    assert.deepEqual(parkedWork(), []);
  });

  test("close lets each subscriber drain what it holds, then end", T, async () => {
    const b = new Broadcast<string>();
    const s = b.subscribe({ buffer: 4 });
    const it = s[Symbol.asyncIterator]();
    await b.publish("a");
    await b.publish("b");
    b.close();
    b.close();
    assert.deepEqual(await take(it, 5), ["a", "b"]);
  });

  test("bad options are refused; a named broadcast is registered", () => {
    assert.throws(() => new Broadcast({ maxSubscribers: 0 }), RangeError);
    const b = new Broadcast<number>({ name: "prices" });
    assert.throws(() => b.subscribe({ policy: "nope" as never }), /options.policy must be one of/);
    assert.throws(() => b.subscribe({ policy: "drop-oldest", buffer: 0 }), /options.buffer must be a positive safe integer, got 0/);
    assert.throws(() => b.subscribe({ buffer: -1 }), RangeError);
    const mine = [...observed()].filter((o) => o.kind === "broadcast" && o.boundary === b);
    assert.equal(mine.length, 1);
    assert.equal((mine[0]!.boundary.stats as { subscribers: number }).subscribers, 0);
  });

  test("warns once past warnSubscribers", T, async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on("warning", onWarning);
    try {
      const b = new Broadcast<number>({ warnSubscribers: 2 });
      for (let i = 0; i < 4; i++) b.subscribe();
      await settle();
      const mine = warnings.filter((w) => (w as Error & { code?: string }).code === "SLUICE_SUBSCRIBERS");
      assert.equal(mine.length, 1);
    } finally {
      process.off("warning", onWarning);
    }
  });
});
