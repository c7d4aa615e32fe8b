/**
 * Specification of the timers as channels: `after`, `Timer`/`timer`, `Ticker`/`tick`
 * (DESIGN.md "Core API contract" and "Settled details"; issue 3 §2). Time is virtual except in
 * the two tests that check the real clock and that a stopped timer lets the process exit.
 */
import { describe, it, afterEach } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Channel, Ticker, Timer, after, recv, select, tick, timer } from "../../src/index.js";
import { VirtualClock, useClock } from "../../src/testing/index.js";
import { capture, peek, stillPending } from "./fixtures/probe.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));

let restore: (() => void) | undefined;
function installClock(start = 1000): VirtualClock {
  const clock = new VirtualClock(start);
  restore = useClock(clock);
  return clock;
}
afterEach(() => {
  restore?.();
  restore = undefined;
});

function aborted(): AbortSignal {
  const ac = new AbortController();
  ac.abort();
  return ac.signal;
}

describe("after(ms)", () => {
  it("returns a channel of capacity 1 that is empty and open until ms have passed", () => {
    const clock = installClock();
    const ch = after(50);
    assert.ok(ch instanceof Channel);
    assert.equal(ch.capacity, 1);
    assert.equal(ch.tryRecv(), undefined);
    clock.advance(49);
    assert.equal(ch.tryRecv(), undefined);
    assert.equal(ch.closed, false);
  });

  it("delivers the clock's now() once, ms from now", async () => {
    const clock = installClock(1000);
    const ch = after(50);
    const r = ch.recv();
    clock.advance(50);
    assert.deepEqual(await r, { value: 1050, ok: true });
    clock.advance(1000);
    assert.equal(ch.tryRecv(), undefined, "once: nothing more is delivered");
  });

  it("a receiver that comes late still gets the value (capacity 1)", async () => {
    const clock = installClock(0);
    const ch = after(10);
    clock.advance(5000);
    assert.equal(ch.length, 1);
    assert.deepEqual(await ch.recv(), { value: 10, ok: true });
  });

  it("the channel is not closed afterwards: a second receive waits", async () => {
    const clock = installClock(0);
    const ch = after(10);
    clock.advance(10);
    await ch.recv();
    assert.equal(ch.closed, false);
    assert.equal(ch.tryRecv(), undefined);
    const ac = new AbortController();
    const again = ch.recv({ signal: ac.signal });
    assert.equal(await stillPending(again), true);
    ac.abort();
    await assert.rejects(again);
  });

  it("uses options.clock when given, over the default clock", async () => {
    const mine = new VirtualClock(500);
    const other = installClock(0);
    const ch = after(20, { clock: mine });
    other.advance(100);
    assert.equal(ch.tryRecv(), undefined);
    assert.equal(other.pending, 0);
    assert.equal(mine.pending, 1);
    mine.advance(20);
    assert.deepEqual(await ch.recv(), { value: 520, ok: true });
  });

  it("after(0) delivers on the next clock turn, not inside the call", () => {
    const clock = installClock(7);
    const ch = after(0);
    assert.equal(ch.tryRecv(), undefined);
    clock.advance(0);
    assert.deepEqual(ch.tryRecv(), { value: 7, ok: true });
  });

  it("works as a timeout case in a select", async () => {
    const clock = installClock(0);
    const replies = new Channel<string>(0);
    const p = select([recv(replies), recv(after(100))]);
    clock.advance(99);
    assert.equal(await stillPending(p, 2), true);
    clock.advance(1);
    assert.deepEqual(await p, { index: 1, value: 100, ok: true });
    assert.equal(replies.stats.parkedReceivers, 0);
  });

  it("with { signal }: an abort clears the timer, nothing is delivered", () => {
    const clock = installClock(0);
    const ac = new AbortController();
    const ch = after(100, { signal: ac.signal });
    assert.equal(clock.pending, 1);
    ac.abort();
    assert.equal(clock.pending, 0, "no timer left armed");
    clock.advance(1000);
    assert.equal(ch.tryRecv(), undefined);
  });

  it("with an already-aborted signal arms no timer", () => {
    const clock = installClock(0);
    const ch = after(100, { signal: aborted() });
    assert.equal(clock.pending, 0);
    clock.advance(1000);
    assert.equal(ch.tryRecv(), undefined);
  });

  it("refuses a bad duration: -1, NaN, Infinity -> RangeError; \"5\" -> TypeError; naming ms", () => {
    installClock();
    for (const bad of [-1, NaN, Infinity, -Infinity]) assert.throws(() => after(bad), (e: unknown) => e instanceof RangeError && /ms/.test(e.message));
    assert.throws(() => after("5" as unknown as number), TypeError);
    assert.throws(() => after(undefined as unknown as number), TypeError);
  });

  it("refuses bad options with TypeError (signal, clock)", () => {
    assert.throws(() => after(1, { signal: {} as AbortSignal }), TypeError);
    assert.throws(() => after(1, { clock: {} as never }), TypeError);
    assert.throws(() => after(1, 7 as never), TypeError);
  });

  it("accepts a fractional duration", () => {
    const clock = installClock(0);
    const ch = after(1.5);
    clock.advance(1);
    assert.equal(ch.tryRecv(), undefined);
    clock.advance(1);
    assert.equal(ch.tryRecv()?.ok, true);
  });

  it("with the real clock, delivers Date.now() after ms (time.After)", async () => {
    const t0 = Date.now();
    const r = await after(5).recv();
    const t1 = Date.now();
    assert.equal(r.ok, true);
    assert.equal(typeof r.value, "number");
    assert.ok(r.value! >= t0 + 4 && r.value! <= t1, `value ${r.value} not in [${t0 + 4}, ${t1}]`);
  });
});

describe("Timer", () => {
  it("timer(ms) is a Timer whose channel has capacity 1", () => {
    installClock();
    const t = timer(10);
    assert.ok(t instanceof Timer);
    assert.equal(t.channel.capacity, 1);
    assert.equal(t.active, true);
    t.stop();
  });

  it("fires once with the clock's now()", async () => {
    const clock = installClock(100);
    const t = new Timer(30);
    clock.advance(30);
    assert.equal(t.active, false);
    assert.deepEqual(await t.channel.recv(), { value: 130, ok: true });
    clock.advance(100);
    assert.equal(t.channel.tryRecv(), undefined);
  });

  it("stop() before it fires returns true, delivers nothing and leaves no armed timer", () => {
    const clock = installClock(0);
    const t = new Timer(30);
    assert.equal(t.stop(), true);
    assert.equal(t.active, false);
    assert.equal(clock.pending, 0);
    clock.advance(100);
    assert.equal(t.channel.tryRecv(), undefined);
  });

  it("stop() a second time returns false", () => {
    installClock(0);
    const t = new Timer(30);
    t.stop();
    assert.equal(t.stop(), false);
  });

  it("stop() after it fired and its value was received returns false", async () => {
    const clock = installClock(0);
    const t = new Timer(30);
    clock.advance(30);
    await t.channel.recv();
    assert.equal(t.stop(), false);
  });

  it("stop() after it fired but before its value was received returns true and discards the value (Go 1.23)", () => {
    const clock = installClock(0);
    const t = new Timer(30);
    clock.advance(30);
    assert.equal(t.channel.length, 1);
    assert.equal(t.stop(), true);
    assert.equal(t.channel.tryRecv(), undefined, "no stale value after stop");
  });

  it("reset(ms) of an active timer returns true and fires only at the new time", () => {
    const clock = installClock(0);
    const t = new Timer(30);
    clock.advance(20);
    assert.equal(t.reset(50), true);
    assert.equal(clock.pending, 1, "one armed timer, not two");
    clock.advance(10); // t = 30: the old deadline
    assert.equal(t.channel.tryRecv(), undefined);
    clock.advance(39); // t = 69
    assert.equal(t.channel.tryRecv(), undefined);
    clock.advance(1); // t = 70
    assert.deepEqual(t.channel.tryRecv(), { value: 70, ok: true });
  });

  it("reset(ms) after it fired discards the unreceived value, returns true, and fires again", () => {
    const clock = installClock(0);
    const t = new Timer(10);
    clock.advance(10);
    assert.equal(t.reset(10), true);
    assert.equal(t.channel.tryRecv(), undefined, "the stale value is gone");
    clock.advance(10);
    assert.deepEqual(t.channel.tryRecv(), { value: 20, ok: true });
  });

  it("reset(ms) of a stopped timer returns false and arms it again", () => {
    const clock = installClock(0);
    const t = new Timer(10);
    t.stop();
    assert.equal(t.reset(5), false);
    assert.equal(t.active, true);
    clock.advance(5);
    assert.deepEqual(t.channel.tryRecv(), { value: 5, ok: true });
  });

  it("reset with a bad duration throws and leaves the timer as it was", () => {
    const clock = installClock(0);
    const t = new Timer(10);
    assert.throws(() => t.reset(-1), RangeError);
    assert.throws(() => t.reset("1" as unknown as number), TypeError);
    assert.equal(t.active, true);
    clock.advance(10);
    assert.deepEqual(t.channel.tryRecv(), { value: 10, ok: true });
  });

  it("an abort of its signal stops it: nothing delivered, no armed timer; the channel stays open", () => {
    const clock = installClock(0);
    const ac = new AbortController();
    const t = new Timer(10, { signal: ac.signal });
    ac.abort();
    assert.equal(t.active, false);
    assert.equal(clock.pending, 0);
    clock.advance(100);
    assert.equal(t.channel.tryRecv(), undefined);
    assert.equal(t.channel.closed, false);
  });

  it("reset after its signal aborted does not arm it again", () => {
    const clock = installClock(0);
    const ac = new AbortController();
    const t = new Timer(10, { signal: ac.signal });
    ac.abort();
    t.reset(10);
    assert.equal(clock.pending, 0);
    assert.equal(t.active, false);
  });

  it("with an already-aborted signal arms no timer", () => {
    const clock = installClock(0);
    const t = new Timer(10, { signal: aborted() });
    assert.equal(clock.pending, 0);
    assert.equal(t.active, false);
  });

  it("refuses a bad duration or options", () => {
    installClock();
    assert.throws(() => new Timer(-1), RangeError);
    assert.throws(() => new Timer(NaN), RangeError);
    assert.throws(() => timer("1" as unknown as number), TypeError);
    assert.throws(() => new Timer(1, { signal: "s" as unknown as AbortSignal }), TypeError);
  });
});

describe("Ticker", () => {
  it("tick(ms) returns a channel of capacity 1 that receives the clock's now() every ms", async () => {
    const clock = installClock(0);
    const ac = new AbortController();
    const ch = tick(100, { signal: ac.signal });
    assert.equal(ch.capacity, 1);
    const got: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = ch.recv();
      clock.advance(100);
      got.push((await r).value!);
    }
    assert.deepEqual(got, [100, 200, 300]);
    ac.abort();
  });

  it("drops missed ticks instead of queueing them, and counts them in dropped", () => {
    const clock = installClock(0);
    const t = new Ticker(100);
    clock.advance(500);
    assert.equal(t.channel.length, 1, "one tick held, never more");
    assert.equal(t.dropped, 4);
    assert.deepEqual(t.channel.tryRecv(), { value: 100, ok: true }, "the oldest unread tick is kept");
    clock.advance(100);
    assert.deepEqual(t.channel.tryRecv(), { value: 600, ok: true });
    assert.equal(t.dropped, 4);
    t.stop();
  });

  it("stop() stops ticking, discards an unreceived tick and leaves no armed timer; the channel stays open", () => {
    const clock = installClock(0);
    const t = new Ticker(10);
    clock.advance(10);
    t.stop();
    assert.equal(clock.pending, 0);
    assert.equal(t.channel.tryRecv(), undefined);
    clock.advance(1000);
    assert.equal(t.channel.tryRecv(), undefined);
    assert.equal(t.channel.closed, false);
  });

  it("stop() leaves a parked receiver parked (as in Go)", async () => {
    installClock(0);
    const t = new Ticker(10);
    const ac = new AbortController();
    const r = capture(t.channel.recv({ signal: ac.signal }));
    t.stop();
    assert.equal(await stillPending(r), true);
    ac.abort();
    assert.equal((await r).status, "rejected");
  });

  it("reset(ms) changes the period, counted from now", () => {
    const clock = installClock(0);
    const t = new Ticker(100);
    clock.advance(50);
    t.reset(30);
    assert.equal(clock.pending, 1);
    clock.advance(30);
    assert.deepEqual(t.channel.tryRecv(), { value: 80, ok: true });
    clock.advance(30);
    assert.deepEqual(t.channel.tryRecv(), { value: 110, ok: true });
    t.stop();
  });

  it("reset(ms) after stop() starts it again", () => {
    const clock = installClock(0);
    const t = new Ticker(10);
    t.stop();
    t.reset(10);
    clock.advance(10);
    assert.deepEqual(t.channel.tryRecv(), { value: 10, ok: true });
    t.stop();
  });

  it("an abort of its signal stops it and closes its channel, so a for-await loop ends", async () => {
    const clock = installClock(0);
    const ac = new AbortController();
    const ch = tick(10, { signal: ac.signal });
    const seen: number[] = [];
    const loop = (async () => {
      for await (const now of ch) {
        seen.push(now);
        if (seen.length === 2) ac.abort();
      }
    })();
    await clock.advanceAsync(100);
    await loop;
    assert.deepEqual(seen, [10, 20]);
    assert.equal(ch.closed, true);
    assert.equal(clock.pending, 0);
  });

  it("an abort closes the channel under a parked receiver, which gets { ok: false }", async () => {
    const clock = installClock(0);
    const ac = new AbortController();
    const t = new Ticker(10, { signal: ac.signal });
    const r = t.channel.recv();
    ac.abort();
    assert.deepEqual(await peek(r), { status: "fulfilled", value: { value: undefined, ok: false } });
    assert.equal(clock.pending, 0);
  });

  it("with an already-aborted signal: closed channel, no armed timer", () => {
    const clock = installClock(0);
    const ch = tick(10, { signal: aborted() });
    assert.equal(ch.closed, true);
    assert.equal(clock.pending, 0);
  });

  it("reset after the signal aborted does nothing", () => {
    const clock = installClock(0);
    const ac = new AbortController();
    const t = new Ticker(10, { signal: ac.signal });
    ac.abort();
    t.reset(10);
    assert.equal(clock.pending, 0);
    assert.equal(t.channel.closed, true);
  });

  it("uses options.clock when given", () => {
    const mine = new VirtualClock(0);
    installClock(0);
    const t = new Ticker(10, { clock: mine });
    mine.advance(10);
    assert.deepEqual(t.channel.tryRecv(), { value: 10, ok: true });
    t.stop();
    assert.equal(mine.pending, 0);
  });

  it("refuses a period that is not a finite number > 0", () => {
    installClock();
    for (const bad of [0, -1, NaN, Infinity]) {
      assert.throws(() => new Ticker(bad), RangeError);
      assert.throws(() => tick(bad), RangeError);
    }
    assert.throws(() => tick("1" as unknown as number), TypeError);
  });

  it("reset with a bad period throws and leaves the ticker ticking as before", () => {
    const clock = installClock(0);
    const t = new Ticker(10);
    assert.throws(() => t.reset(0), RangeError);
    assert.throws(() => t.reset("5" as unknown as number), TypeError);
    clock.advance(10);
    assert.deepEqual(t.channel.tryRecv(), { value: 10, ok: true });
    t.stop();
  });
});

describe("timers do not keep the process alive once stopped", () => {
  it("a stopped Timer/Ticker, and after/tick/timeoutSignal whose signal aborted, let the process exit", async () => {
    const script = `
      import { after, tick, Timer, Ticker, timeoutSignal } from "./src/index.ts";
      const ac = new AbortController();
      new Timer(60_000).stop();
      new Ticker(60_000).stop();
      after(60_000, { signal: ac.signal });
      tick(60_000, { signal: ac.signal });
      new Timer(60_000, { signal: ac.signal });
      timeoutSignal(60_000, { signal: ac.signal });
      ac.abort();
      timeoutSignal(60_000); // unreferenced: never keeps the process alive
      console.log("started");
    `;
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    const started = Date.now();
    const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      execFile(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script],
        { cwd: REPO, env, timeout: 20_000 }, (err, out) => {
          resolve({ code: err ? (typeof err.code === "number" ? err.code : null) : 0, stdout: String(out) });
        });
    });
    assert.equal(stdout.trim(), "started");
    assert.equal(code, 0);
    assert.ok(Date.now() - started < 20_000, "exited by itself");
  });
});
