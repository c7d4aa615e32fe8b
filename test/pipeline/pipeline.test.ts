import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { describe, test } from "node:test";
import { Channel, parkedWork } from "../../src/index.js";
import { AdaptiveLimit } from "../../src/flow/index.js";
import { observed } from "../../src/core/registry.js";
import { VirtualClock, useClock } from "../../src/testing/index.js";
import { collectWarnings, turns } from "../core/fixtures/probe.js";
import { batch, filter, flatMap, map, pipeline, tap, type DeadLetter, type Pipeline } from "../../src/pipeline/index.js";

const T = { timeout: 20_000 };

/** A sync iterable that records how many items were pulled and whether it was closed. */
function counted(n: number): { it: Iterable<number>; pulled: () => number; closed: () => boolean } {
  let pulled = 0;
  let closed = false;
  const it: Iterable<number> = {
    [Symbol.iterator]: () => ({
      next: () => (pulled < n ? { value: pulled++, done: false } : { value: undefined, done: true }),
      return: () => {
        closed = true;
        return { value: undefined, done: true };
      },
    }),
  };
  return { it, pulled: () => pulled, closed: () => closed };
}

/** Resolves after `n` macrotask turns (lets a running pipeline make all the progress it can). */
async function settle(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r));
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of it) out.push(v);
  return out;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

describe("pipeline: sources and laziness", () => {
  test("starts nothing until it is consumed", T, async () => {
    const src = counted(10);
    const p = pipeline(src.it, map((x: number) => x + 1));
    await settle();
    assert.equal(src.pulled(), 0);
    assert.deepEqual(await collect(p), range(10).map((x) => x + 1));
  });

  test("every kind of source gives the same output", T, async () => {
    const expected = range(50).map((x) => x * 2);
    const ch = new Channel<number>(4);
    void (async () => {
      for (const x of range(50)) await ch.send(x);
      ch.close();
    })();
    async function* gen(): AsyncGenerator<number> {
      for (const x of range(50)) yield x;
    }
    const web = new ReadableStream<number>({
      start(c) {
        for (const x of range(50)) c.enqueue(x);
        c.close();
      },
    });
    const sources = [range(50), new Set(range(50)), gen(), Readable.from(range(50)), web, ch];
    for (const s of sources) {
      assert.deepEqual(await collect(pipeline(s as Iterable<number>, map((x: number) => x * 2))), expected);
    }
  });

  test("a pipeline with no stage yields its source; a pipeline is a source", T, async () => {
    const inner = pipeline(range(5), map((x: number) => x + 1));
    assert.deepEqual(await collect(pipeline(inner, filter((x: number) => x % 2 === 0))), [2, 4]);
    assert.deepEqual(await collect(pipeline([1, 2, 3])), [1, 2, 3]);
  });

  test("runs once: a second consumption throws", T, async () => {
    const p = pipeline([1, 2]);
    await p.run();
    await assert.rejects(p.run(), /runs once/);
    await assert.rejects(p.values().next(), /runs once/);
  });

  test("bad arguments are refused at once, naming what is wrong", () => {
    assert.throws(() => pipeline(42 as unknown as number[]), TypeError);
    assert.throws(() => pipeline([1], {} as never, map((x: number) => x)), TypeError);
    assert.throws(() => map(1 as never), /fn must be a function/);
    assert.throws(() => map((x) => x, { concurrency: 0 }), /options.concurrency must be a positive safe integer, got 0/);
    assert.throws(() => map((x) => x, { concurrency: Infinity }), RangeError);
    assert.throws(() => map((x) => x, { buffer: -1 }), /options.buffer must be a non-negative safe integer, got -1/);
    assert.throws(() => map((x) => x, { ordered: "yes" as never }), TypeError);
    assert.throws(() => map((x) => x, { deadLetter: [] as never }), /deadLetter must be a Channel/);
    assert.throws(() => batch({ size: 0 }), /options.size must be a positive safe integer, got 0/);
    assert.throws(() => batch({ size: 2, maxWaitMs: -1 }), RangeError);
    assert.throws(() => batch(undefined as never), TypeError);
    assert.throws(() => filter(undefined as never), TypeError);
    assert.throws(() => pipeline([1], { sourceBuffer: -1 }), RangeError);
  });
});

describe("pipeline: failure, abort, stop", () => {
  test("the first failure rejects run with that error, unchanged; in-flight calls see it; the source is closed", T, async () => {
    const src = counted(1000);
    const boom = new Error("boom");
    const seen: unknown[] = [];
    const p = pipeline(
      src.it,
      map(
        async (x: number, signal: AbortSignal) => {
          if (x === 5) throw boom;
          await new Promise<void>((resolve) => {
            if (x < 3) return resolve();
            signal.addEventListener("abort", () => {
              seen.push(signal.reason);
              resolve();
            });
          });
          return x;
        },
        { concurrency: 8 },
      ),
      tap(() => {}),
    );
    await assert.rejects(p.run(), (e) => e === boom);
    assert.ok(seen.length > 0 && seen.every((r) => r === boom), "running calls got the failure as their signal's reason");
    assert.ok(src.closed(), "the source's return() was called");
    assert.ok(src.pulled() < 100, "nothing more was pulled");
    assert.deepEqual(parkedWork(), []);
    assert.equal(p.stats.stages[0]!.errors, 1);
  });

  test("a failing source fails the run with its error; the iteration throws it", T, async () => {
    const boom = new Error("source broke");
    async function* gen(): AsyncGenerator<number> {
      yield 1;
      throw boom;
    }
    const got: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const x of pipeline(gen(), map((x: number) => x))) got.push(x);
      })(),
      (e) => e === boom,
    );
    assert.deepEqual(parkedWork(), []);
  });

  test("an abort reaches every concurrent map of a long pipeline, idle or busy, without a listener-leak warning", T, async () => {
    const w = collectWarnings();
    try {
      const src = new Channel<number>(0);
      const ac = new AbortController();
      const reason = new Error("shutdown");
      const seen: AbortSignal[] = [];
      let bothStarted!: () => void;
      const started = new Promise<void>((r) => (bothStarted = r));
      // Twelve windows on one run signal; the last one's calls hang until their signal aborts.
      const stages = Array.from({ length: 11 }, () => map((x: number) => x + 1, { concurrency: 2 }));
      const hang = map(
        (x: number, signal: AbortSignal) =>
          new Promise<number>((_, reject) => {
            seen.push(signal);
            if (seen.length === 2) bothStarted();
            signal.addEventListener("abort", () => reject(signal.reason as Error), { once: true });
            void x;
          }),
        { concurrency: 2 },
      );
      const run = pipeline(src, ...stages, hang).run({ signal: ac.signal });
      await src.send(1);
      await src.send(2);
      await started; // both calls of the last window in flight, the windows before it idle
      assert.equal(seen.length, 2);
      ac.abort(reason);
      await assert.rejects(run, (e) => e === reason);
      await turns(3);
      assert.equal(w.warnings.filter((x) => x.name === "MaxListenersExceededWarning").length, 0);
      assert.deepEqual(parkedWork(), []);
    } finally {
      w.stop();
    }
  });

  test("an abort rejects with signal.reason and closes a generator source (its finally runs)", T, async () => {
    let finallyRan = false;
    async function* gen(): AsyncGenerator<number> {
      try {
        for (let i = 0; ; i++) yield i;
      } finally {
        finallyRan = true;
      }
    }
    const ac = new AbortController();
    const reason = new Error("shutdown");
    const p = pipeline(
      gen(),
      map(async (x: number) => {
        if (x === 20) ac.abort(reason);
        return x;
      }),
    );
    await assert.rejects(p.run({ signal: ac.signal }), (e) => e === reason);
    assert.ok(finallyRan);
    assert.deepEqual(parkedWork(), []);
  });

  test("an already-aborted signal rejects at once and reads nothing", T, async () => {
    const src = counted(10);
    const reason = new Error("early");
    await assert.rejects(pipeline(src.it, map((x: number) => x)).run({ signal: AbortSignal.abort(reason) }), (e) => e === reason);
    assert.equal(src.pulled(), 0);
    const it = pipeline(counted(3).it).values({ signal: AbortSignal.abort(reason) });
    await assert.rejects(it.next(), (e) => e === reason);
  });

  test("an already-aborted signal wins and does nothing (run() and values()): the source is left as it is, the pipeline is not consumed", T, async () => {
    const reason = new Error("early");
    for (const how of ["run", "values"] as const) {
      const consume = (p: Pipeline<number>): Promise<unknown> =>
        how === "run" ? p.run({ signal: AbortSignal.abort(reason) }) : p.values({ signal: AbortSignal.abort(reason) }).next();
      const ch = new Channel<number>(4);
      ch.trySend(1);
      ch.trySend(2);
      ch.close();
      const p = pipeline(ch, map((x: number) => x * 10));
      await assert.rejects(consume(p), (e) => e === reason, how);
      assert.equal(ch.length, 2, `${how}: nothing was read`);
      const it = p.values({ signal: AbortSignal.abort(reason) });
      await assert.rejects(it.next(), (e) => e === reason, how);
      assert.deepEqual(await it.return!(), { value: undefined, done: true }, `${how}: return() after it claims nothing`);
      const readable = new Readable({ objectMode: true, read() {} });
      await assert.rejects(consume(pipeline(readable, map((x: number) => x))), (e) => e === reason, how);
      assert.equal(readable.destroyed, false, `${how}: a Readable source is left open`);
      let cancelled = false;
      const web = new ReadableStream<number>({ cancel: () => void (cancelled = true) });
      await assert.rejects(consume(pipeline(web, map((x: number) => x))), (e) => e === reason, how);
      assert.equal(cancelled, false, `${how}: a web stream source is not cancelled`);
      readable.destroy();
      assert.deepEqual(parkedWork(), [], how);
      // Not consumed: it runs later, and once consumed the aborted signal still wins.
      const out: number[] = [];
      for await (const v of p) out.push(v);
      assert.deepEqual(out, [10, 20], `${how}: the pipeline runs afterwards`);
      await assert.rejects(consume(p), (e) => e === reason, `${how}: consumed, an aborted signal still wins`);
    }
  });

  test("an abort while the consumer waits rejects its next() with the reason, after everything stopped", T, async () => {
    const ch = new Channel<number>(); // a producer that never sends
    const ac = new AbortController();
    const it = pipeline(ch, map((x: number) => x)).values({ signal: ac.signal });
    const pending = it.next();
    await settle();
    const reason = new Error("bye");
    ac.abort(reason);
    await assert.rejects(pending, (e) => e === reason);
    assert.ok(ch.closed, "a channel source is closed");
    assert.deepEqual(parkedWork(), []);
    assert.deepEqual(await it.next(), { value: undefined, done: true });
  });

  test("break stops everything without an error: the source is closed, running calls are signalled", T, async () => {
    const src = counted(Number.MAX_SAFE_INTEGER);
    let aborted = 0;
    let waiting = 0;
    let allWaiting!: () => void;
    const fourWaiting = new Promise<void>((r) => (allWaiting = r));
    const p = pipeline(
      src.it,
      map(
        async (x: number, signal: AbortSignal) => {
          if (x >= 5) {
            if (++waiting === 4) allWaiting();
            await new Promise<void>((r) => signal.addEventListener("abort", () => (aborted++, r())));
          }
          return x;
        },
        { concurrency: 4, ordered: false },
      ),
    );
    const got: number[] = [];
    for await (const x of p) {
      got.push(x);
      if (got.length === 5) {
        await fourWaiting;
        break;
      }
    }
    assert.deepEqual(got, [0, 1, 2, 3, 4]);
    assert.ok(src.closed());
    assert.equal(aborted, 4, "the four running calls saw their signal abort before break returned");
    assert.deepEqual(parkedWork(), []);
  });

  test("a Node Readable source is destroyed and a web stream cancelled on failure", T, async () => {
    const boom = new Error("x");
    let n = 0;
    const readable = new Readable({
      objectMode: true,
      read() {
        this.push(n++);
      },
    });
    await assert.rejects(pipeline(readable, map((x: number) => (x === 3 ? Promise.reject(boom) : x))).run(), (e) => e === boom);
    assert.ok(readable.destroyed);
    let cancelled: unknown = "no";
    let k = 0;
    const web = new ReadableStream<number>({
      pull(c) {
        c.enqueue(k++);
      },
      cancel(reason) {
        cancelled = reason;
      },
    });
    await assert.rejects(pipeline(web, map((x: number) => (x === 3 ? Promise.reject(boom) : x))).run(), (e) => e === boom);
    assert.equal(cancelled, boom);
  });
});

describe("pipeline: backpressure and bounds", () => {
  test("a stage function that stops reading ends the run at once, even while its upstream waits on an idle source", T, async () => {
    for (const concurrency of [1, 4]) {
      const src = new Channel<number>(0);
      async function* firstOnly(input: AsyncIterable<number>): AsyncGenerator<number> {
        for await (const x of input) {
          yield x;
          return;
        }
      }
      const out: number[] = [];
      const p = pipeline(src, map(async (x: number) => x * 10, { concurrency }), firstOnly, tap((x: number) => void out.push(x)));
      const run = p.run();
      await src.send(1);
      await src.send(2); // taken by the map while firstOnly has not yet returned; nothing more comes
      const stats = await run; // ends although the source is open and idle
      assert.deepEqual(out, [10]);
      assert.ok(src.closed, "a Channel source is closed once nobody reads what it feeds");
      await assert.rejects(src.send(3), /closed/);
      assert.equal(stats.stages[1]!.out, 1);
      assert.deepEqual(parkedWork(), [], `concurrency ${concurrency}`);
    }
  });

  test("a consumer that stops reading stops the source: items pulled stay within buffers plus what stages hold", T, async () => {
    const src = counted(100_000);
    const p = pipeline(src.it, map((x: number) => x, { buffer: 4 }), filter(() => true, { buffer: 2 }), batch({ size: 3, buffer: 1 }), { sourceBuffer: 5 });
    const it = p[Symbol.asyncIterator]();
    await it.next(); // the consumer holds one batch and reads no more
    await settle(20);
    // source link 5 + pump 1 + map 1 + link 4 + filter 1 + link 2 + batch (3 filling + 3 sending) + link 1 batch (3) + consumer's batch (3)
    const bound = 5 + 1 + 1 + 4 + 1 + 2 + 3 + 3 + 3 + 3;
    assert.ok(src.pulled() <= bound, `pulled ${src.pulled()} > ${bound}`);
    assert.ok(src.pulled() > 10, "the pipeline filled its buffers");
    await it.return!();
    assert.ok(src.closed());
  });

  test("a consumer slower than the last stage gets every item once, in order, and the stage's waits for it count as blocked", T, async () => {
    for (const last of [
      map((x: number) => x * 2, { buffer: 4 }),
      map(async (x: number) => x * 2, { concurrency: 3, buffer: 4 }),
      map(async (x: number) => x * 2, { concurrency: new AdaptiveLimit({ initialLimit: 2, minLimit: 1, maxLimit: 4 }), buffer: 4 }),
    ]) {
      const clock = new VirtualClock();
      const p = pipeline(range(200), last, { clock });
      const got: number[] = [];
      for await (const x of p) {
        got.push(x);
        await settle(1); // the stage fills the output link and waits for room
        clock.advance(1);
      }
      assert.deepEqual(got, range(200).map((x) => x * 2));
      assert.ok(p.stats.stages[0]!.blockedMs > 0, `blocked ${p.stats.stages[0]!.blockedMs} ms`);
      assert.deepEqual(parkedWork(), []);
    }
  });

  test("the last stage waiting for room in the output link shows in parkedWork(), and a stop or an abort ends the wait", T, async () => {
    for (const how of ["break", "abort"] as const) {
      const src = counted(Number.MAX_SAFE_INTEGER);
      const ac = new AbortController();
      const it = pipeline(src.it, map(async (x: number) => x, { concurrency: 4, buffer: 2 })).values({ signal: ac.signal });
      assert.deepEqual(await it.next(), { value: 0, done: false });
      await settle(); // the link refills and the stage's next hand-on waits for room
      const parked = parkedWork();
      assert.equal(parked.length, 1, JSON.stringify(parked));
      assert.equal(parked[0]!.role, "send");
      assert.equal(parked[0]!.count, 1);
      assert.match(parked[0]!.boundary, /capacity 2/);
      if (how === "break") {
        await it.return!();
      } else {
        const reason = new Error("bye");
        ac.abort(reason);
        await assert.rejects(it.next(), (e) => e === reason);
      }
      assert.ok(src.closed(), `${how}: the source is closed`);
      assert.deepEqual(parkedWork(), [], how);
      // The consumer's item, the link's two, and the window's four (the waiting hand-on among them).
      assert.equal(src.pulled(), 1 + 2 + 4, how);
    }
  });

  test("blockedMs names the bottleneck: the stage before a slow one is blocked, the slow one is busy", T, async () => {
    const clock = new VirtualClock();
    const p = pipeline(
      range(20),
      map((x: number) => x, { buffer: 1 }),
      map(
        async (x: number) => {
          await new Promise<void>((r) => clock.setTimeout(r, 10));
          return x;
        },
        { buffer: 1 },
      ),
      { clock },
    );
    const done = p.run();
    while (clock.pending === 0) await settle(1);
    for (let i = 0; i < 20; i++) await clock.advanceAsync(10);
    await done;
    const [fast, slow] = p.stats.stages;
    assert.equal(slow!.busyMs, 200);
    assert.equal(slow!.blockedMs, 0);
    assert.ok(fast!.blockedMs >= 150, `fast stage blocked ${fast!.blockedMs}`);
    assert.equal(fast!.busyMs, 0);
  });
});

describe("pipeline: stages", () => {
  test("map ordered keeps input order under random delays; unordered yields everything once", T, async () => {
    const delay = (x: number): Promise<number> => new Promise((r) => setTimeout(() => r(x), (x * 7) % 5));
    assert.deepEqual(await collect(pipeline(range(60), map(delay, { concurrency: 6 }))), range(60));
    const un = await collect(pipeline(range(60), map(delay, { concurrency: 6, ordered: false })));
    assert.deepEqual([...un].sort((a, b) => a - b), range(60));
  });

  test("map with concurrency: busyMs is the sum of the calls' durations, blockedMs the waits for room", T, async () => {
    const clock = new VirtualClock();
    const durations = [10, 30, 20, 10, 40, 10];
    const p = pipeline(
      range(durations.length),
      map(async (i: number) => {
        await new Promise<void>((r) => clock.setTimeout(r, durations[i]!));
        return i;
      }, { concurrency: 3, buffer: 0 }),
      { clock },
    );
    const out: number[] = [];
    const consumer = (async () => {
      for await (const v of p) out.push(v);
    })();
    while (clock.pending === 0) await settle(1);
    for (let t = 0; t < 200 && clock.pending > 0; t++) await clock.advanceAsync(5);
    await consumer;
    assert.deepEqual(out, range(durations.length), "input order");
    const [st] = p.stats.stages;
    assert.equal(st!.busyMs, durations.reduce((a, b) => a + b, 0), "every call timed (an injected clock)");
    assert.equal(st!.blockedMs, 0, "the consumer was always waiting");
    assert.equal(clock.pending, 0);
  });

  test("map unordered with concurrency: a slow call does not lose its item while faster ones overtake it", T, async () => {
    const dead = new Channel<DeadLetter<number>>(10);
    const out = await collect(pipeline(range(8), map(async (x: number) => {
      await settle(x === 0 || x === 5 ? 12 : 1); // 0 and 5 are overtaken by every item after them
      if (x % 4 === 1) throw new Error(`bad ${x}`);
      return x * 10;
    }, { concurrency: 2, ordered: false, deadLetter: dead })));
    dead.close();
    const letters: number[] = [];
    for await (const l of dead) letters.push(l.item);
    assert.deepEqual([...out].sort((a, b) => a - b), [0, 20, 30, 40, 60, 70]);
    assert.deepEqual(letters.sort((a, b) => a - b), [1, 5], "each failure carries its own item");
  });

  test("map with concurrency: a synchronous source that throws mid-run fails the run with its error", T, async () => {
    const boom = new Error("source broke");
    function* source(): Generator<number> {
      for (let i = 0; i < 20; i++) {
        if (i === 7) throw boom;
        yield i;
      }
    }
    for (const ordered of [true, false]) {
      const seen: number[] = [];
      const p = pipeline(source(), map(async (x: number) => (await settle(1), x), { concurrency: 3, ordered }));
      await assert.rejects(async () => {
        for await (const x of p) seen.push(x);
      }, (e) => e === boom);
      assert.ok(seen.length <= 7, `only items before the failure come out (${seen.length})`);
      assert.deepEqual(parkedWork(), []);
    }
  });

  test("map with concurrency: a failure while handing on fails the run at once, and the calls in flight see it", T, async () => {
    for (const [variant, concurrency] of [
      ["a later inline step throws", 3], ["a closed dead-letter channel", 3],
      ["a later inline step throws", new AdaptiveLimit({ initialLimit: 3, minLimit: 1, maxLimit: 3 })],
      ["a closed dead-letter channel", new AdaptiveLimit({ initialLimit: 3, minLimit: 1, maxLimit: 3 })],
    ] as const) {
      const src = new Channel<number>(0);
      const boom = new Error("boom");
      const closedDead = new Channel<DeadLetter<number>>(0);
      closedDead.close();
      let sawSignal = false;
      const waitsForSignal = async (x: number, signal: AbortSignal): Promise<number> => {
        if (x === 1) {
          await settle(2);
          if (variant === "a closed dead-letter channel") throw boom;
          return x;
        }
        await new Promise((r) => signal.addEventListener("abort", r, { once: true }));
        sawSignal = true;
        return x;
      };
      const stages = variant === "a later inline step throws"
        ? [map(waitsForSignal, { concurrency, ordered: false }), map((): number => { throw boom; })] as const
        : [map(waitsForSignal, { concurrency, ordered: false, deadLetter: closedDead })] as const;
      const run = pipeline(src, ...stages).run();
      const sending = (async () => {
        for (const x of [2, 1]) await src.send(x);
      })().catch(() => undefined);
      // The source stays open and idle: only the run's own abort can end it.
      await assert.rejects(run, (e) => (variant === "a later inline step throws" ? e === boom : e instanceof Error && /closed/.test(e.message)));
      await sending;
      const how = `${variant}, concurrency ${typeof concurrency === "number" ? concurrency : "AdaptiveLimit"}`;
      assert.ok(sawSignal, `${how}: the call in flight was signalled`);
      assert.deepEqual(parkedWork(), [], how);
    }
  });

  test("map with concurrency follows a foreign thenable once, even one that calls back twice", T, async () => {
    const twice = (x: number): PromiseLike<number> => ({
      then(ok?: ((v: number) => unknown) | null) {
        ok?.(x);
        ok?.(x + 1000);
        return undefined as never;
      },
    });
    const out = await collect(pipeline(range(6), map(twice, { concurrency: 2 })));
    assert.deepEqual(out, range(6));
  });

  test("map with concurrency and a synchronous fn: a long run takes no stack and keeps order", T, async () => {
    for (const ordered of [true, false]) {
      const n = 50_000;
      let sum = 0;
      let count = 0;
      let last = -1;
      let inOrder = true;
      const stats = await pipeline(range(n), map((x: number) => x * 2, { concurrency: 4, ordered }), tap((v: number) => {
        if (v < last) inOrder = false;
        last = v;
        sum += v;
        count++;
      })).run();
      assert.equal(count, n);
      assert.equal(sum, n * (n - 1));
      assert.ok(inOrder, "a synchronous fn hands results on in input order");
      assert.equal(stats.stages[0]!.in, n);
      assert.equal(stats.stages[0]!.out, n);
    }
  });

  test("map with concurrency: a failure rejects the run only once the calls in flight have settled, each told through its signal", T, async () => {
    const boom = new Error("boom");
    const settledCalls: string[] = [];
    const p = pipeline(range(10), map(async (x: number, signal: AbortSignal) => {
      if (x === 2) {
        await settle(1);
        throw boom;
      }
      await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
      await settle(2); // settles a little after the abort
      settledCalls.push(`call ${x} saw ${String((signal.reason as Error).message)}`);
      return x;
    }, { concurrency: 4 }));
    await assert.rejects(p.run(), (e) => e === boom);
    assert.deepEqual(settledCalls.sort(), ["call 0 saw boom", "call 1 saw boom", "call 3 saw boom"]);
    assert.deepEqual(parkedWork(), []);
  });

  test("map never runs more than its concurrency, a number or an AdaptiveLimit", T, async () => {
    for (const concurrency of [3, new AdaptiveLimit({ algorithm: "aimd", initialLimit: 2, minLimit: 1, maxLimit: 4 })]) {
      let running = 0;
      let peak = 0;
      const cap = typeof concurrency === "number" ? concurrency : 4;
      await pipeline(
        range(40),
        map(
          async (x: number) => {
            running++;
            peak = Math.max(peak, running);
            await settle(1);
            running--;
            return x;
          },
          { concurrency },
        ),
      ).run();
      assert.ok(peak <= cap && peak >= 1, `peak ${peak}`);
    }
  });

  test("failures go to the dead-letter channel and the stage goes on", T, async () => {
    const dead = new Channel<DeadLetter<number>>(100);
    for (const concurrency of [1, 4]) {
      const p = pipeline(
        range(20),
        map((x: number) => (x % 5 === 0 ? Promise.reject(new Error(`bad ${x}`)) : x), { concurrency, deadLetter: dead, name: "check" }),
        filter((x: number) => {
          if (x === 7) throw new Error("seven");
          return true;
        }, { deadLetter: dead }),
      );
      const out = await collect(p);
      assert.deepEqual(out, range(20).filter((x) => x % 5 !== 0 && x !== 7));
      const letters: DeadLetter<number>[] = [];
      for (let r = dead.tryRecv(); r?.ok; r = dead.tryRecv()) letters.push(r.value);
      assert.deepEqual(letters.map((l) => l.item).sort((a, b) => a - b), [0, 5, 7, 10, 15]);
      assert.equal(letters.find((l) => l.item === 7)!.stage, "filter#1");
      assert.equal(letters.find((l) => l.item === 5)!.stage, "check");
      const [m, f] = p.stats.stages;
      assert.equal(m!.errors, 4);
      assert.equal(m!.in, m!.out + m!.errors);
      assert.equal(f!.errors, 1);
    }
  });

  test("calls that fail because the run was aborted are not dead letters", T, async () => {
    for (const concurrency of [1, 4, new AdaptiveLimit({ initialLimit: 4, minLimit: 1, maxLimit: 4 })]) {
      const dead = new Channel<DeadLetter<number>>(100);
      const ac = new AbortController();
      let started = 0;
      const wanted = typeof concurrency === "number" ? concurrency : 4;
      const p = pipeline(
        range(100),
        map(
          (_x: number, signal: AbortSignal) =>
            new Promise<number>((_resolve, reject) => {
              if (++started === wanted) queueMicrotask(() => ac.abort(new Error("stop")));
              signal.addEventListener("abort", () => reject(signal.reason), { once: true });
            }),
          { concurrency, deadLetter: dead },
        ),
      );
      await assert.rejects(p.run({ signal: ac.signal }), /stop/);
      assert.equal(started, wanted, "every slot held a call when the run was aborted");
      assert.equal(dead.length, 0, `an aborted call is not the item's failure (concurrency ${String(wanted)}, ${typeof concurrency})`);
      assert.equal(p.stats.stages[0]!.errors, 0);
      assert.deepEqual(parkedWork(), []);
    }
  });

  test("filter counts what it rejects as dropped; flatMap expands lazily", T, async () => {
    const p = pipeline(range(10), filter((x: number) => x % 2 === 0), flatMap((x: number) => [x, x]));
    assert.deepEqual(await collect(p), [0, 0, 2, 2, 4, 4, 6, 6, 8, 8]);
    assert.deepEqual(
      p.stats.stages.map((s) => [s.name, s.in, s.out, s.dropped]),
      [["filter#0", 10, 5, 5], ["flatMap#1", 5, 10, 0]],
    );
    // An endless expansion is pulled only as far as it is read.
    let produced = 0;
    function* forever(): Generator<number> {
      for (;;) yield produced++;
    }
    const it = pipeline([1], flatMap(() => forever(), { buffer: 2 }))[Symbol.asyncIterator]();
    for (let i = 0; i < 3; i++) await it.next();
    await settle(10);
    assert.ok(produced <= 3 + 2 + 1, `produced ${produced}`);
    await it.return!();
  });

  test("batch: full batches, then the rest at the end", T, async () => {
    assert.deepEqual(await collect(pipeline(range(7), batch<number>({ size: 3 }))), [[0, 1, 2], [3, 4, 5], [6]]);
  });

  test("batch: a partial batch goes out after maxWaitMs, timed on the virtual clock; no timer is left", T, async () => {
    const clock = new VirtualClock();
    const restore = useClock(clock);
    try {
      const ch = new Channel<number>(10);
      const it = pipeline(ch, batch<number>({ size: 5, maxWaitMs: 100 }))[Symbol.asyncIterator]();
      await ch.send(1);
      await ch.send(2);
      const first = it.next();
      await settle();
      await clock.advanceAsync(99);
      let resolved = false;
      void first.then(() => (resolved = true));
      await settle();
      assert.equal(resolved, false);
      await clock.advanceAsync(1);
      assert.deepEqual(await first, { value: [1, 2], done: false });
      assert.equal(clock.pending, 0);
      for (const x of [3, 4, 5, 6, 7, 8]) await ch.send(x);
      assert.deepEqual((await it.next()).value, [3, 4, 5, 6, 7]);
      const rest = it.next();
      await settle();
      assert.equal(clock.pending, 1);
      ch.close();
      assert.deepEqual((await rest).value, [8]);
      assert.equal((await it.next()).done, true);
      assert.equal(clock.pending, 0);
    } finally {
      restore();
    }
  });

  test("batch: an abort while a partial batch waits clears its timer", T, async () => {
    const clock = new VirtualClock();
    const ch = new Channel<number>(10);
    const ac = new AbortController();
    const run = pipeline(ch, batch<number>({ size: 5, maxWaitMs: 100 }), { clock }).run({ signal: ac.signal });
    await ch.send(1);
    await settle();
    assert.equal(clock.pending, 1);
    ac.abort(new Error("stop"));
    await assert.rejects(run, /stop/);
    assert.equal(clock.pending, 0);
    assert.deepEqual(parkedWork(), []);
  });

  test("a stage function from one async iterable to another; one that stops early ends the run quietly", T, async () => {
    async function* pairs(input: AsyncIterable<number>): AsyncGenerator<[number, number]> {
      let prev: number | undefined;
      for await (const x of input) {
        if (prev !== undefined) yield [prev, x];
        prev = x;
      }
    }
    assert.deepEqual(await collect(pipeline(range(4), pairs)), [[0, 1], [1, 2], [2, 3]]);
    const src = counted(1_000_000);
    async function* take3(input: AsyncIterable<number>): AsyncGenerator<number> {
      let n = 0;
      for await (const x of input) {
        yield x;
        if (++n === 3) return;
      }
    }
    const p = pipeline(src.it, map((x: number) => x), take3);
    const stats = await p.run();
    assert.equal(stats.stages[1]!.out, 3);
    assert.equal(stats.stages[1]!.name, "take3#1");
    assert.ok(src.closed());
    assert.ok(src.pulled() < 100);
  });
});

describe("pipeline: stats and registry", () => {
  test("stats: one entry per stage, default names kind#index, the name option, zeros before the run", T, async () => {
    const p = pipeline(range(5), map((x: number) => x), tap(() => {}, { name: "log" }), batch<number>({ size: 2 }));
    assert.deepEqual(p.stats.stages.map((s) => [s.name, s.in, s.out]), [["map#0", 0, 0], ["log", 0, 0], ["batch#2", 0, 0]]);
    const stats = await p.run();
    assert.deepEqual(stats.stages.map((s) => [s.name, s.in, s.out]), [["map#0", 5, 5], ["log", 5, 5], ["batch#2", 5, 3]]);
  });

  test("a named pipeline registers its stages as pipeline-stage boundaries", T, async () => {
    const p = pipeline(range(3), map((x: number) => x, { name: "double" }), { name: "orders" });
    await p.run();
    const mine = [...observed()].filter((o) => o.kind === "pipeline-stage" && o.boundary.name === "orders/double");
    assert.equal(mine.length, 1);
    assert.deepEqual(mine[0]!.boundary.stats, { ...p.stats.stages[0]!, name: "orders/double" });
    const before = [...observed()].length;
    pipeline(range(3), map((x: number) => x));
    assert.equal([...observed()].length, before, "an unnamed pipeline registers nothing");
  });
});
