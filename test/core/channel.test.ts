/**
 * Specification of `Channel` (DESIGN.md "Core API contract", its "Settled details", issue 3 §2).
 * Each test is named for the sentence or behaviour it pins.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { BusyError, Channel, ChannelClosedError } from "../../src/index.js";
import { capture, collectWarnings, peek, stillPending, turns, withCode } from "./fixtures/probe.js";

const STAT_KEYS = [
  "name", "capacity", "length", "closed", "sent", "received", "sendsWaited", "recvsWaited",
  "parkedSenders", "parkedReceivers", "peakParkedSenders", "peakParkedReceivers",
  "rejectedSends", "rejectedRecvs",
].sort();

function aborted(reason: unknown = new Error("aborted before the call")): AbortSignal {
  const ac = new AbortController();
  ac.abort(reason);
  return ac.signal;
}

describe("Channel construction", () => {
  it("defaults to capacity 0 (unbuffered), empty and open", () => {
    const ch = new Channel<number>();
    assert.equal(ch.capacity, 0);
    assert.equal(ch.length, 0);
    assert.equal(ch.closed, false);
  });

  it("reports the capacity it was given", () => {
    assert.equal(new Channel(1).capacity, 1);
    assert.equal(new Channel(64).capacity, 64);
  });

  it("accepts capacity -0 (a non-negative safe integer) as an unbuffered channel", () => {
    const ch = new Channel<number>(-0);
    assert.ok(ch.capacity === 0);
    assert.equal(ch.trySend(1), false);
  });

  for (const bad of [-1, 1.5, NaN, -Infinity, 2 ** 53, Number.MAX_VALUE, -0.5]) {
    it(`refuses capacity ${String(bad)} with RangeError at once`, () => {
      assert.throws(() => new Channel(bad), RangeError);
    });
  }

  it("refuses capacity Infinity with RangeError: sluice offers no unbounded channel", () => {
    assert.throws(() => new Channel(Infinity), RangeError);
  });

  for (const [label, bad] of [["\"3\"", "3"], ["null", null], ["3n", 3n], ["an object", {}], ["true", true]] as const) {
    it(`refuses capacity ${label} (not a number) with TypeError at once`, () => {
      assert.throws(() => new Channel(bad as unknown as number), TypeError);
    });
  }

  it("names the capacity argument in its error message", () => {
    assert.throws(() => new Channel(-1), /capacity/);
    assert.throws(() => new Channel("3" as unknown as number), /capacity/);
  });

  it("refuses options that are not an object with TypeError", () => {
    assert.throws(() => new Channel(0, 5 as never), TypeError);
    assert.throws(() => new Channel(0, "x" as never), TypeError);
    assert.throws(() => new Channel(0, null as never), TypeError);
  });

  it("refuses a non-string name with TypeError naming options.name", () => {
    assert.throws(() => new Channel(0, { name: 7 as unknown as string }), (e: unknown) =>
      e instanceof TypeError && /options\.name/.test(e.message));
  });

  for (const key of ["maxParkedSends", "warnParkedSends", "maxParkedRecvs", "warnParkedRecvs"] as const) {
    it(`checks options.${key}: -1, 1.5, NaN -> RangeError; "1" -> TypeError; each naming it`, () => {
      for (const bad of [-1, 1.5, NaN]) {
        assert.throws(() => new Channel(0, { [key]: bad }), (e: unknown) =>
          e instanceof RangeError && e.message.includes(key), `${key}: ${bad}`);
      }
      assert.throws(() => new Channel(0, { [key]: "1" as unknown as number }), (e: unknown) =>
        e instanceof TypeError && e.message.includes(key));
    });

    it(`accepts options.${key} = Infinity and 0`, () => {
      assert.doesNotThrow(() => new Channel(0, { [key]: Infinity }));
      assert.doesNotThrow(() => new Channel(0, { [key]: 0 }));
    });
  }
});

describe("Channel stats", () => {
  it("has exactly the documented fields", () => {
    const ch = new Channel<number>(3, { name: "orders" });
    assert.deepEqual(Object.keys(ch.stats).sort(), STAT_KEYS);
    assert.deepEqual(ch.stats, {
      name: "orders", capacity: 3, length: 0, closed: false, sent: 0, received: 0,
      sendsWaited: 0, recvsWaited: 0, parkedSenders: 0, parkedReceivers: 0,
      peakParkedSenders: 0, peakParkedReceivers: 0, rejectedSends: 0, rejectedRecvs: 0,
    });
  });

  it("gives a default name (a string) when none is given", () => {
    const ch = new Channel<number>();
    assert.equal(typeof ch.stats.name, "string");
    assert.ok(ch.stats.name.length > 0);
  });

  it("is a fresh snapshot: a new object on each read, not updated afterwards", () => {
    const ch = new Channel<number>(2);
    const before = ch.stats;
    assert.notEqual(ch.stats, before);
    assert.ok(ch.trySend(1));
    assert.equal(before.length, 0);
    assert.equal(before.sent, 0);
    assert.equal(ch.stats.length, 1);
    assert.equal(ch.stats.sent, 1);
  });

  it("counts sends and receives that had to wait, parked operations now and their high-water marks", async () => {
    const ch = new Channel<number>(0);
    const senders = [ch.send(1), ch.send(2), ch.send(3)];
    assert.equal(ch.stats.parkedSenders, 3);
    assert.equal(ch.stats.sendsWaited, 3);
    assert.equal(ch.stats.peakParkedSenders, 3);
    for (let i = 0; i < 3; i++) await ch.recv();
    await Promise.all(senders);
    let s = ch.stats;
    assert.equal(s.parkedSenders, 0);
    assert.equal(s.peakParkedSenders, 3, "the high-water mark stays");
    assert.equal(s.sent, 3);
    assert.equal(s.received, 3);
    assert.equal(s.recvsWaited, 0, "receiving from parked senders did not wait");

    const receivers = [ch.recv(), ch.recv()];
    assert.equal(ch.stats.parkedReceivers, 2);
    assert.ok(ch.trySend(10));
    assert.ok(ch.trySend(11));
    await Promise.all(receivers);
    s = ch.stats;
    assert.equal(s.recvsWaited, 2);
    assert.equal(s.parkedReceivers, 0);
    assert.equal(s.peakParkedReceivers, 2);
    assert.equal(s.sendsWaited, 3, "sends to parked receivers did not wait");
    assert.equal(s.sent, 5);
    assert.equal(s.received, 5);
  });

  it("counts a send withdrawn by its signal as waited but not sent", async () => {
    const ch = new Channel<number>(0);
    const ac = new AbortController();
    const p = capture(ch.send(1, { signal: ac.signal }));
    ac.abort();
    await p;
    assert.equal(ch.stats.sendsWaited, 1);
    assert.equal(ch.stats.sent, 0);
    assert.equal(ch.stats.parkedSenders, 0);
  });

  it("keeps sent - received === length at every step of random schedules (seeded)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4 }),
        fc.array(fc.constantFrom("trySend", "tryRecv", "send", "recv", "close"), { maxLength: 60 }),
        (capacity, ops) => {
          const ch = new Channel<number>(capacity);
          const pending: Promise<unknown>[] = [];
          const check = (): void => {
            const s = ch.stats;
            assert.equal(s.sent - s.received, s.length);
            assert.ok(s.length >= 0 && s.length <= capacity);
            assert.equal(s.length, ch.length);
          };
          let n = 0;
          for (const op of ops) {
            if (op === "close") {
              if (!ch.closed) ch.close();
            } else if (op === "trySend") {
              if (!ch.closed) ch.trySend(n++);
            } else if (op === "tryRecv") {
              ch.tryRecv();
            } else if (op === "send") {
              pending.push(capture(ch.send(n++)));
            } else {
              pending.push(capture(ch.recv()));
            }
            check();
          }
          if (!ch.closed) ch.close();
          check();
          assert.equal(ch.stats.parkedSenders, 0);
          assert.equal(ch.stats.parkedReceivers, 0);
        },
      ),
      { seed: 20240601, numRuns: 300 },
    );
  });
});

describe("Channel send and receive", () => {
  it("a receiver waiting when a value is sent gets it directly (nothing is buffered)", async () => {
    const ch = new Channel<string>(4);
    const r = ch.recv();
    assert.equal(ch.stats.parkedReceivers, 1);
    const s = ch.send("hi");
    assert.equal(ch.length, 0, "the value went to the receiver, not into the buffer");
    assert.deepEqual(await peek(s), { status: "fulfilled", value: undefined });
    assert.deepEqual(await r, { value: "hi", ok: true });
    assert.equal(ch.stats.received, 1);
  });

  it("serves parked receivers in FIFO order", async () => {
    const ch = new Channel<number>(0);
    const rs = [ch.recv(), ch.recv(), ch.recv()];
    assert.ok(ch.trySend(1));
    assert.ok(ch.trySend(2));
    assert.ok(ch.trySend(3));
    assert.deepEqual(await Promise.all(rs), [
      { value: 1, ok: true }, { value: 2, ok: true }, { value: 3, ok: true },
    ]);
  });

  it("serves parked senders in FIFO order (unbuffered)", async () => {
    const ch = new Channel<number>(0);
    const order: number[] = [];
    const ss = [1, 2, 3].map((v) => ch.send(v).then(() => order.push(v)));
    const got = [await ch.recv(), await ch.recv(), await ch.recv()].map((r) => r.value);
    await Promise.all(ss);
    assert.deepEqual(got, [1, 2, 3]);
    assert.deepEqual(order, [1, 2, 3]);
  });

  it("keeps FIFO across the buffer and the parked senders; a receive moves the oldest parked value into the freed slot", async () => {
    const ch = new Channel<number>(2);
    await ch.send(1);
    await ch.send(2);
    const s3 = ch.send(3);
    const s4 = ch.send(4);
    assert.equal(ch.stats.parkedSenders, 2);
    assert.deepEqual(await ch.recv(), { value: 1, ok: true });
    assert.equal(ch.length, 2, "sender 3's value moved into the buffer");
    assert.equal(ch.stats.parkedSenders, 1);
    assert.deepEqual(await peek(s3), { status: "fulfilled", value: undefined });
    assert.equal(await stillPending(s4), true);
    const rest = [await ch.recv(), await ch.recv(), await ch.recv()].map((r) => r.value);
    assert.deepEqual(rest, [2, 3, 4]);
    await s4;
  });

  it("an unbuffered send waits for a receiver", async () => {
    const ch = new Channel<number>(0);
    const s = ch.send(1);
    assert.equal(await stillPending(s), true);
    assert.deepEqual(await ch.recv(), { value: 1, ok: true });
    await s;
  });

  it("a buffered send waits only while the buffer is full", async () => {
    const ch = new Channel<number>(1);
    await ch.send(1);
    const s = ch.send(2);
    assert.equal(await stillPending(s), true);
    await ch.recv();
    await s;
    assert.equal(ch.length, 1);
  });

  it("a receive waits while the channel is empty and open", async () => {
    const ch = new Channel<number>(3);
    const r = ch.recv();
    assert.equal(await stillPending(r), true);
    ch.trySend(9);
    assert.deepEqual(await r, { value: 9, ok: true });
  });

  it("carries undefined and null as values, distinct from a closed channel", async () => {
    const ch = new Channel<undefined | null>(2);
    assert.ok(ch.trySend(undefined));
    assert.ok(ch.trySend(null));
    assert.deepEqual(ch.tryRecv(), { value: undefined, ok: true });
    assert.deepEqual(await ch.recv(), { value: null, ok: true });
    const u = new Channel<undefined>(0);
    const r = u.recv();
    await u.send(undefined);
    assert.deepEqual(await r, { value: undefined, ok: true });
  });

  it("returns a fresh result object from every receive", async () => {
    const ch = new Channel<number>(2);
    ch.close();
    const a = await ch.recv();
    const b = await ch.recv();
    assert.notEqual(a, b);
    const c = ch.tryRecv();
    const d = ch.tryRecv();
    assert.notEqual(c, d);
    assert.deepEqual(c, { value: undefined, ok: false });
    const e = new Channel<number>(2);
    e.trySend(1);
    e.trySend(1);
    const x = await e.recv();
    const y = e.tryRecv();
    assert.notEqual(x, y);
    (x as { value: number }).value = 99;
    assert.deepEqual(y, { value: 1, ok: true }, "mutating one result does not touch another");
  });
});

describe("Channel fast paths settle inside the call", () => {
  it("a send into a buffer with room returns an already-resolved promise, the value already buffered", async () => {
    const ch = new Channel<number>(1);
    const p = ch.send(1);
    assert.equal(ch.length, 1);
    assert.deepEqual(await peek(p), { status: "fulfilled", value: undefined });
  });

  it("a send to a parked receiver returns an already-resolved promise", async () => {
    const ch = new Channel<number>(0);
    const r = ch.recv();
    const p = ch.send(5);
    assert.deepEqual(await peek(p), { status: "fulfilled", value: undefined });
    assert.deepEqual(await r, { value: 5, ok: true });
  });

  it("a receive from a non-empty buffer returns an already-resolved promise", async () => {
    const ch = new Channel<number>(1);
    ch.trySend(7);
    const p = ch.recv();
    assert.equal(ch.length, 0, "the value was taken inside the call");
    assert.deepEqual(await peek(p), { status: "fulfilled", value: { value: 7, ok: true } });
  });

  it("a receive from a parked sender returns an already-resolved promise and completes that sender", async () => {
    const ch = new Channel<number>(0);
    const s = ch.send(8);
    const p = ch.recv();
    assert.deepEqual(await peek(p), { status: "fulfilled", value: { value: 8, ok: true } });
    assert.deepEqual(await peek(s), { status: "fulfilled", value: undefined });
  });

  it("a receive on a closed, drained channel returns an already-resolved { ok: false }", async () => {
    const ch = new Channel<number>(0);
    ch.close();
    assert.deepEqual(await peek(ch.recv()), { status: "fulfilled", value: { value: undefined, ok: false } });
  });

  it("a send that must wait is not settled", async () => {
    const ch = new Channel<number>(0);
    const ac = new AbortController();
    const p = ch.send(1, { signal: ac.signal });
    assert.deepEqual(await peek(p), { status: "pending" });
    ac.abort();
    await assert.rejects(p);
  });
});

describe("Channel trySend / tryRecv", () => {
  it("trySend returns true when it buffers the value", () => {
    const ch = new Channel<number>(1);
    assert.equal(ch.trySend(1), true);
    assert.equal(ch.length, 1);
  });

  it("trySend returns true when it hands the value to a parked receiver", async () => {
    const ch = new Channel<number>(0);
    const r = ch.recv();
    assert.equal(ch.trySend(3), true);
    assert.deepEqual(await r, { value: 3, ok: true });
  });

  it("trySend returns false when it would wait, and the value is not taken", async () => {
    const full = new Channel<number>(1);
    full.trySend(1);
    assert.equal(full.trySend(2), false);
    assert.equal(full.length, 1);
    assert.deepEqual(await full.recv(), { value: 1, ok: true });
    assert.equal(full.tryRecv(), undefined, "the refused value never shows up");
    const unbuffered = new Channel<number>(0);
    assert.equal(unbuffered.trySend(1), false);
    assert.equal(unbuffered.tryRecv(), undefined);
    assert.equal(unbuffered.stats.sent, 0);
  });

  it("trySend that returns false is not counted as a rejected send", () => {
    const ch = new Channel<number>(0);
    assert.equal(ch.trySend(1), false);
    assert.equal(ch.stats.rejectedSends, 0);
  });

  it("trySend throws ChannelClosedError on a closed channel, even with buffer room", () => {
    const ch = new Channel<number>(4);
    ch.close();
    assert.throws(() => ch.trySend(1), ChannelClosedError);
    assert.equal(ch.length, 0);
  });

  it("tryRecv returns the oldest buffered value", () => {
    const ch = new Channel<number>(2);
    ch.trySend(1);
    ch.trySend(2);
    assert.deepEqual(ch.tryRecv(), { value: 1, ok: true });
    assert.deepEqual(ch.tryRecv(), { value: 2, ok: true });
  });

  it("tryRecv takes from a parked sender and completes it", async () => {
    const ch = new Channel<number>(0);
    const s = ch.send(4);
    assert.deepEqual(ch.tryRecv(), { value: 4, ok: true });
    assert.deepEqual(await peek(s), { status: "fulfilled", value: undefined });
  });

  it("tryRecv returns undefined when a receive would wait, and parks nothing", () => {
    const ch = new Channel<number>(1);
    assert.equal(ch.tryRecv(), undefined);
    assert.equal(ch.stats.parkedReceivers, 0);
    assert.equal(ch.trySend(1), true, "a later value is buffered, not handed to a phantom receiver");
    assert.equal(ch.length, 1);
  });

  it("tryRecv returns { value: undefined, ok: false } on a closed, drained channel", () => {
    const ch = new Channel<number>(1);
    ch.trySend(1);
    ch.close();
    assert.deepEqual(ch.tryRecv(), { value: 1, ok: true });
    assert.deepEqual(ch.tryRecv(), { value: undefined, ok: false });
    assert.deepEqual(ch.tryRecv(), { value: undefined, ok: false });
  });
});

describe("Channel close", () => {
  it("sets closed", () => {
    const ch = new Channel<number>(0);
    ch.close();
    assert.equal(ch.closed, true);
    assert.equal(ch.stats.closed, true);
  });

  it("send on a closed channel rejects with ChannelClosedError (code ERR_CHANNEL_CLOSED)", async () => {
    const ch = new Channel<number>(3, { name: "closed-one" });
    ch.close();
    const p = ch.send(1);
    const o = await peek(p);
    assert.equal(o.status, "rejected");
    const e = (o as { reason: unknown }).reason;
    assert.ok(e instanceof ChannelClosedError);
    assert.equal(e.code, "ERR_CHANNEL_CLOSED");
    assert.match(e.message, /closed-one/, "the message names the channel");
    assert.equal(ch.length, 0);
    assert.equal(ch.stats.sent, 0);
  });

  it("close of a closed channel throws ChannelClosedError and changes nothing", () => {
    const ch = new Channel<number>(2);
    ch.trySend(1);
    ch.close();
    assert.throws(() => ch.close(), ChannelClosedError);
    assert.equal(ch.closed, true);
    assert.deepEqual(ch.tryRecv(), { value: 1, ok: true });
  });

  it("rejects every parked sender with ChannelClosedError; their values are never delivered", async () => {
    const ch = new Channel<number>(0);
    const ss = [capture(ch.send(1)), capture(ch.send(2)), capture(ch.send(3))];
    ch.close();
    assert.equal(ch.stats.parkedSenders, 0);
    for (const o of await Promise.all(ss)) {
      assert.equal(o.status, "rejected");
      assert.ok((o as { reason: unknown }).reason instanceof ChannelClosedError);
    }
    assert.deepEqual(await ch.recv(), { value: undefined, ok: false });
    assert.equal(ch.stats.sent, 0);
  });

  it("resolves every parked receiver with { value: undefined, ok: false }", async () => {
    const ch = new Channel<number>(2);
    const rs = [ch.recv(), ch.recv(), ch.recv()];
    ch.close();
    assert.equal(ch.stats.parkedReceivers, 0);
    const results = await Promise.all(rs);
    for (const r of results) assert.deepEqual(r, { value: undefined, ok: false });
    assert.equal(new Set(results).size, 3, "each receiver gets its own result object");
  });

  it("settles the parked receivers inside close() (already settled when close returns)", async () => {
    const ch = new Channel<number>(0);
    const r = ch.recv();
    ch.close();
    assert.deepEqual(await peek(r), { status: "fulfilled", value: { value: undefined, ok: false } });
  });

  it("keeps buffered values receivable after close, in order, then reports { ok: false }", async () => {
    const ch = new Channel<number>(3);
    ch.trySend(1);
    ch.trySend(2);
    ch.close();
    assert.equal(ch.length, 2);
    assert.deepEqual(await ch.recv(), { value: 1, ok: true });
    assert.deepEqual(await ch.recv(), { value: 2, ok: true });
    assert.deepEqual(await ch.recv(), { value: undefined, ok: false });
    assert.equal(ch.length, 0);
  });

  it("with a full buffer and parked senders: buffered values survive, parked senders are refused", async () => {
    const ch = new Channel<string>(1);
    ch.trySend("kept");
    const s = capture(ch.send("refused"));
    ch.close();
    assert.deepEqual(await ch.recv(), { value: "kept", ok: true });
    assert.deepEqual(await ch.recv(), { value: undefined, ok: false });
    const o = await s;
    assert.equal(o.status, "rejected");
    assert.ok((o as { reason: unknown }).reason instanceof ChannelClosedError);
  });
});

describe("Channel abort", () => {
  it("an aborted parked send rejects with signal.reason and leaves nothing behind", async () => {
    const ch = new Channel<string>(0);
    const ac = new AbortController();
    const reason = new Error("stop");
    const p = capture(ch.send("ghost", { signal: ac.signal }));
    assert.equal(ch.stats.parkedSenders, 1);
    ac.abort(reason);
    assert.equal(ch.stats.parkedSenders, 0, "withdrawn inside abort()");
    assert.deepEqual(await p, { status: "rejected", reason });
    assert.equal(ch.tryRecv(), undefined, "the value is not delivered later");
    const r = ch.recv();
    ch.trySend("real");
    assert.deepEqual(await r, { value: "real", ok: true });
  });

  it("an aborted parked send on a full buffer is not moved into the buffer later", async () => {
    const ch = new Channel<string>(1);
    ch.trySend("a");
    const ac = new AbortController();
    const p = capture(ch.send("ghost", { signal: ac.signal }));
    ac.abort();
    assert.equal((await p).status, "rejected");
    assert.deepEqual(await ch.recv(), { value: "a", ok: true });
    assert.equal(ch.tryRecv(), undefined);
    assert.equal(ch.length, 0);
  });

  it("an aborted parked send in the middle keeps FIFO for the others", async () => {
    const ch = new Channel<number>(0);
    const ac = new AbortController();
    const s1 = ch.send(1);
    const s2 = capture(ch.send(2, { signal: ac.signal }));
    const s3 = ch.send(3);
    ac.abort();
    assert.equal((await s2).status, "rejected");
    assert.deepEqual((await ch.recv()).value, 1);
    assert.deepEqual((await ch.recv()).value, 3);
    await Promise.all([s1, s3]);
    assert.equal(ch.stats.parkedSenders, 0);
  });

  it("an aborted parked receive rejects with signal.reason, takes nothing and leaves no receiver", async () => {
    const ch = new Channel<number>(0);
    const ac = new AbortController();
    const reason = { why: "any value can be a reason" };
    const p = capture(ch.recv({ signal: ac.signal }));
    ac.abort(reason);
    assert.deepEqual(await p, { status: "rejected", reason });
    assert.equal(ch.stats.parkedReceivers, 0);
    assert.equal(ch.trySend(1), false, "no phantom receiver takes a later value");
  });

  it("abort() without a reason rejects with the signal's default AbortError reason", async () => {
    const ch = new Channel<number>(0);
    const ac = new AbortController();
    const p = capture(ch.recv({ signal: ac.signal }));
    ac.abort();
    const o = await p;
    assert.equal(o.status, "rejected");
    assert.equal((o as { reason: unknown }).reason, ac.signal.reason);
    assert.equal(((o as { reason: unknown }).reason as Error).name, "AbortError");
  });

  it("an abort after the operation completed changes nothing", async () => {
    const ch = new Channel<number>(0);
    const ac = new AbortController();
    const r = ch.recv({ signal: ac.signal });
    ch.trySend(1);
    ac.abort();
    assert.deepEqual(await r, { value: 1, ok: true });
    const s = ch.send(2, { signal: ac.signal });
    await assert.rejects(s, (e) => e === ac.signal.reason);
  });

  it("an already-aborted signal: send rejects with its reason and does nothing, even with buffer room", async () => {
    const ch = new Channel<number>(2);
    const reason = new Error("too late");
    const o = await peek(ch.send(1, { signal: aborted(reason) }));
    assert.deepEqual(o, { status: "rejected", reason });
    assert.equal(ch.length, 0);
    assert.equal(ch.stats.sent, 0);
  });

  it("an already-aborted signal wins over a closed channel (send rejects with the reason, not ChannelClosedError)", async () => {
    const ch = new Channel<number>(2);
    ch.close();
    const reason = new Error("reason wins");
    assert.deepEqual(await peek(ch.send(1, { signal: aborted(reason) })), { status: "rejected", reason });
  });

  it("an already-aborted signal wins over a full buffer (no park, no BusyError)", async () => {
    const ch = new Channel<number>(1, { maxParkedSends: 0 });
    ch.trySend(1);
    const reason = new Error("reason wins");
    assert.deepEqual(await peek(ch.send(2, { signal: aborted(reason) })), { status: "rejected", reason });
    assert.equal(ch.stats.parkedSenders, 0);
    assert.equal(ch.stats.rejectedSends, 0);
  });

  it("an already-aborted signal: send does not hand its value to a parked receiver", async () => {
    const ch = new Channel<number>(0);
    const ac = new AbortController();
    const r = capture(ch.recv({ signal: ac.signal }));
    await assert.rejects(ch.send(1, { signal: aborted() }));
    assert.equal(ch.stats.parkedReceivers, 1, "the receiver is still waiting");
    ac.abort();
    assert.equal((await r).status, "rejected");
  });

  it("an already-aborted signal: recv rejects with its reason and takes nothing, even with a value buffered", async () => {
    const ch = new Channel<number>(1);
    ch.trySend(1);
    const reason = new Error("no");
    assert.deepEqual(await peek(ch.recv({ signal: aborted(reason) })), { status: "rejected", reason });
    assert.equal(ch.length, 1);
    assert.equal(ch.stats.received, 0);
  });

  it("an already-aborted signal wins over a closed channel (recv rejects instead of { ok: false })", async () => {
    const ch = new Channel<number>(0);
    ch.close();
    const reason = new Error("no");
    assert.deepEqual(await peek(ch.recv({ signal: aborted(reason) })), { status: "rejected", reason });
  });

  it("an already-aborted signal: recv does not complete a parked sender", async () => {
    const ch = new Channel<number>(0);
    const s = ch.send(1);
    await assert.rejects(ch.recv({ signal: aborted() }));
    assert.equal(ch.stats.parkedSenders, 1);
    assert.deepEqual(await ch.recv(), { value: 1, ok: true });
    await s;
  });

  it("bad options reject (send/recv return a rejected promise, never throw) and change nothing", async () => {
    const ch = new Channel<number>(2);
    let p: Promise<unknown> | undefined;
    assert.doesNotThrow(() => {
      p = ch.send(1, { signal: "nope" as unknown as AbortSignal });
    });
    await assert.rejects(p!, TypeError);
    assert.equal(ch.length, 0, "the value was not buffered");
    await assert.rejects(ch.send(1, 5 as never), TypeError);
    await assert.rejects(ch.recv({ signal: {} as AbortSignal }), TypeError);
    await assert.rejects(ch.recv("x" as never), TypeError);
    assert.equal(ch.stats.sent, 0);
  });

  it("one signal shared by many parked operations aborts them all without a listener-leak warning", async () => {
    const w = collectWarnings();
    try {
      const out = new Channel<number>(0);
      const inb = new Channel<number>(0);
      const ac = new AbortController();
      const ps = [];
      for (let i = 0; i < 50; i++) ps.push(capture(out.send(i, { signal: ac.signal })));
      for (let i = 0; i < 50; i++) ps.push(capture(inb.recv({ signal: ac.signal })));
      assert.equal(out.stats.parkedSenders, 50);
      assert.equal(inb.stats.parkedReceivers, 50);
      ac.abort();
      for (const o of await Promise.all(ps)) assert.equal(o.status, "rejected");
      await turns(3);
      assert.equal(w.warnings.filter((x) => x.name === "MaxListenersExceededWarning").length, 0);
      assert.equal(out.stats.parkedSenders + inb.stats.parkedReceivers, 0);
    } finally {
      w.stop();
    }
  });
});

describe("Channel async iteration", () => {
  it("yields values in order and ends when the channel is closed and drained", async () => {
    const ch = new Channel<number>(2);
    const producer = (async () => {
      for (let i = 0; i < 5; i++) await ch.send(i);
      ch.close();
    })();
    const got: number[] = [];
    for await (const v of ch) got.push(v);
    await producer;
    assert.deepEqual(got, [0, 1, 2, 3, 4]);
  });

  it("yields the buffered values of an already closed channel, then ends", async () => {
    const ch = new Channel<number>(3);
    ch.trySend(1);
    ch.trySend(2);
    ch.close();
    const got: number[] = [];
    for await (const v of ch) got.push(v);
    assert.deepEqual(got, [1, 2]);
  });

  it("break does not close the channel and takes no value beyond the ones the body got", async () => {
    const ch = new Channel<number>(4);
    for (const v of [1, 2, 3, 4]) ch.trySend(v);
    for await (const v of ch) {
      assert.equal(v, 1);
      break;
    }
    assert.equal(ch.closed, false);
    assert.equal(ch.length, 3);
    assert.deepEqual(ch.tryRecv(), { value: 2, ok: true });
    assert.equal(ch.trySend(5), true, "still open for sends");
  });

  it("values() is the same iteration; a second loop continues where the first stopped", async () => {
    const ch = new Channel<number>(3);
    for (const v of [1, 2, 3]) ch.trySend(v);
    ch.close();
    const first: number[] = [];
    for await (const v of ch.values()) {
      first.push(v);
      if (v === 2) break;
    }
    const second: number[] = [];
    for await (const v of ch.values()) second.push(v);
    assert.deepEqual(first, [1, 2]);
    assert.deepEqual(second, [3]);
  });

  it("two concurrent loops share the values: each value is received exactly once", async () => {
    const ch = new Channel<number>(0);
    const a: number[] = [];
    const b: number[] = [];
    const la = (async () => { for await (const v of ch) a.push(v); })();
    const lb = (async () => { for await (const v of ch) b.push(v); })();
    for (let i = 0; i < 20; i++) await ch.send(i);
    ch.close();
    await Promise.all([la, lb]);
    assert.deepEqual([...a, ...b].sort((x, y) => x - y), Array.from({ length: 20 }, (_, i) => i));
  });

  it("values({ signal }): an abort rejects the pending next() with signal.reason and leaves no receiver", async () => {
    const ch = new Channel<number>(0);
    const ac = new AbortController();
    const reason = new Error("stop iterating");
    const loop = capture((async () => {
      for await (const _ of ch.values({ signal: ac.signal })) { /* nothing arrives */ }
    })());
    await turns(2);
    assert.equal(ch.stats.parkedReceivers, 1);
    ac.abort(reason);
    assert.deepEqual(await loop, { status: "rejected", reason });
    assert.equal(ch.stats.parkedReceivers, 0);
    assert.equal(ch.closed, false);
  });

  it("values({ signal }) with an already-aborted signal rejects the first next() and takes nothing", async () => {
    const ch = new Channel<number>(1);
    ch.trySend(1);
    const reason = new Error("already");
    const it = ch.values({ signal: aborted(reason) });
    await assert.rejects(it.next(), (e) => e === reason);
    assert.equal(ch.length, 1);
  });

  it("values() with a bad signal throws TypeError at once", () => {
    const ch = new Channel<number>(0);
    assert.throws(() => ch.values({ signal: 1 as unknown as AbortSignal }), TypeError);
  });

  it("a parked next() is counted as a parked receiver and gets a value sent later", async () => {
    const ch = new Channel<string>(0);
    const it = ch[Symbol.asyncIterator]();
    const n = it.next();
    assert.equal(ch.stats.parkedReceivers, 1);
    ch.trySend("x");
    assert.deepEqual(await n, { value: "x", done: false });
    ch.close();
    assert.deepEqual(await it.next(), { value: undefined, done: true });
  });
});

describe("Channel iterator return()", () => {
  for (const withSignal of [false, true]) {
    it(`return() while next() waits${withSignal ? " (with a signal)" : ""}: it resolves done, leaves no receiver, takes no later value`, async () => {
      const ch = new Channel<number>(0);
      const iter = withSignal ? ch.values({ signal: new AbortController().signal }) : ch.values();
      const n = iter.next();
      assert.equal(ch.stats.parkedReceivers, 1);
      assert.deepEqual(await iter.return!(), { value: undefined, done: true });
      assert.deepEqual(await n, { value: undefined, done: true });
      assert.equal(ch.stats.parkedReceivers, 0);
      assert.equal(ch.trySend(7), false, "no receiver is left to take a value");
      const later = ch.send(7);
      assert.deepEqual(await ch.recv(), { value: 7, ok: true }, "the value goes to a live receiver");
      await later;
      assert.deepEqual(await iter.next(), { value: undefined, done: true }, "the ended iteration stays done");
      assert.equal(ch.closed, false);
    });
  }

  it("return() after next() was served does not lose the value", async () => {
    const ch = new Channel<number>(0);
    const iter = ch.values();
    const n = iter.next();
    assert.equal(ch.trySend(1), true);
    await iter.return!();
    assert.deepEqual(await n, { value: 1, done: false });
  });

  it("randomized: iterators ended mid-wait never swallow a value (every sent value is received once)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.boolean(), { minLength: 1, maxLength: 40 }), async (plan) => {
        const ch = new Channel<number>(0);
        const got: number[] = [];
        let sent = 0;
        for (const endFirst of plan) {
          const iter = ch.values();
          const n = iter.next();
          if (endFirst) await iter.return!();
          const s = ch.send(sent++);
          const r = await n;
          if (!r.done) got.push(r.value);
          else got.push((await ch.recv()).value as number);
          await s;
        }
        assert.deepEqual(got, Array.from({ length: sent }, (_, i) => i));
        assert.equal(ch.stats.parkedReceivers, 0);
      }),
      { numRuns: 50 },
    );
  });
});

describe("Channel maxParkedSends / maxParkedRecvs", () => {
  it("maxParkedSends: when that many senders wait, send rejects at once with BusyError (ERR_BUSY) and the value is not taken", async () => {
    const ch = new Channel<string>(0, { name: "jobs", maxParkedSends: 2 });
    const s1 = ch.send("a");
    const s2 = ch.send("b");
    const o = await peek(ch.send("c"));
    assert.equal(o.status, "rejected");
    const e = (o as { reason: unknown }).reason;
    assert.ok(e instanceof BusyError);
    assert.equal(e.code, "ERR_BUSY");
    assert.match(e.message, /jobs/, "the message names the channel");
    assert.equal(ch.stats.parkedSenders, 2);
    assert.equal(ch.stats.rejectedSends, 1);
    assert.deepEqual((await ch.recv()).value, "a");
    assert.deepEqual((await ch.recv()).value, "b");
    assert.equal(ch.tryRecv(), undefined, "the refused value is never delivered");
    await Promise.all([s1, s2]);
  });

  it("maxParkedSends: once a parked sender leaves, a new one may park", async () => {
    const ch = new Channel<number>(0, { maxParkedSends: 1 });
    const s1 = ch.send(1);
    await assert.rejects(ch.send(2), BusyError);
    await ch.recv();
    await s1;
    const s3 = ch.send(3);
    assert.equal(await stillPending(s3), true);
    assert.deepEqual((await ch.recv()).value, 3);
    await s3;
  });

  it("maxParkedSends: 0 refuses every send that would wait, but not those that complete at once", async () => {
    const ch = new Channel<number>(1, { maxParkedSends: 0 });
    await ch.send(1);
    await assert.rejects(ch.send(2), BusyError);
    assert.equal(ch.length, 1);
    const u = new Channel<number>(0, { maxParkedSends: 0 });
    const r = u.recv();
    await u.send(5);
    assert.deepEqual(await r, { value: 5, ok: true });
  });

  it("maxParkedSends: a closed channel still rejects with ChannelClosedError, not BusyError", async () => {
    const ch = new Channel<number>(0, { maxParkedSends: 0 });
    ch.close();
    await assert.rejects(ch.send(1), ChannelClosedError);
  });

  it("maxParkedRecvs: when that many receivers wait, recv rejects at once with BusyError", async () => {
    const ch = new Channel<number>(0, { maxParkedRecvs: 1, name: "replies" });
    const r1 = ch.recv();
    const o = await peek(ch.recv());
    assert.equal(o.status, "rejected");
    const e = (o as { reason: unknown }).reason;
    assert.ok(e instanceof BusyError);
    assert.equal(e.code, "ERR_BUSY");
    assert.match(e.message, /replies/);
    assert.equal(ch.stats.rejectedRecvs, 1);
    assert.equal(ch.stats.parkedReceivers, 1);
    ch.trySend(1);
    assert.deepEqual(await r1, { value: 1, ok: true });
  });

  it("maxParkedRecvs: an iterator's parked next() counts toward the limit", async () => {
    const ch = new Channel<number>(0, { maxParkedRecvs: 1 });
    const it = ch.values();
    const n = it.next();
    await assert.rejects(ch.recv(), BusyError);
    ch.close();
    assert.deepEqual(await n, { value: undefined, done: true });
  });

  it("maxParkedRecvs does not refuse receives that complete at once", async () => {
    const ch = new Channel<number>(1, { maxParkedRecvs: 0 });
    ch.trySend(1);
    assert.deepEqual(await ch.recv(), { value: 1, ok: true });
    await assert.rejects(ch.recv(), BusyError);
    ch.close();
    assert.deepEqual(await ch.recv(), { value: undefined, ok: false });
  });
});

describe("Channel parked-operation warnings", () => {
  async function park(ch: Channel<number>, sends: number, recvs: number, ac: AbortController): Promise<Promise<unknown>[]> {
    const ps: Promise<unknown>[] = [];
    for (let i = 0; i < sends; i++) ps.push(capture(ch.send(i, { signal: ac.signal })));
    for (let i = 0; i < recvs; i++) ps.push(capture(ch.recv({ signal: ac.signal })));
    await turns(3); // process.emitWarning dispatches on the next tick
    return ps;
  }

  it("warnParkedSends: exactly one SLUICE_PARKED_SENDS warning, the first time parked senders go above it, naming the channel and the count", async () => {
    const w = collectWarnings();
    const ac = new AbortController();
    try {
      const ch = new Channel<number>(0, { name: "backlog", warnParkedSends: 3 });
      const ps = await park(ch, 3, 0, ac);
      assert.equal(withCode(w.warnings, "SLUICE_PARKED_SENDS").length, 0, "at the threshold: no warning");
      ps.push(...(await park(ch, 1, 0, ac)));
      let mine = withCode(w.warnings, "SLUICE_PARKED_SENDS");
      assert.equal(mine.length, 1);
      assert.equal(mine[0]!.name, "SluiceWarning");
      assert.match(mine[0]!.message, /backlog/);
      assert.match(mine[0]!.message, /\b4\b/);
      ps.push(...(await park(ch, 10, 0, ac)));
      ac.abort();
      await Promise.all(ps);
      // Drained and exceeded again: still the one warning for this channel.
      const ac2 = new AbortController();
      const more = await park(ch, 6, 0, ac2);
      ac2.abort();
      await Promise.all(more);
      mine = withCode(w.warnings, "SLUICE_PARKED_SENDS");
      assert.equal(mine.length, 1);
    } finally {
      ac.abort();
      w.stop();
    }
  });

  it("warnParkedSends defaults to 1000 when no maxParkedSends is set", async () => {
    const w = collectWarnings();
    const ac = new AbortController();
    try {
      const ch = new Channel<number>(0, { name: "default-threshold" });
      const ps = await park(ch, 1000, 0, ac);
      assert.equal(withCode(w.warnings, "SLUICE_PARKED_SENDS").length, 0);
      ps.push(...(await park(ch, 1, 0, ac)));
      const mine = withCode(w.warnings, "SLUICE_PARKED_SENDS");
      assert.equal(mine.length, 1);
      assert.match(mine[0]!.message, /default-threshold/);
      assert.match(mine[0]!.message, /1001/);
      ac.abort();
      await Promise.all(ps);
    } finally {
      ac.abort();
      w.stop();
    }
  });

  it("warnParkedSends: Infinity silences the warning", async () => {
    const w = collectWarnings();
    const ac = new AbortController();
    try {
      const ch = new Channel<number>(0, { warnParkedSends: Infinity });
      const ps = await park(ch, 1100, 0, ac);
      assert.equal(withCode(w.warnings, "SLUICE_PARKED_SENDS").length, 0);
      ac.abort();
      await Promise.all(ps);
    } finally {
      ac.abort();
      w.stop();
    }
  });

  it("with maxParkedSends set and no warnParkedSends, there is no warning (the bound is the answer)", async () => {
    const w = collectWarnings();
    const ac = new AbortController();
    try {
      const ch = new Channel<number>(0, { maxParkedSends: 5000 });
      const ps = await park(ch, 1100, 0, ac);
      assert.equal(withCode(w.warnings, "SLUICE_PARKED_SENDS").length, 0);
      ac.abort();
      await Promise.all(ps);
    } finally {
      ac.abort();
      w.stop();
    }
  });

  it("warnParkedSends: 0 warns on the first parked sender", async () => {
    const w = collectWarnings();
    const ac = new AbortController();
    try {
      const ch = new Channel<number>(0, { warnParkedSends: 0 });
      const ps = await park(ch, 1, 0, ac);
      assert.equal(withCode(w.warnings, "SLUICE_PARKED_SENDS").length, 1);
      ac.abort();
      await Promise.all(ps);
    } finally {
      ac.abort();
      w.stop();
    }
  });

  it("warnParkedRecvs: exactly one SLUICE_PARKED_RECVS warning naming the channel and the count", async () => {
    const w = collectWarnings();
    const ac = new AbortController();
    try {
      const ch = new Channel<number>(0, { name: "idle-workers", warnParkedRecvs: 2 });
      const ps = await park(ch, 0, 2, ac);
      assert.equal(withCode(w.warnings, "SLUICE_PARKED_RECVS").length, 0);
      ps.push(...(await park(ch, 0, 5, ac)));
      const mine = withCode(w.warnings, "SLUICE_PARKED_RECVS");
      assert.equal(mine.length, 1);
      assert.equal(mine[0]!.name, "SluiceWarning");
      assert.match(mine[0]!.message, /idle-workers/);
      assert.match(mine[0]!.message, /\b3\b/);
      assert.equal(withCode(w.warnings, "SLUICE_PARKED_SENDS").length, 0);
      ac.abort();
      await Promise.all(ps);
    } finally {
      ac.abort();
      w.stop();
    }
  });

  it("warnParkedRecvs defaults to 1000 when no maxParkedRecvs is set", async () => {
    const w = collectWarnings();
    const ac = new AbortController();
    try {
      const ch = new Channel<number>(0);
      const ps = await park(ch, 0, 1000, ac);
      assert.equal(withCode(w.warnings, "SLUICE_PARKED_RECVS").length, 0);
      ps.push(...(await park(ch, 0, 1, ac)));
      assert.equal(withCode(w.warnings, "SLUICE_PARKED_RECVS").length, 1);
      ac.abort();
      await Promise.all(ps);
    } finally {
      ac.abort();
      w.stop();
    }
  });
});
