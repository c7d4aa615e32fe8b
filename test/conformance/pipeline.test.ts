/**
 * Conformance: DESIGN.md "sluice/pipeline: settled details" (issue 13), sentence by sentence,
 * plus the core's general rules (bad options, aborts, nothing parked).
 */
import assert from "node:assert/strict";
import { Readable, Writable } from "node:stream";
import { describe, test } from "node:test";
import { BusyError, Channel, ChannelClosedError } from "../../src/index.js";
import { AdaptiveLimit, RateLimiter } from "../../src/flow/index.js";
import { VirtualClock, useClock } from "../../src/testing/index.js";
import {
  Broadcast, LaggedError, Pipeline, batch, type DeadLetter, fanOut, filter, flatMap, map, merge, partition, pipeline, rateLimit, tap,
  toReadable, toReadableStream, toWritable, toWritableStream,
} from "../../src/pipeline/index.js";
import {
  assertBadOption, assertNothingParked, collect, countedAsync, countedIterable, deferred, liveTimers, range, settle, until,
} from "./helpers.js";

const T = { timeout: 30_000 };
const STAT_KEYS = ["blockedMs", "busyMs", "dropped", "errors", "in", "name", "out"];

describe("pipeline(source, ...stages): a Pipeline that starts nothing until consumed", () => {
  test("returns a Pipeline<T>, an AsyncIterable", T, () => {
    const p = pipeline([1, 2, 3], map((x: number) => x));
    assert.ok(p instanceof Pipeline);
    assert.equal(typeof p[Symbol.asyncIterator], "function");
    assert.equal(typeof p.values, "function");
    assert.equal(typeof p.run, "function");
  });

  test("nothing is pulled from the source, nor any stage called, before consumption", T, async () => {
    const src = countedAsync(10);
    let calls = 0;
    const p = pipeline(src.it, map((x: number) => (calls++, x)), tap(() => calls++));
    await settle(20);
    assert.equal(src.pulled(), 0);
    assert.equal(calls, 0);
    assert.deepEqual(await collect(p), range(10));
  });

  test("sources: a Channel, an iterable, an async iterable, a Node Readable, a web ReadableStream", T, async () => {
    const ch = new Channel<number>(2);
    const feeding = (async () => {
      for (const x of range(20)) await ch.send(x);
      ch.close();
    })();
    async function* gen(): AsyncGenerator<number> {
      yield* range(20);
    }
    const web = new ReadableStream<number>({
      start(c) {
        for (const x of range(20)) c.enqueue(x);
        c.close();
      },
    });
    const sources: unknown[] = [ch, range(20), gen(), Readable.from(range(20), { objectMode: true }), web];
    for (const s of sources) {
      assert.deepEqual(await collect(pipeline(s as Iterable<number>, map((x: number) => x + 1))), range(20).map((x) => x + 1), String(s));
    }
    await feeding;
  });

  test("a stage may be a function (input: AsyncIterable<I>, signal: AbortSignal) => AsyncIterable<O>", T, async () => {
    let seen: unknown;
    async function* double(input: AsyncIterable<number>, signal: AbortSignal): AsyncGenerator<number> {
      seen = signal;
      for await (const x of input) yield x * 2;
    }
    const out = await collect(pipeline(range(5), double, map((x: number) => x + 1)));
    assert.deepEqual(out, [1, 3, 5, 7, 9]);
    assert.ok(seen instanceof AbortSignal);
  });

  test("a source of no known kind is refused with a TypeError", T, () => {
    assert.throws(() => pipeline(42 as unknown as Iterable<number>), TypeError);
    assert.throws(() => pipeline(null as unknown as Iterable<number>), TypeError);
  });
});

describe("Pipeline: iteration, values({ signal }), run({ signal })", () => {
  test("iteration yields the last stage's output; break stops and cleans up everything (source closed)", T, async () => {
    const src = countedAsync();
    let running = 0;
    const p = pipeline(
      src.it,
      map(async (x: number) => {
        running++;
        await Promise.resolve();
        running--;
        return x;
      }, { concurrency: 4 }),
      batch({ size: 3, maxWaitMs: 10_000 }),
    );
    const timersBefore = liveTimers();
    let got = 0;
    for await (const b of p) {
      assert.ok(b.length <= 3);
      if (++got === 3) break;
    }
    assert.ok(src.closed(), "the source was closed (its finally ran)");
    assert.equal(running, 0, "nothing running after break");
    assertNothingParked("after break");
    assert.ok(liveTimers() <= timersBefore, "no timer held after break");
  });

  test("values({ signal }) iterates like a channel; an abort rejects the iteration with signal.reason, source closed", T, async () => {
    const src = countedAsync();
    const ac = new AbortController();
    const reason = new Error("stop now");
    const it = pipeline(src.it, map((x: number) => x)).values({ signal: ac.signal });
    const seen: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const v of it) {
          seen.push(v);
          if (v === 5) ac.abort(reason);
        }
      })(),
      (e) => e === reason,
    );
    assert.deepEqual(seen.slice(0, 6), range(6));
    assert.ok(src.closed());
    assertNothingParked("after values() abort");
  });

  test("values() with an already-aborted signal rejects with signal.reason and pulls nothing", T, async () => {
    const src = countedAsync();
    const reason = new Error("already");
    const it = pipeline(src.it, map((x: number) => x)).values({ signal: AbortSignal.abort(reason) });
    await assert.rejects(it.next(), (e) => e === reason);
    assert.equal(src.pulled(), 0);
    assertNothingParked("after an already-aborted values()");
  });

  test("run() consumes and discards the output, resolves with the stats once the source ended and all in flight completed", T, async () => {
    let completed = 0;
    const p = pipeline(
      range(40),
      map(async (x: number) => {
        await new Promise<void>((r) => setImmediate(r));
        completed++;
        return x;
      }, { concurrency: 8 }),
      filter((x: number) => x % 2 === 0),
    );
    const stats = await p.run();
    assert.equal(completed, 40, "every in-flight call completed before run resolved");
    assert.deepEqual(stats, p.stats);
    assert.equal(stats.stages.length, 2);
    assert.equal(stats.stages[0]!.in, 40);
    assert.equal(stats.stages[0]!.out, 40);
    assert.equal(stats.stages[1]!.in, 40);
    assert.equal(stats.stages[1]!.out, 20);
    assert.equal(stats.stages[1]!.dropped, 20);
    assertNothingParked("after run");
  });

  test("the first failure rejects run() with that error, unchanged; in-flight fn signals fire; source closed; nothing left", T, async () => {
    const src = countedAsync();
    const boom = new Error("boom");
    let running = 0;
    let abortedSignals = 0;
    const p = pipeline(
      src.it,
      map(async (x: number, signal: AbortSignal) => {
        running++;
        try {
          if (x === 2) throw boom;
          await new Promise<void>((resolve) => {
            if (signal.aborted) return resolve();
            signal.addEventListener("abort", () => resolve(), { once: true });
          });
          if (signal.aborted) abortedSignals++;
          return x;
        } finally {
          running--;
        }
      }, { concurrency: 4 }),
    );
    await assert.rejects(p.run(), (e) => e === boom);
    assert.equal(running, 0, "nothing running when run() rejected");
    assert.ok(abortedSignals >= 1, "in-flight calls saw their signal fire");
    assert.ok(src.closed(), "the source was closed");
    assertNothingParked("after a failure");
  });

  test("the first failure rejects the iteration with that error, unchanged", T, async () => {
    const boom = new TypeError("bad item");
    const p = pipeline(range(10), map((x: number) => {
      if (x === 3) throw boom;
      return x;
    }));
    const seen: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const v of p) seen.push(v);
      })(),
      (e) => e === boom,
    );
    assert.deepEqual(seen, [0, 1, 2].slice(0, seen.length), "a prefix of the output before the failing item");
  });

  test("a failing source fails the run with its error, unchanged", T, async () => {
    const boom = new Error("source broke");
    async function* src(): AsyncGenerator<number> {
      yield 1;
      throw boom;
    }
    await assert.rejects(pipeline(src(), map((x: number) => x)).run(), (e) => e === boom);
  });

  test("an abort of run({ signal }) rejects with signal.reason; nothing running, parked or holding a timer; source closed", T, async () => {
    const clock = new VirtualClock();
    const src = countedAsync();
    const ac = new AbortController();
    const reason = new Error("shutdown");
    let running = 0;
    const started = deferred();
    const p = pipeline(
      src.it,
      map(async (x: number, signal: AbortSignal) => {
        running++;
        started.resolve();
        try {
          await new Promise<void>((r) => signal.addEventListener("abort", () => r(), { once: true }));
          return x;
        } finally {
          running--;
        }
      }, { concurrency: 3 }),
      batch({ size: 100, maxWaitMs: 60_000 }),
      { clock },
    );
    const done = p.run({ signal: ac.signal });
    await started.promise;
    ac.abort(reason);
    await assert.rejects(done, (e) => e === reason);
    assert.equal(running, 0);
    assert.ok(src.closed());
    assert.equal(clock.pending, 0, "no timer left on the clock");
    assertNothingParked("after an abort");
  });

  test("run() with an already-aborted signal rejects with signal.reason without pulling or calling anything", T, async () => {
    const src = countedAsync();
    let calls = 0;
    const reason = new Error("already aborted");
    await assert.rejects(pipeline(src.it, map((x: number) => (calls++, x))).run({ signal: AbortSignal.abort(reason) }), (e) => e === reason);
    assert.equal(src.pulled(), 0);
    assert.equal(calls, 0);
  });

  test("after a failure each kind of source is closed: Channel closed, Readable destroyed, ReadableStream cancelled", T, async () => {
    const boom = new Error("boom");
    // Channel
    const ch = new Channel<number>(4);
    ch.trySend(1);
    await assert.rejects(pipeline(ch, map(() => { throw boom; })).run(), (e) => e === boom);
    assert.ok(ch.closed, "a Channel source is closed");
    // Node Readable
    const r = new Readable({ objectMode: true, read() { this.push(1); } });
    await assert.rejects(pipeline(r, map(() => { throw boom; })).run(), (e) => e === boom);
    assert.ok(r.destroyed, "a Readable source is destroyed");
    // web ReadableStream
    let cancelled = false;
    const w = new ReadableStream<number>({ pull(c) { c.enqueue(1); }, cancel() { cancelled = true; } });
    await assert.rejects(pipeline(w, map(() => { throw boom; })).run(), (e) => e === boom);
    assert.ok(cancelled, "a ReadableStream source is cancelled");
    // sync iterable
    const it = countedIterable(1000);
    await assert.rejects(pipeline(it.it, map(() => { throw boom; })).run(), (e) => e === boom);
    assert.ok(it.closed(), "an iterator source gets return()");
  });
});

describe("Pipeline: cleanup with a Channel source and a user stage", () => {
  test("break closes a Channel source: its parked producer gets ChannelClosedError, nothing parked", T, async () => {
    const ch = new Channel<number>(1);
    let producerError: unknown;
    const producer = (async () => {
      try {
        for (let i = 0; ; i++) await ch.send(i);
      } catch (e) {
        producerError = e;
      }
    })();
    for await (const v of pipeline(ch, map((x: number) => x))) {
      if (v === 3) break;
    }
    await producer;
    assert.ok(ch.closed, "the Channel source was closed");
    assert.ok(producerError instanceof ChannelClosedError, `producer saw ${String(producerError)}`);
    assertNothingParked("after break with a Channel source");
  });

  test("an abort with a producer parked on the Channel source: rejects with signal.reason, source closed, nothing parked", T, async () => {
    const ch = new Channel<number>(0);
    const producer = (async () => {
      try {
        for (let i = 0; ; i++) await ch.send(i);
      } catch {
        // closed under it
      }
    })();
    const ac = new AbortController();
    const reason = new Error("stop");
    const stalled = deferred();
    const done = pipeline(ch, map(async (x: number, signal: AbortSignal) => {
      if (x === 2) {
        stalled.resolve();
        await new Promise<void>((r) => signal.addEventListener("abort", () => r(), { once: true }));
      }
      return x;
    })).run({ signal: ac.signal });
    await stalled.promise;
    ac.abort(reason);
    await assert.rejects(done, (e) => e === reason);
    await producer;
    assert.ok(ch.closed);
    assertNothingParked("after an abort with a Channel source");
  });

  test("a failing user function stage fails the run with its error, unchanged; the source is closed", T, async () => {
    const boom = new RangeError("stage function broke");
    const src = countedAsync();
    async function* breaks(input: AsyncIterable<number>): AsyncGenerator<number> {
      for await (const x of input) {
        if (x === 4) throw boom;
        yield x;
      }
    }
    await assert.rejects(pipeline(src.it, breaks, map((x: number) => x)).run(), (e) => e === boom);
    assert.ok(src.closed());
    assertNothingParked("after a user stage failure");
  });

  test("a user function stage that ignores its input's end or stops early does not hang the run", T, async () => {
    async function* firstTwo(input: AsyncIterable<number>): AsyncGenerator<number> {
      let n = 0;
      for await (const x of input) {
        yield x;
        if (++n === 2) return;
      }
    }
    const src = countedAsync();
    const out = await collect(pipeline(src.it, firstTwo, map((x: number) => x * 10)));
    assert.deepEqual(out, [0, 10]);
    await until(() => src.closed(), "the source is closed when the stage stopped reading");
    assertNothingParked("after an early-ending stage");
  });
});

describe("an already-aborted signal wins over every other outcome (core rule)", () => {
  test("run() on an already-consumed pipeline with an already-aborted signal rejects with signal.reason", T, async () => {
    const p = pipeline([1], map((x: number) => x));
    await p.run();
    const reason = new Error("aborted");
    await assert.rejects(p.run({ signal: AbortSignal.abort(reason) }), (e) => e === reason);
  });

  test("publish on a closed Broadcast with an already-aborted signal rejects with signal.reason", T, async () => {
    const b = new Broadcast<number>();
    b.close();
    const reason = new Error("aborted");
    await assert.rejects(b.publish(1, { signal: AbortSignal.abort(reason) }), (e) => e === reason);
  });
});

describe("pipeline.stats: { stages: [{ name, in, out, dropped, errors, busyMs, blockedMs }] }", () => {
  test("exact shape, one entry per stage in order, zeros before the run", T, () => {
    const p = pipeline(range(3), map((x: number) => x), filter(() => true), tap(() => {}));
    const s = p.stats;
    assert.deepEqual(Object.keys(s), ["stages"]);
    assert.equal(s.stages.length, 3);
    for (const st of s.stages) {
      assert.deepEqual(Object.keys(st).sort(), STAT_KEYS);
      assert.equal(typeof st.name, "string");
      for (const k of ["in", "out", "dropped", "errors", "busyMs", "blockedMs"] as const) assert.equal(st[k], 0, k);
    }
    assert.notEqual(p.stats, p.stats, "a fresh object each time");
  });

  test("stage names follow the stage; a named stage keeps its name", T, async () => {
    const p = pipeline(range(3), map((x: number) => x, { name: "parse" }), filter(() => true));
    await p.run();
    assert.equal(p.stats.stages[0]!.name, "parse");
    assert.equal(typeof p.stats.stages[1]!.name, "string");
  });

  test("errors counts the failed call", T, async () => {
    const boom = new Error("x");
    const p = pipeline(range(5), map((x: number) => { if (x === 2) throw boom; return x; }));
    await assert.rejects(p.run(), (e) => e === boom);
    assert.equal(p.stats.stages[0]!.errors, 1);
  });

  test("blockedMs: time waiting for room downstream (the stage before a slow stage is blocked, the slow one is not)", T, async () => {
    const slow = map(async (x: number) => {
      await new Promise<void>((r) => setTimeout(r, 3));
      return x;
    }, { buffer: 0 });
    const p = pipeline(range(30), map((x: number) => x, { buffer: 0 }), slow);
    const stats = await p.run();
    const [fast, last] = stats.stages;
    assert.ok(fast!.blockedMs > 20, `first stage waited for room: ${fast!.blockedMs}`);
    assert.ok(last!.busyMs > 20, `the slow stage was busy: ${last!.busyMs}`);
    assert.ok(fast!.blockedMs > last!.blockedMs, "the bottleneck is downstream of the blocked stage");
  });
});

describe("the bound: items alive in a pipeline", () => {
  test("a stalled consumer stalls the source: items pulled stay within the buffers, concurrencies and batch sizes", T, async () => {
    const src = countedAsync();
    const p = pipeline(
      src.it,
      map(async (x: number) => x, { concurrency: 3, buffer: 2 }),
      filter(() => true, { buffer: 1 }),
      batch({ size: 4, buffer: 1 }),
    );
    const it = p[Symbol.asyncIterator]();
    await it.next();
    await settle(50);
    const pulled = src.pulled();
    await settle(50);
    assert.equal(src.pulled(), pulled, "nothing more is pulled while the consumer stalls");
    // source link (default 16) + pump 1 + map 3 + 2 + filter 1 + 1 + batch 4 + one batch buffered (4) + one batch waiting (4) + the batch taken (4)
    assert.ok(pulled <= 16 + 1 + 3 + 2 + 1 + 1 + 4 + 4 + 4 + 4, `pulled ${pulled}`);
    await it.return?.();
    assert.ok(src.closed());
  });
});

describe("stage factories", () => {
  test("map(fn, { concurrency = 1 }): fn(item, signal); at most one call at a time by default", T, async () => {
    let running = 0;
    let max = 0;
    let sawSignal = true;
    await pipeline(range(20), map(async (x: number, signal: AbortSignal) => {
      sawSignal &&= signal instanceof AbortSignal;
      max = Math.max(max, ++running);
      await new Promise<void>((r) => setImmediate(r));
      running--;
      return x;
    })).run();
    assert.equal(max, 1);
    assert.ok(sawSignal);
  });

  test("map({ concurrency: 4 }): never more than 4 at once, and it reaches 4", T, async () => {
    let running = 0;
    let max = 0;
    await pipeline(range(40), map(async (x: number) => {
      max = Math.max(max, ++running);
      await new Promise<void>((r) => setTimeout(r, 1));
      running--;
      return x;
    }, { concurrency: 4 })).run();
    assert.equal(max, 4);
  });

  test("map: ordered = true by default keeps input order; ordered: false hands results on as they finish", T, async () => {
    const gates = range(4).map(() => deferred());
    const fn = async (x: number): Promise<number> => {
      await gates[x]!.promise;
      return x;
    };
    const ordered = collect(pipeline(range(4), map(fn, { concurrency: 4 })));
    const g2 = range(4).map(() => deferred());
    const unordered = collect(pipeline(range(4), map(async (x: number) => {
      await g2[x]!.promise;
      return x;
    }, { concurrency: 4, ordered: false })));
    await settle();
    for (const i of [3, 2, 1, 0]) {
      gates[i]!.resolve();
      g2[i]!.resolve();
      await settle(3);
    }
    assert.deepEqual(await ordered, [0, 1, 2, 3]);
    assert.deepEqual(await unordered, [3, 2, 1, 0]);
  });

  test("map({ buffer }): the link after the stage is bounded; a stalled consumer stalls the stage", T, async () => {
    let calls = 0;
    const p = pipeline(range(1000), map((x: number) => (calls++, x), { buffer: 2 }), { sourceBuffer: 0 } as never);
    const it = p[Symbol.asyncIterator]();
    assert.equal((await it.next()).value, 0);
    await settle(30);
    // one taken by the consumer, `buffer` buffered, one held by the stage waiting for room.
    assert.ok(calls <= 1 + 2 + 1, `calls while stalled: ${calls}`);
    await it.return?.();
    assertNothingParked("after return()");
  });

  test("map({ concurrency: ConcurrencyLimit }): an AdaptiveLimit drives the stage; never more than its limit", T, async () => {
    const limit = new AdaptiveLimit({ algorithm: "aimd", initialLimit: 3, minLimit: 1, maxLimit: 3 });
    let running = 0;
    let max = 0;
    await pipeline(range(30), map(async (x: number) => {
      max = Math.max(max, ++running);
      await new Promise<void>((r) => setTimeout(r, 1));
      running--;
      return x;
    }, { concurrency: limit })).run();
    assert.ok(max >= 1 && max <= 3, `max ${max}`);
  });

  test("map: bad options throw RangeError/TypeError naming the option", T, () => {
    assertBadOption(() => map(42 as never), TypeError, "fn");
    for (const c of [0, -1, 1.5, Infinity, NaN]) assertBadOption(() => map((x) => x, { concurrency: c }), RangeError, "concurrency");
    assertBadOption(() => map((x) => x, { concurrency: "2" as never }), TypeError, "concurrency");
    for (const b of [-1, 1.5, Infinity]) assertBadOption(() => map((x) => x, { buffer: b }), RangeError, "buffer");
    assertBadOption(() => map((x) => x, { ordered: "yes" as never }), TypeError, "ordered");
  });

  test("filter(pred) keeps the accepted items", T, async () => {
    assert.deepEqual(await collect(pipeline(range(10), filter((x: number) => x % 3 === 0))), [0, 3, 6, 9]);
    assertBadOption(() => filter(null as never), TypeError, "pred");
  });

  test("flatMap(fn): fn returns an iterable or an async iterable", T, async () => {
    assert.deepEqual(await collect(pipeline([1, 2, 3], flatMap((x: number) => [x, x * 10]))), [1, 10, 2, 20, 3, 30]);
    async function* twice(x: number): AsyncGenerator<number> {
      yield x;
      yield x;
    }
    assert.deepEqual(await collect(pipeline([1, 2], flatMap(twice))), [1, 1, 2, 2]);
  });

  test("flatMap: an item's expansion is pulled lazily (bounded)", T, async () => {
    let produced = 0;
    function* endless(): Generator<number> {
      for (;;) yield produced++;
    }
    const out: number[] = [];
    for await (const v of pipeline([0], flatMap(() => endless(), { buffer: 1 }))) {
      out.push(v);
      if (out.length === 5) break;
    }
    assert.deepEqual(out, range(5));
    assert.ok(produced <= 5 + 1 + 2, `expanded lazily: produced ${produced}`);
  });

  test("batch({ size }): arrays of at most size, in order, the rest at the end", T, async () => {
    const out = await collect(pipeline(range(10), batch({ size: 4 })));
    assert.deepEqual(out, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
  });

  test("batch({ size, maxWaitMs }): a partial batch goes out after maxWaitMs (the clock seam)", T, async () => {
    const clock = new VirtualClock();
    const ch = new Channel<number>(8);
    const it = pipeline(ch, batch({ size: 10, maxWaitMs: 100 }), { clock })[Symbol.asyncIterator]();
    ch.trySend(1);
    ch.trySend(2);
    const next = it.next();
    let got: IteratorResult<number[]> | undefined;
    void next.then((r) => (got = r));
    await settle();
    assert.equal(got, undefined, "not before maxWaitMs");
    await clock.advanceAsync(99);
    await settle();
    assert.equal(got, undefined, "not before maxWaitMs (99 ms)");
    await clock.advanceAsync(1);
    await until(() => got !== undefined, "the partial batch after 100 ms");
    assert.deepEqual(got!.value, [1, 2]);
    ch.close();
    assert.equal((await it.next()).done, true);
    assert.equal(clock.pending, 0);
  });

  test("batch's maxWaitMs is timed through the default clock seam (useClock), without a clock option", T, async () => {
    const clock = new VirtualClock();
    const restore = useClock(clock);
    try {
      const ch = new Channel<number>(4);
      const it = pipeline(ch, batch({ size: 10, maxWaitMs: 50 }))[Symbol.asyncIterator]();
      ch.trySend(7);
      let got: IteratorResult<number[]> | undefined;
      void it.next().then((r) => (got = r));
      await settle();
      assert.equal(got, undefined);
      await clock.advanceAsync(50);
      await until(() => got !== undefined, "the partial batch at 50 virtual ms");
      assert.deepEqual(got!.value, [7]);
      ch.close();
      await it.return?.();
    } finally {
      restore();
    }
  });

  test("a failing item may be routed to a dead-letter channel instead (issue 13): counted in errors, the run goes on", T, async () => {
    const dead = new Channel<DeadLetter<number>>(16);
    const p = pipeline(range(10), map((x: number) => {
      if (x % 4 === 0) throw new Error(`bad ${x}`);
      return x;
    }, { deadLetter: dead }));
    const out = await collect(p);
    assert.deepEqual(out, [1, 2, 3, 5, 6, 7, 9]);
    const letters: DeadLetter<number>[] = [];
    for (let r = dead.tryRecv(); r?.ok === true; r = dead.tryRecv()) letters.push(r.value);
    assert.deepEqual(letters.map((l) => l.item), [0, 4, 8]);
    assert.ok(letters.every((l) => l.error instanceof Error));
    assert.equal(p.stats.stages[0]!.errors, 3);
  });

  test("batch: bad options name the option", T, () => {
    assertBadOption(() => batch(undefined as never), TypeError, "size");
    for (const s of [0, -1, 2.5, Infinity]) assertBadOption(() => batch({ size: s }), RangeError, "size");
    for (const w of [-1, NaN]) assertBadOption(() => batch({ size: 2, maxWaitMs: w }), RangeError, "maxWaitMs");
  });

  test("tap(fn) sees every item and passes it on unchanged", T, async () => {
    const seen: number[] = [];
    const objs = range(5).map((i) => ({ i }));
    const out = await collect(pipeline(objs, tap((o: { i: number }) => void seen.push(o.i))));
    assert.deepEqual(seen, range(5));
    assert.equal(out.length, 5);
    out.forEach((o, i) => assert.equal(o, objs[i], "the same object"));
    assertBadOption(() => tap(1 as never), TypeError, "fn");
  });

  test("rateLimit(limiter): waits for one token per item (RateLimiter)", T, async () => {
    const clock = new VirtualClock();
    const limiter = new RateLimiter({ rate: 10, burst: 2, clock });
    const out: number[] = [];
    const running = (async () => {
      for await (const v of pipeline(range(5), rateLimit(limiter), { clock })) out.push(v);
    })();
    await until(() => out.length === 2, "the burst passes at once");
    await settle();
    assert.equal(out.length, 2, "the third item waits for a token");
    await clock.advanceAsync(100);
    await until(() => out.length === 3, "one token after 100 ms at 10/s");
    await settle();
    assert.equal(out.length, 3);
    await clock.advanceAsync(200);
    await running;
    assert.deepEqual(out, range(5));
    assertBadOption(() => rateLimit({} as never), TypeError, "limiter");
  });
});

describe("merge, fanOut, partition", () => {
  test("merge(...sources): every item of every source, each source's order kept", T, async () => {
    async function* a(): AsyncGenerator<string> {
      for (const i of range(20)) yield `a${i}`;
    }
    const b = new Channel<string>(3);
    const feeding = (async () => {
      for (const i of range(20)) await b.send(`b${i}`);
      b.close();
    })();
    const out = await collect(merge(a(), b, range(20).map((i) => `c${i}`)));
    await feeding;
    assert.equal(out.length, 60);
    for (const p of ["a", "b", "c"]) {
      assert.deepEqual(out.filter((s) => s[0] === p), range(20).map((i) => `${p}${i}`));
    }
  });

  test("merge: one failing source fails it; the others are closed", T, async () => {
    const boom = new Error("one broke");
    const other = countedAsync();
    async function* bad(): AsyncGenerator<number> {
      yield 1;
      throw boom;
    }
    await assert.rejects(collect(merge(other.it, bad())), (e) => e === boom);
    assert.ok(other.closed());
    assertNothingParked("after merge failure");
  });

  test("fanOut(source, n): an array of n async iterables, each item to exactly one", T, async () => {
    const lanes = fanOut(range(100), 3);
    assert.ok(Array.isArray(lanes));
    assert.equal(lanes.length, 3);
    const got = await Promise.all(lanes.map(async (lane) => {
      const mine: number[] = [];
      for await (const v of lane) {
        mine.push(v);
        await new Promise<void>((r) => setImmediate(r));
      }
      return mine;
    }));
    const all = got.flat().sort((x, y) => x - y);
    assert.deepEqual(all, range(100), "each item exactly once");
    assert.ok(got.every((m) => m.length > 0), "every lane took some");
    assertBadOption(() => fanOut(range(3), 0), RangeError, "n");
  });

  test("fanOut: each item goes to whichever lane is free (a slow lane takes fewer)", T, async () => {
    const [slow, fast] = fanOut(range(60), 2);
    const got = { slow: 0, fast: 0 };
    await Promise.all([
      (async () => {
        for await (const _ of slow!) {
          got.slow++;
          await new Promise<void>((r) => setTimeout(r, 10));
        }
      })(),
      (async () => {
        for await (const _ of fast!) {
          got.fast++;
          await new Promise<void>((r) => setImmediate(r));
        }
      })(),
    ]);
    assert.equal(got.slow + got.fast, 60);
    assert.ok(got.fast > got.slow * 2, `fast lane ${got.fast}, slow lane ${got.slow}`);
  });

  test("fanOut: when every lane has broken out, the source is closed; nothing parked", T, async () => {
    const src = countedAsync();
    const lanes = fanOut(src.it, 2);
    await Promise.all(lanes.map(async (lane) => {
      let n = 0;
      for await (const _ of lane) if (++n === 3) break;
    }));
    await until(() => src.closed(), "the source closed");
    assertNothingParked("after every fanOut lane broke out");
  });

  test("merge: break closes every source", T, async () => {
    const a = countedAsync();
    const b = countedAsync();
    let n = 0;
    for await (const _ of merge(a.it, b.it)) if (++n === 5) break;
    await until(() => a.closed() && b.closed(), "both sources closed");
    assertNothingParked("after break out of merge");
  });

  test("partition(source, keyOf, n): an array of n; same key same lane; order kept per key", T, async () => {
    const items = range(200).map((i) => ({ key: `k${i % 7}`, seq: i }));
    const lanes = partition(items, (x) => x.key, 3);
    assert.equal(lanes.length, 3);
    const got = await Promise.all(lanes.map((l) => collect(l)));
    assert.equal(got.flat().length, 200);
    const laneOfKey = new Map<string, number>();
    got.forEach((lane, li) => {
      for (const it of lane) {
        const prev = laneOfKey.get(it.key);
        assert.ok(prev === undefined || prev === li, `key ${it.key} in one lane`);
        laneOfKey.set(it.key, li);
      }
      const byKey = new Map<string, number[]>();
      for (const it of lane) byKey.set(it.key, [...(byKey.get(it.key) ?? []), it.seq]);
      for (const seqs of byKey.values()) assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), "order kept per key");
    });
    assertBadOption(() => partition(range(3), (x) => x, 0), RangeError, "n");
    assertBadOption(() => partition(range(3), 1 as never, 2), TypeError, "keyOf");
  });
});

describe("Broadcast", () => {
  test("new Broadcast({ name, maxSubscribers }); subscribing past maxSubscribers throws BusyError (ERR_BUSY)", T, () => {
    const b = new Broadcast<number>({ name: "conf-bcast", maxSubscribers: 2 });
    b.subscribe();
    b.subscribe();
    assert.throws(() => b.subscribe(), (e) => e instanceof BusyError && (e as BusyError).code === "ERR_BUSY");
    b.close();
  });

  test("bad options throw RangeError/TypeError naming the option", T, () => {
    for (const m of [0, -1, 1.5, NaN]) assertBadOption(() => new Broadcast({ maxSubscribers: m }), RangeError, "maxSubscribers");
    const b = new Broadcast<number>();
    assertBadOption(() => b.subscribe({ policy: "wait" as never }), RangeError, "policy");
    for (const buf of [-1, 1.5, Infinity]) assertBadOption(() => b.subscribe({ buffer: buf }), RangeError, "buffer");
    assert.equal(b.stats.subscribers, 0, "a refused subscribe adds nothing");
    b.close();
  });

  test("subscribe({ buffer, policy }) returns an AsyncIterable with unsubscribe() and stats { received, dropped, length }", T, async () => {
    const b = new Broadcast<number>();
    const s = b.subscribe({ buffer: 4, policy: "drop-newest" });
    assert.equal(typeof s[Symbol.asyncIterator], "function");
    assert.equal(typeof s.unsubscribe, "function");
    for (const k of ["received", "dropped", "length"]) assert.equal(typeof (s.stats as unknown as Record<string, unknown>)[k], "number", k);
    await b.publish(1);
    await b.publish(2);
    assert.equal(s.stats.length, 2);
    const it = s[Symbol.asyncIterator]();
    assert.deepEqual(await it.next(), { value: 1, done: false });
    assert.equal(s.stats.received, 1);
    assert.equal(s.stats.length, 1);
    s.unsubscribe();
    assert.equal((await it.next()).done, true);
    await b.publish(3);
    assert.equal(s.stats.received, 1);
    b.close();
  });

  test("publish(value, { signal }) is a promise that waits only for \"block\" subscribers without room", T, async () => {
    const b = new Broadcast<number>();
    const dropper = b.subscribe({ buffer: 1, policy: "drop-newest" });
    const oldest = b.subscribe({ buffer: 1, policy: "drop-oldest" });
    const p1 = b.publish(1);
    assert.ok(p1 instanceof Promise);
    await p1;
    await b.publish(2); // full for both: drop policies never make publish wait
    assert.equal(dropper.stats.dropped, 1);
    assert.equal(oldest.stats.dropped, 1);
    const blocker = b.subscribe({ buffer: 1, policy: "block" });
    await b.publish(3); // room in blocker
    let resolved = false;
    const p4 = b.publish(4).then(() => (resolved = true));
    await settle();
    assert.equal(resolved, false, "waits for the block subscriber without room");
    const it = blocker[Symbol.asyncIterator]();
    assert.deepEqual(await it.next(), { value: 3, done: false });
    await p4;
    assert.equal(resolved, true);
    assert.deepEqual(await it.next(), { value: 4, done: false });
    const di = dropper[Symbol.asyncIterator]();
    assert.deepEqual(await di.next(), { value: 1, done: false }, "drop-newest kept the older");
    const oi = oldest[Symbol.asyncIterator]();
    assert.deepEqual(await oi.next(), { value: 4, done: false }, "drop-oldest kept the newest");
    b.close();
  });

  test("publish: an abort while waiting rejects with signal.reason; an already-aborted signal rejects at once", T, async () => {
    const b = new Broadcast<number>();
    const blocker = b.subscribe({ buffer: 0, policy: "block" });
    const reason = new Error("gave up");
    const ac = new AbortController();
    const p = b.publish(1, { signal: ac.signal });
    await settle();
    ac.abort(reason);
    await assert.rejects(p, (e) => e === reason);
    assertNothingParked("after an aborted publish");
    const r2 = new Error("pre");
    await assert.rejects(b.publish(2, { signal: AbortSignal.abort(r2) }), (e) => e === r2);
    assert.equal(blocker.stats.length, 0);
    b.close();
  });

  test("a \"block\" subscriber that unsubscribes releases the publish waiting for it", T, async () => {
    const b = new Broadcast<number>();
    const blocker = b.subscribe({ buffer: 0, policy: "block" });
    const p = b.publish(1);
    await settle();
    blocker.unsubscribe();
    await p;
    assertNothingParked("after unsubscribe of a blocking subscriber");
    b.close();
  });

  test("break out of a subscription unsubscribes it", T, async () => {
    const b = new Broadcast<number>();
    const s = b.subscribe({ buffer: 4 });
    await b.publish(1);
    await b.publish(2);
    for await (const v of s) {
      assert.equal(v, 1);
      break;
    }
    assert.equal(b.stats.subscribers, 0);
    await b.publish(3);
    assert.equal(s.stats.received, 1);
    b.close();
  });

  test("close() lets every subscriber drain what it holds, then end", T, async () => {
    const b = new Broadcast<number>();
    const s1 = b.subscribe({ buffer: 8 });
    const s2 = b.subscribe({ buffer: 8, policy: "drop-oldest" });
    for (const v of [1, 2, 3]) await b.publish(v);
    b.close();
    assert.deepEqual(await collect(s1), [1, 2, 3]);
    assert.deepEqual(await collect(s2), [1, 2, 3]);
    await assert.rejects(b.publish(4), ChannelClosedError);
  });

  test("a \"disconnect\" subscriber that falls behind ends by throwing LaggedError (ERR_LAGGED, missed)", T, async () => {
    const b = new Broadcast<number>();
    const s = b.subscribe({ buffer: 2, policy: "disconnect" });
    const it = s[Symbol.asyncIterator]();
    await b.publish(0);
    assert.deepEqual(await it.next(), { value: 0, done: false });
    for (const v of [1, 2, 3]) await b.publish(v); // 3 does not fit: it falls behind
    const seen: number[] = [];
    let err: unknown;
    try {
      for (;;) {
        const r = await it.next();
        if (r.done === true) break;
        seen.push(r.value);
      }
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof LaggedError, `expected LaggedError, got ${String(err)}`);
    assert.equal((err as LaggedError).code, "ERR_LAGGED");
    assert.equal(typeof (err as LaggedError).missed, "number");
    assert.ok((err as LaggedError).missed >= 1);
    // what it lost is what was published and never received
    assert.equal((err as LaggedError).missed, 4 - 1 - seen.length);
    await b.publish(4);
    assert.equal((await it.next()).done, true, "after the LaggedError the iteration is over");
    b.close();
  });
});

describe("interop: Node and web streams", () => {
  test("toReadable(source, { highWaterMark }): an object-mode Readable that pulls only when read", T, async () => {
    const src = countedAsync(100);
    const r = toReadable(src.it, { highWaterMark: 2 });
    assert.ok(r instanceof Readable);
    assert.equal(r.readableObjectMode, true);
    assert.equal(r.readableHighWaterMark, 2);
    await settle(20);
    assert.equal(src.pulled(), 0, "nothing pulled before a read");
    const got: number[] = [];
    for await (const v of r) {
      got.push(v as number);
      if (got.length === 3) break;
    }
    assert.ok(src.pulled() <= 3 + 2 + 1, `pulled ${src.pulled()} for 3 reads with highWaterMark 2`);
    await until(() => src.closed(), "destroy closes the source");
    assertBadOption(() => toReadable(range(1), { highWaterMark: -1 }), RangeError, "highWaterMark");
  });

  test("toWritable(channel): write() returns false while the channel is full; 'drain' when it has room", T, async () => {
    const ch = new Channel<number>(1);
    const w = toWritable(ch);
    assert.ok(w instanceof Writable);
    assert.equal(w.write(1), true, "the channel took it");
    assert.equal(w.write(2), false, "the channel is full");
    const drained = new Promise<void>((r) => w.once("drain", () => r()));
    assert.deepEqual(await ch.recv(), { value: 1, ok: true });
    assert.deepEqual(await ch.recv(), { value: 2, ok: true });
    await drained;
    w.end();
    await new Promise<void>((r) => w.once("finish", () => r()));
    assert.deepEqual(await ch.recv(), { value: undefined, ok: false });
    assert.throws(() => toWritable({} as never), TypeError);
  });

  test("toReadableStream(source): pull-based (nothing pulled until read)", T, async () => {
    const src = countedAsync(50);
    const rs = toReadableStream(src.it);
    assert.ok(rs instanceof ReadableStream);
    await settle(20);
    assert.ok(src.pulled() <= 1, `pulled ${src.pulled()} before any read`);
    const reader = rs.getReader();
    assert.deepEqual(await reader.read(), { value: 0, done: false });
    assert.deepEqual(await reader.read(), { value: 1, done: false });
    await settle(20);
    assert.ok(src.pulled() <= 3, `pulled ${src.pulled()} after 2 reads`);
    await reader.cancel();
    await until(() => src.closed(), "cancel closes the source");
  });

  test("toWritableStream(channel): desiredSize honest, ready waits while the channel is full", T, async () => {
    const ch = new Channel<number>(1);
    const ws = toWritableStream(ch);
    assert.ok(ws instanceof WritableStream);
    const w = ws.getWriter();
    await w.ready;
    await w.write(1);
    const p2 = w.write(2); // the channel is full: this one waits
    await settle();
    assert.ok((w.desiredSize ?? 1) <= 0, `desiredSize ${w.desiredSize} while full`);
    let ready = false;
    void w.ready.then(() => (ready = true));
    await settle();
    assert.equal(ready, false, "ready waits while full");
    assert.deepEqual(await ch.recv(), { value: 1, ok: true });
    await p2;
    await until(() => ready, "ready after room");
    assert.ok((w.desiredSize ?? 0) > 0);
    await w.close();
    assert.deepEqual(await ch.recv(), { value: 2, ok: true });
    assert.deepEqual(await ch.recv(), { value: undefined, ok: false });
  });
});
