import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Channel, parkedWork } from "../../src/index.js";
import { AdaptiveLimit, RateLimiter } from "../../src/flow/index.js";
import { VirtualClock } from "../../src/testing/index.js";
import { flatMap, map, pipeline, rateLimit, tap, type DeadLetter } from "../../src/pipeline/index.js";

const T = { timeout: 20_000 };

async function settle(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r));
}

function drain<T>(ch: Channel<T>): T[] {
  const out: T[] = [];
  for (let r = ch.tryRecv(); r?.ok === true; r = ch.tryRecv()) out.push(r.value);
  return out;
}

describe("stages", () => {
  test("rateLimit lets one item through per token, timed on the limiter's clock; its wait is busy time", T, async () => {
    const clock = new VirtualClock();
    const limiter = new RateLimiter({ rate: 10, burst: 2, clock });
    const got: number[] = [];
    const run = pipeline([1, 2, 3, 4, 5], rateLimit(limiter), tap((x: number) => void got.push(x)), { clock }).run();
    await settle();
    assert.deepEqual(got, [1, 2], "the burst goes at once");
    await clock.advanceAsync(100);
    await settle();
    assert.deepEqual(got, [1, 2, 3]);
    await clock.advanceAsync(200);
    const stats = await run;
    assert.deepEqual(got, [1, 2, 3, 4, 5]);
    assert.equal(stats.stages[0]!.busyMs, 300);
    assert.equal(clock.pending, 0);
    assert.throws(() => rateLimit({} as never), /limiter must be a RateLimiter/);
  });

  test("an abort while rateLimit waits withdraws the wait", T, async () => {
    const clock = new VirtualClock();
    const limiter = new RateLimiter({ rate: 1, burst: 1, clock });
    const ac = new AbortController();
    const run = pipeline([1, 2, 3], rateLimit(limiter), { clock }).run({ signal: ac.signal });
    await settle();
    ac.abort(new Error("stop"));
    await assert.rejects(run, /stop/);
    assert.equal(clock.pending, 0);
    assert.deepEqual(parkedWork(), []);
  });

  test("map under an AdaptiveLimit routes failures to the dead-letter channel too", T, async () => {
    const dead = new Channel<DeadLetter<number>>(50);
    const limit = new AdaptiveLimit({ algorithm: "aimd", initialLimit: 3, minLimit: 1, maxLimit: 6 });
    const out: number[] = [];
    for await (const x of pipeline(
      Array.from({ length: 30 }, (_, i) => i),
      map(async (x: number) => {
        await settle(1);
        if (x % 4 === 0) throw new Error(String(x));
        return x;
      }, { concurrency: limit, deadLetter: dead }),
    )) out.push(x);
    const letters = drain(dead).map((l) => l.item);
    assert.deepEqual([...out, ...letters].sort((a, b) => a - b), Array.from({ length: 30 }, (_, i) => i));
    assert.deepEqual(out, [...out].sort((a, b) => a - b), "ordered by default");
    assert.deepEqual(letters.sort((a, b) => a - b), [0, 4, 8, 12, 16, 20, 24, 28]);
  });

  test("map under an AdaptiveLimit takes a limit unit only once it has an item: an idle stage is not in flight, and its wait is not the work's latency", T, async () => {
    const clock = new VirtualClock();
    const limit = new AdaptiveLimit({ algorithm: "aimd", initialLimit: 4, minLimit: 1, maxLimit: 8, clock });
    const input = new Channel<number>(0);
    const calls: number[] = [];
    const out: number[] = [];
    const run = pipeline(input, map(async (x: number) => (calls.push(x), x * 2), { concurrency: limit }), tap((v: number) => void out.push(v)), { clock }).run();
    await settle();
    assert.equal(limit.inflight, 0, "nothing in flight while the stage waits for items");
    for (const x of [1, 2, 3]) {
      await clock.advanceAsync(50); // the stage waits 50 ms for each item
      await input.send(x);
      await settle();
      assert.equal(limit.inflight, 0, `item ${x} done: nothing in flight`);
    }
    assert.equal(limit.stats.started, 3, "one unit per item, none for the waits");
    assert.equal(limit.stats.lastRttMs, 0, "the latency sampled is the call's (0 ms on the virtual clock), not the 50 ms wait");
    input.close();
    await run;
    assert.deepEqual(out, [2, 4, 6]);
    assert.deepEqual(parkedWork(), []);
  });

  test("flatMap and tap route failures (of fn or of the expansion) to the dead-letter channel", T, async () => {
    const dead = new Channel<DeadLetter<number>>(10);
    function* expand(x: number): Generator<number> {
      yield x * 10;
      if (x === 2) throw new Error("mid-expansion");
      yield x * 10 + 1;
    }
    const p = pipeline(
      [1, 2, 3],
      flatMap((x: number) => expand(x), { deadLetter: dead }),
      tap((y: number) => {
        if (y === 30) throw new Error("tap");
      }, { deadLetter: dead }),
    );
    const out: number[] = [];
    for await (const y of p) out.push(y);
    assert.deepEqual(out, [10, 11, 20, 31], "the element handed on before the failure stays handed on");
    assert.deepEqual(drain(dead).map((l) => [l.item, l.stage]), [[2, "flatMap#0"], [30, "tap#1"]]);
    assert.deepEqual(p.stats.stages.map((s) => s.errors), [1, 1]);
  });

  test("a closed dead-letter channel fails the pipeline", T, async () => {
    const dead = new Channel<DeadLetter<number>>(1);
    dead.close();
    await assert.rejects(pipeline([1], map(() => Promise.reject(new Error("x")), { deadLetter: dead })).run(), { code: "ERR_CHANNEL_CLOSED" });
  });

  test("map as the last stage under run(): a slow call does not hold the other slots back; where results are handed on, order does", T, async () => {
    const shape = async (consume: "run" | "iterate" | "tap"): Promise<number[]> => {
      let release!: () => void;
      const slow = new Promise<void>((r) => (release = r));
      const started: number[] = [];
      const m = map(
        async (x: number) => {
          started.push(x);
          if (x === 0) await slow;
          return x;
        },
        { concurrency: 2 },
      );
      const out: number[] = [];
      let done: Promise<unknown>;
      if (consume === "run") done = pipeline([0, 1, 2, 3, 4, 5], m).run();
      else if (consume === "tap") done = pipeline([0, 1, 2, 3, 4, 5], m, tap((x: number) => void out.push(x))).run();
      else done = (async () => { for await (const x of pipeline([0, 1, 2, 3, 4, 5], m)) out.push(x); })();
      await settle(10);
      const seen = [...started];
      release();
      await done;
      if (consume !== "run") assert.deepEqual(out, [0, 1, 2, 3, 4, 5], `${consume}: in input order`);
      assert.deepEqual(started, [0, 1, 2, 3, 4, 5], `${consume}: every item called once, in input order`);
      return seen;
    };
    assert.deepEqual(await shape("run"), [0, 1, 2, 3, 4, 5], "results dropped: the free slot went on through items 1 to 5 while item 0 ran");
    assert.deepEqual(await shape("iterate"), [0, 1], "results handed on in order: the window waits for item 0");
    assert.deepEqual(await shape("tap"), [0, 1], "map is not last: the same");
    assert.deepEqual(parkedWork(), []);
  });

  test("map as the last stage under run(): at most `concurrency` calls at once, each item once, counted; an async source parks and resumes it", T, async () => {
    const input = new Channel<number>(0);
    let running = 0;
    let peak = 0;
    const called: number[] = [];
    const m = map(
      (x: number): number | Promise<number> => {
        called.push(x);
        if (x % 5 === 0) return x; // a synchronous result: counted and its slot freed at once
        running++;
        peak = Math.max(peak, running);
        return settle(x % 3).then(() => (running--, x));
      },
      { concurrency: 3 },
    );
    const sync = map((x: number) => x, { concurrency: 4 });
    const p = pipeline(input, m);
    const run = p.run();
    for (let i = 0; i < 30; i++) await input.send(i);
    input.close();
    const stats = await run;
    assert.deepEqual(called, Array.from({ length: 30 }, (_, i) => i));
    assert.ok(peak <= 3, `peak ${peak} calls at once`);
    assert.equal(running, 0);
    assert.deepEqual([stats.stages[0]!.in, stats.stages[0]!.out, stats.stages[0]!.errors], [30, 30, 0]);
    const s2 = await pipeline(Array.from({ length: 50 }, (_, i) => i), sync).run();
    assert.deepEqual([s2.stages[0]!.in, s2.stages[0]!.out], [50, 50], "synchronous results");
    assert.deepEqual(parkedWork(), []);
  });

  test("map as the last stage under run(): a failure (thrown or rejected) rejects the run with it, aborts the calls in flight and closes the source", T, async () => {
    for (const how of ["throw", "reject"] as const) {
      let closed = false;
      function* source(): Generator<number> {
        try {
          for (let i = 0; ; i++) yield i;
        } finally {
          closed = true;
        }
      }
      const boom = new Error(how);
      const aborted: number[] = [];
      let running = 0;
      // Items 0-3 end at once; 4, 5 and 6 wait for the run's signal; 7 fails, thrown when it is
      // called or rejected later. Nothing after 7 may start.
      const p = pipeline(
        source(),
        map(
          (x: number, signal: AbortSignal) => {
            if (x === 7 && how === "throw") throw boom;
            running++;
            return (async () => {
              try {
                await settle(1);
                if (x === 7) throw boom;
                if (x > 3) {
                  await new Promise<void>((r) => (signal.aborted ? r() : signal.addEventListener("abort", () => r(), { once: true })));
                  aborted.push(x);
                }
                return x;
              } finally {
                running--;
              }
            })();
          },
          { concurrency: 4 },
        ),
      );
      await assert.rejects(p.run(), (e) => e === boom, how);
      assert.equal(running, 0, `${how}: nothing running`);
      assert.ok(closed, `${how}: the source was closed`);
      assert.deepEqual(aborted.sort((a, b) => a - b), [4, 5, 6], `${how}: the calls in flight heard the abort`);
      assert.deepEqual([p.stats.stages[0]!.in, p.stats.stages[0]!.errors], [8, 1], `${how}: nothing started after the failure`);
      assert.deepEqual(parkedWork(), []);
    }
  });

  test("map, after an abort: a call that ends well starts nothing more, and a closed Channel source keeps what it still buffers (run() and iterated)", T, async () => {
    for (const how of ["run", "iterate"] as const) {
      const ch = new Channel<number>(10);
      for (let i = 0; i < 10; i++) ch.trySend(i);
      ch.close(); // closed with ten buffered: the run's abort cannot close it again to stop the stage
      const ctl = new AbortController();
      const called: number[] = [];
      let started!: () => void;
      const bothStarted = new Promise<void>((r) => (started = r));
      const p = pipeline(
        ch,
        map(
          async (x: number, signal: AbortSignal) => {
            called.push(x);
            if (called.length === 2) started();
            // Ends well once the run is aborted: its slot frees with items still in the source.
            await new Promise<void>((r) => (signal.aborted ? r() : signal.addEventListener("abort", () => r(), { once: true })));
            return x;
          },
          { concurrency: 2 },
        ),
      );
      const run =
        how === "run"
          ? p.run({ signal: ctl.signal })
          : (async () => {
              for await (const v of p.values({ signal: ctl.signal })) assert.fail(`got ${v} after the abort`);
            })();
      await bothStarted;
      const reason = new Error("shutdown");
      ctl.abort(reason);
      await assert.rejects(run, (e) => e === reason, how);
      assert.deepEqual(called, [0, 1], `${how}: nothing started after the abort`);
      assert.deepEqual(drain(ch), [2, 3, 4, 5, 6, 7, 8, 9], `${how}: the items not started stay in the source`);
      assert.equal(p.stats.stages[0]!.in, 2, how);
      assert.deepEqual(parkedWork(), [], how);
    }
  });

  test("a synchronous chain runs inline and still counts every stage; an async stage keeps its own loop", T, async () => {
    const p = pipeline(
      Array.from({ length: 100 }, (_, i) => i),
      map((x: number) => x + 1),
      tap(() => {}),
      map(async (x: number) => x * 2),
      map((x: number) => x - 1),
    );
    const out: number[] = [];
    for await (const x of p) out.push(x);
    assert.deepEqual(out, Array.from({ length: 100 }, (_, i) => (i + 1) * 2 - 1));
    for (const s of p.stats.stages) assert.deepEqual([s.in, s.out], [100, 100], s.name);
  });
});
