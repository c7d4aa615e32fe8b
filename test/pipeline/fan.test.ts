import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Channel, parkedWork } from "../../src/index.js";
import { fanOut, merge, partition, pipeline, map } from "../../src/pipeline/index.js";

const T = { timeout: 20_000 };

function range(n: number, from = 0): number[] {
  return Array.from({ length: n }, (_, i) => from + i);
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of it) out.push(v);
  return out;
}

/** An endless async source yielding 1 once per turn of the event loop; `onClose` runs when it is closed. */
async function* ticking(onClose: () => void): AsyncGenerator<number> {
  try {
    for (;;) {
      await new Promise<void>((r) => setImmediate(r));
      yield 1;
    }
  } finally {
    onClose();
  }
}

/** Yields `first`, then fails with `error` on the next turn. */
async function* failsAfter(first: number, error: Error): AsyncGenerator<number> {
  yield first;
  await new Promise<void>((r) => setImmediate(r));
  throw error;
}

async function* slow(xs: number[]): AsyncGenerator<number> {
  for (const x of xs) {
    await new Promise<void>((r) => setImmediate(r));
    yield x;
  }
}

describe("merge", () => {
  test("yields every item of every source once, each source in its order, and ends when all end", T, async () => {
    const ch = new Channel<number>(2);
    void (async () => {
      for (const x of range(10, 200)) await ch.send(x);
      ch.close();
    })();
    const out = await collect(merge(range(10), slow(range(10, 100)), ch));
    assert.equal(out.length, 30);
    assert.deepEqual([...out].sort((a, b) => a - b), [...range(10), ...range(10, 100), ...range(10, 200)]);
    for (const base of [0, 100, 200]) {
      const mine = out.filter((x) => x >= base && x < base + 10);
      assert.deepEqual(mine, range(10, base), "each source keeps its own order");
    }
    assert.deepEqual(await collect(merge<number>()), []);
  });

  test("one failing source fails it with that error, after the others are closed", T, async () => {
    const boom = new Error("boom");
    let closed = false;
    await assert.rejects(collect(merge(ticking(() => (closed = true)), failsAfter(2, boom))), (e) => e === boom);
    assert.ok(closed);
    assert.deepEqual(parkedWork(), []);
  });

  test("break closes every source; it can feed a pipeline", T, async () => {
    let closed = 0;
    function* endless(): Generator<number> {
      try {
        for (;;) yield 1;
      } finally {
        closed++;
      }
    }
    for await (const _ of merge(endless(), endless())) break;
    assert.equal(closed, 2);
    const out = await collect(pipeline(merge([1, 2], [3]), map((x: number) => x * 10)));
    assert.deepEqual([...out].sort((a, b) => a - b), [10, 20, 30]);
  });

  test("values({ signal }): an abort closes every source, rejects the waiting next() with the reason, and leaves nothing parked", T, async () => {
    let closed = 0;
    const endless = (): AsyncGenerator<number> => ticking(() => closed++);
    const idle = new Channel<number>(0); // never sends: the merge waits on it too
    const ac = new AbortController();
    const reason = new Error("client left");
    const got: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const x of merge(endless(), endless(), idle).values({ signal: ac.signal })) {
          got.push(x);
          if (got.length === 5) ac.abort(reason);
        }
      })(),
      (e) => e === reason,
    );
    assert.equal(closed, 2);
    assert.deepEqual(parkedWork(), []);
    // Already aborted: nothing is yielded, the sources are closed.
    let closed2 = 0;
    function* gen(): Generator<number> {
      try {
        yield 1;
      } finally {
        closed2++;
      }
    }
    const it = merge(gen()).values({ signal: AbortSignal.abort(reason) });
    await assert.rejects(it.next(), (e) => e === reason);
    assert.deepEqual(await it.next(), { value: undefined, done: true });
    assert.ok(closed2 <= 1);
    assert.throws(() => merge([1]).values({ signal: "no" as never }), /options.signal must be an AbortSignal/);
    // A failing source still fails an iteration that has a signal (its wait is woken by the group).
    const boom = new Error("boom");
    const idle2 = new Channel<number>(0);
    await assert.rejects(collect({ [Symbol.asyncIterator]: () => merge(idle2, failsAfter(7, boom)).values({ signal: new AbortController().signal }) }), (e) => e === boom);
    assert.deepEqual(parkedWork(), []);
  });

  test("refuses a source of no known kind", () => {
    assert.throws(() => merge([1], 5 as never), /sources\[1\] must be/);
  });
});

describe("fanOut", () => {
  test("each item goes to exactly one lane; a free lane takes the next", T, async () => {
    const lanes = fanOut(range(100), 4);
    assert.equal(lanes.length, 4);
    const per = await Promise.all(
      lanes.map(async (lane, i) => {
        const got: number[] = [];
        for await (const x of lane) {
          got.push(x);
          if (i === 0) await new Promise<void>((r) => setTimeout(r, 2)); // a slow worker takes fewer
        }
        return got;
      }),
    );
    const all = per.flat().sort((a, b) => a - b);
    assert.deepEqual(all, range(100));
    assert.ok(per[0]!.length < 25, `the slow lane took ${per[0]!.length}`);
  });

  test("a source failure makes every lane throw it; a lane that breaks leaves the rest to the others", T, async () => {
    const boom = new Error("x");
    async function* failing(): AsyncGenerator<number> {
      yield* range(5);
      throw boom;
    }
    const results = await Promise.allSettled(fanOut(failing(), 3).map((l) => collect(l)));
    assert.ok(results.every((r) => r.status === "rejected" && r.reason === boom));

    const [a, b] = fanOut(range(50), 2);
    const first: number[] = [];
    const rest = collect(b!);
    for await (const x of a!) {
      first.push(x);
      break;
    }
    const others = await rest;
    assert.deepEqual([...first, ...others].sort((x, y) => x - y), range(50));
  });

  test("a lane's values({ signal }): its abort makes that lane leave (rejecting with the reason); the others take the rest", T, async () => {
    const [a, b] = fanOut(range(50), 2);
    const ac = new AbortController();
    const reason = new Error("worker stopped");
    const gotA: number[] = [];
    const gotB: number[] = [];
    const runA = (async () => {
      for await (const x of a!.values({ signal: ac.signal })) {
        gotA.push(x);
        if (gotA.length === 3) ac.abort(reason);
        await new Promise<void>((r) => setImmediate(r));
      }
    })();
    const runB = (async () => {
      for await (const x of b!) {
        gotB.push(x);
        await new Promise<void>((r) => setImmediate(r));
      }
    })();
    await assert.rejects(runA, (e) => e === reason);
    await runB;
    assert.equal(gotA.length, 3);
    assert.deepEqual([...gotA, ...gotB].sort((x, y) => x - y), range(50), "every item once, none lost to the lane that left");
    assert.deepEqual(parkedWork(), []);
  });

  test("checks n", () => {
    assert.throws(() => fanOut([1], 0), /n must be a positive safe integer, got 0/);
  });
});

describe("partition", () => {
  test("same key, same lane, in order; every item once", T, async () => {
    const items = range(200).map((i) => ({ key: `k${i % 7}`, i }));
    const lanes = partition(items, (x) => x.key, 3, { buffer: 2 });
    const per = await Promise.all(lanes.map((l) => collect(l)));
    assert.equal(per.flat().length, 200);
    const laneOfKey = new Map<string, number>();
    per.forEach((lane, li) => {
      for (const x of lane) {
        assert.equal(laneOfKey.get(x.key) ?? li, li, `key ${x.key} in one lane`);
        laneOfKey.set(x.key, li);
      }
      for (const key of new Set(lane.map((x) => x.key))) {
        const is = lane.filter((x) => x.key === key).map((x) => x.i);
        assert.deepEqual(is, [...is].sort((a, b) => a - b), "order kept per key");
      }
    });
    const nums = partition(range(9), (x) => x, 3);
    assert.deepEqual(await Promise.all(nums.map((l) => collect(l))), [[0, 3, 6], [1, 4, 7], [2, 5, 8]]);
  });

  test("a failing keyOf fails every lane; breaking one lane stops them all and closes the source", T, async () => {
    const boom = new Error("key");
    const results = await Promise.allSettled(
      partition(range(10), (x) => {
        if (x === 4) throw boom;
        return x;
      }, 2).map((l) => collect(l)),
    );
    assert.ok(results.every((r) => r.status === "rejected" && r.reason === boom));
    let closed = false;
    function* endless(): Generator<number> {
      try {
        for (let i = 0; ; i++) yield i;
      } finally {
        closed = true;
      }
    }
    const [l0, l1] = partition(endless(), (x) => x, 2);
    const other = collect(l1!);
    for await (const _ of l0!) break;
    await other;
    assert.ok(closed);
    assert.deepEqual(parkedWork(), []);
  });

  test("a lane's values({ signal }): its abort stops the partition, that lane rejects with the reason, the others end", T, async () => {
    let closed = false;
    function* endless(): Generator<number> {
      try {
        for (let i = 0; ; i++) yield i;
      } finally {
        closed = true;
      }
    }
    const [even, odd] = partition(endless(), (x) => x % 2, 2, { buffer: 1 });
    const ac = new AbortController();
    const reason = new Error("stop");
    const runOdd = (async () => {
      let n = 0;
      for await (const _ of odd!) n++;
      return n;
    })();
    await assert.rejects(
      (async () => {
        for await (const x of even!.values({ signal: ac.signal })) if (x === 10) ac.abort(reason);
      })(),
      (e) => e === reason,
    );
    assert.ok((await runOdd) >= 0, "the other lane ends");
    assert.ok(closed, "the source was closed");
    assert.deepEqual(parkedWork(), []);
  });

  test("checks its arguments", () => {
    assert.throws(() => partition([1], null as never, 2), TypeError);
    assert.throws(() => partition([1], (x) => x, 1.5), RangeError);
    assert.throws(() => partition([1], (x) => x, 2, { buffer: -1 }), RangeError);
  });
});
