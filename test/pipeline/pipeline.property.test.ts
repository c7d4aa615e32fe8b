/**
 * Property tests of pipelines under random shapes, timings, buffers, concurrencies and
 * failures: every input comes out exactly once or is counted as dropped / dead-lettered; order
 * holds where promised; the items alive never exceed the bound the links and stages imply;
 * after a failure or an abort nothing is left parked or running and the source was closed.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { Channel, parkedWork } from "../../src/index.js";
import { batch, filter, flatMap, map, pipeline, tap, type DeadLetter, type Stage } from "../../src/pipeline/index.js";

const T = { timeout: 120_000 };

/** Waits `n` turns of the event loop (a random delay that is not wall-clock time). */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r));
}

type StageSpec =
  | { kind: "map"; concurrency: number; ordered: boolean; buffer: number; delays: number[] }
  | { kind: "filter"; buffer: number; keepMod: number }
  | { kind: "tap"; buffer: number; delays: number[] }
  | { kind: "batch"; buffer: number; size: number };

const delays = fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 5 });
const stageSpec: fc.Arbitrary<StageSpec> = fc.oneof(
  fc.record({ kind: fc.constant("map" as const), concurrency: fc.integer({ min: 1, max: 5 }), ordered: fc.boolean(), buffer: fc.integer({ min: 0, max: 4 }), delays }),
  fc.record({ kind: fc.constant("filter" as const), buffer: fc.integer({ min: 0, max: 4 }), keepMod: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ kind: fc.constant("tap" as const), buffer: fc.integer({ min: 0, max: 4 }), delays }),
  fc.record({ kind: fc.constant("batch" as const), buffer: fc.integer({ min: 0, max: 3 }), size: fc.integer({ min: 1, max: 4 }) }),
);

/** Items travel as arrays (a batch stage's output), flattened again by the next stage. */
type Item = number[];

interface Built {
  stages: Stage<Item, Item>[];
  /** Upper bound on items alive (pulled, not yet consumed or dropped). */
  bound: number;
  ordered: boolean;
  /** Values the filters keep. */
  keep: (x: number) => boolean;
}

function build(specs: StageSpec[], sourceBuffer: number, alive: { n: number }): Built {
  const stages: Stage<Item, Item>[] = [];
  let bound = sourceBuffer + 1; // the source link and the pump's item in hand
  let unit = 1; // the most items in one unit travelling between stages
  let ordered = true;
  const mods: number[] = [];
  specs.forEach((s, i) => {
    const d = "delays" in s ? s.delays : [0];
    switch (s.kind) {
      case "map":
        stages.push(map(async (xs: Item) => (await turns(d[xs[0]! % d.length]!), xs), { concurrency: s.concurrency, ordered: s.ordered, buffer: s.buffer }));
        bound += s.concurrency * unit + s.buffer * unit;
        if (!s.ordered && s.concurrency > 1) ordered = false;
        break;
      case "filter":
        mods.push(s.keepMod);
        stages.push(
          filter(
            (xs: Item) => {
              const keep = xs.filter((x) => x % s.keepMod !== 1 % s.keepMod || s.keepMod === 1);
              const gone = xs.length - keep.length;
              if (keep.length === 0) {
                alive.n -= gone;
                return false;
              }
              if (gone > 0) alive.n -= gone;
              xs.splice(0, xs.length, ...keep);
              return true;
            },
            { buffer: s.buffer },
          ),
        );
        bound += unit + s.buffer * unit;
        break;
      case "tap":
        stages.push(tap(async (xs: Item) => void (await turns(d[xs[0]! % d.length]!)), { buffer: s.buffer }));
        bound += unit + s.buffer * unit;
        break;
      case "batch": {
        // Flatten what arrives, batch it, and flatten the batch into one array again.
        stages.push(flatMap((xs: Item) => xs.map((x) => [x]), { buffer: 0, name: `flat${i}` }) as Stage<Item, Item>);
        bound += unit; // the flatMap holds one unit while expanding it
        stages.push(map((b: Item[]) => b.flat(), { buffer: s.buffer }) as unknown as Stage<Item, Item>);
        const inner = batch<Item>({ size: s.size, buffer: 0 });
        stages.splice(stages.length - 1, 0, inner as unknown as Stage<Item, Item>);
        bound += s.size; // batch holds at most one batch
        unit = s.size;
        bound += unit + s.buffer * unit; // the flattening map and its link
        break;
      }
    }
  });
  bound += unit; // the consumer's unit in hand
  const keep = (x: number): boolean => mods.every((m) => m === 1 || x % m !== 1 % m);
  return { stages, bound, ordered, keep };
}

describe("pipeline properties", () => {
  test("every input comes out once or is dropped, in order where promised, within the bound on items alive", T, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(stageSpec, { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 0, max: 60 }),
        fc.integer({ min: 0, max: 4 }),
        fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 6 }),
        async (specs, n, sourceBuffer, consumerDelays) => {
          const alive = { n: 0, peak: 0 };
          const { stages, bound, ordered, keep } = build(specs, sourceBuffer, alive);
          function* source(): Generator<Item> {
            for (let i = 0; i < n; i++) {
              alive.n++;
              alive.peak = Math.max(alive.peak, alive.n);
              yield [i];
            }
          }
          const p = pipeline(source(), ...(stages as [Stage<Item, Item>]), { sourceBuffer });
          const out: number[] = [];
          let k = 0;
          for await (const xs of p) {
            out.push(...xs);
            await turns(consumerDelays[k++ % consumerDelays.length]!);
            alive.n -= xs.length;
          }
          const expected = Array.from({ length: n }, (_, i) => i).filter(keep);
          if (ordered) assert.deepEqual(out, expected);
          else assert.deepEqual([...out].sort((a, b) => a - b), expected);
          assert.ok(alive.peak <= bound, `peak alive ${alive.peak} > bound ${bound}`);
          for (const s of p.stats.stages) {
            if (s.name.startsWith("map") || s.name.startsWith("tap") || s.name.startsWith("filter")) {
              assert.equal(s.in, s.out + s.dropped + s.errors, `${s.name}: in = out + dropped + errors`);
            }
          }
          assert.deepEqual(parkedWork(), []);
        },
      ),
      { numRuns: 60 },
    );
  });

  test("with a dead-letter channel, every input is out or dead-lettered exactly once", T, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 50 }),
        fc.integer({ min: 1, max: 6 }),
        fc.boolean(),
        fc.func(fc.boolean()),
        fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 4 }),
        async (n, concurrency, ordered, fails, d) => {
          const dead = new Channel<DeadLetter<number>>(2); // small: the stage must wait for room
          const letters: number[] = [];
          const draining = (async () => {
            for await (const l of dead) letters.push(l.item);
          })();
          const p = pipeline(
            Array.from({ length: n }, (_, i) => i),
            map(
              async (x: number) => {
                await turns(d[x % d.length]!);
                if (fails(x)) throw new Error(`item ${x}`);
                return x;
              },
              { concurrency, ordered, deadLetter: dead, buffer: 1 },
            ),
          );
          const out: number[] = [];
          for await (const x of p) out.push(x);
          dead.close();
          await draining;
          const all = [...out, ...letters].sort((a, b) => a - b);
          assert.deepEqual(all, Array.from({ length: n }, (_, i) => i));
          assert.equal(p.stats.stages[0]!.errors, letters.length);
          if (ordered) assert.deepEqual(out, [...out].sort((a, b) => a - b));
        },
      ),
      { numRuns: 50 },
    );
  });

  test("a window wider than its first ring (concurrency 17 to 70), items arriving over time: each result once, in input order where ordered, never more calls at once than the concurrency", T, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 200 }),
        fc.integer({ min: 17, max: 70 }),
        fc.boolean(),
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 8 }),
        fc.boolean(),
        fc.array(fc.integer({ min: 0, max: 1 }), { minLength: 1, maxLength: 5 }),
        async (n, concurrency, ordered, d, viaTap, gaps) => {
          let running = 0;
          let peak = 0;
          const m = map(
            async (x: number) => {
              running++;
              peak = Math.max(peak, running);
              await turns(d[x % d.length]!);
              running--;
              return x;
            },
            { concurrency, ordered },
          );
          // Items that arrive over time: the window widens while results wait behind slow calls.
          async function* items(): AsyncGenerator<number> {
            for (let i = 0; i < n; i++) {
              await turns(gaps[i % gaps.length]!);
              yield i;
            }
          }
          const out: number[] = [];
          if (viaTap) await pipeline(items(), m, tap((x: number) => void out.push(x))).run();
          else for await (const x of pipeline(items(), m)) out.push(x);
          const all = Array.from({ length: n }, (_, i) => i);
          if (ordered) assert.deepEqual(out, all);
          else assert.deepEqual([...out].sort((a, b) => a - b), all);
          assert.ok(peak <= concurrency, `peak ${peak} calls at once, concurrency ${concurrency}`);
          assert.equal(running, 0);
          assert.deepEqual(parkedWork(), []);
        },
      ),
      { numRuns: 60 },
    );
  });

  test("map as the last stage under run(), any source, timings and failures: each item called once, at most `concurrency` at once, counted; nothing left after", T, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 60 }),
        fc.integer({ min: 2, max: 6 }),
        fc.constantFrom("sync", "async", "channel"),
        fc.array(fc.integer({ min: -1, max: 2 }), { minLength: 1, maxLength: 6 }),
        fc.option(fc.integer({ min: 0, max: 59 }), { nil: undefined }),
        fc.constantFrom("throw", "reject", "abort"),
        async (n, concurrency, kind, d, at, how) => {
          let closed = false;
          function* items(): Generator<number> {
            try {
              for (let i = 0; i < n; i++) yield i;
            } finally {
              closed = true;
            }
          }
          async function* asyncItems(): AsyncGenerator<number> {
            try {
              for (let i = 0; i < n; i++) {
                await turns(i % 2);
                yield i;
              }
            } finally {
              closed = true;
            }
          }
          const ch = new Channel<number>(4); // items buffered when the run stops must not start
          const producing =
            kind === "channel"
              ? (async () => {
                  try {
                    for (let i = 0; i < n; i++) await ch.send(i);
                    ch.close();
                  } catch {
                    closed = true; // the pipeline closed its source under a send
                  }
                  if (ch.closed) closed = true;
                })()
              : Promise.resolve();
          const ac = new AbortController();
          const reason = new Error(how);
          const calls: number[] = [];
          let running = 0;
          let peak = 0;
          // Set where the stage learns of the failure in the same step (a throw from fn, an
          // abort of the run's signal); a rejection reaches it a step later.
          let stopped = false;
          let lateCalls = 0;
          const p = pipeline(
            kind === "sync" ? items() : kind === "async" ? asyncItems() : ch,
            map(
              (x: number, signal: AbortSignal): number | Promise<number> => {
                calls.push(x);
                if (stopped) lateCalls++;
                const delay = d[x % d.length]!;
                if (x === at && how === "throw") {
                  stopped = true;
                  throw reason;
                }
                if (delay < 0 && x !== at) return x; // a synchronous result
                running++;
                peak = Math.max(peak, running);
                return (async () => {
                  try {
                    await turns(Math.max(delay, 0));
                    if (x === at) {
                      if (how !== "abort") throw reason;
                      ac.abort(reason);
                      stopped = true;
                    }
                    if (signal.aborted) throw signal.reason;
                    return x;
                  } finally {
                    running--;
                  }
                })();
              },
              { concurrency },
            ),
          );
          const fails = at !== undefined && at < n;
          if (fails) await assert.rejects(p.run({ signal: ac.signal }), (e) => e === reason);
          else await p.run({ signal: ac.signal });
          await producing;
          assert.equal(running, 0, "no call of fn is still running");
          assert.ok(peak <= concurrency, `peak ${peak} calls at once, concurrency ${concurrency}`);
          assert.deepEqual(calls, Array.from({ length: calls.length }, (_, i) => i), "each item called once, in input order");
          const s = p.stats.stages[0]!;
          assert.equal(s.in, calls.length);
          if (fails) {
            assert.equal(lateCalls, 0, "no call started after the stage learned of the failure");
            assert.ok(closed || calls.length === n, "the source was closed");
          } else {
            assert.equal(calls.length, n);
            assert.deepEqual([s.out, s.errors], [n, 0]);
          }
          assert.deepEqual(parkedWork(), []);
        },
      ),
      { numRuns: 80 },
    );
  });

  test("a failure or an abort at a random point: rejects with it; nothing parked or running; the source closed", T, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 40 }),
        fc.boolean(),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 0, max: 3 }),
        fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        async (at, abort, concurrency, buffer, d, viaIteration) => {
          let closed = false;
          let running = 0;
          function* source(): Generator<number> {
            try {
              for (let i = 0; ; i++) yield i;
            } finally {
              closed = true;
            }
          }
          const ac = new AbortController();
          const reason = new Error(abort ? "abort" : "fail");
          const p = pipeline(
            source(),
            map(
              async (x: number, signal: AbortSignal) => {
                running++;
                try {
                  await turns(d[x % d.length]!);
                  if (x === at) {
                    if (abort) ac.abort(reason);
                    else throw reason;
                  }
                  if (signal.aborted) throw signal.reason;
                  return x;
                } finally {
                  running--;
                }
              },
              { concurrency, buffer },
            ),
            batch<number>({ size: 3, maxWaitMs: 5 }),
            tap(() => turns(d[0]!)),
          );
          if (viaIteration) {
            await assert.rejects(
              (async () => {
                for await (const _ of p.values({ signal: ac.signal })) void _;
              })(),
              (e) => e === reason,
            );
          } else {
            await assert.rejects(p.run({ signal: ac.signal }), (e) => e === reason);
          }
          assert.equal(running, 0, "no call of fn is still running");
          assert.ok(closed, "the source was closed");
          assert.deepEqual(parkedWork(), []);
        },
      ),
      { numRuns: 60 },
    );
  });
});
