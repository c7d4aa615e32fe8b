/**
 * Ports of golang.org/x/sync `semaphore/semaphore_test.go` (and its `Example_workerPool`) to
 * sluice's `Semaphore`.
 *
 * Mapping: `Acquire(ctx, n)` is `acquire(n, { signal })`; a context with a timeout is
 * `timeoutSignal(ms, { clock })` driven by a `VirtualClock`, so no test waits in real time;
 * Go's `time.Sleep` inside a holder is a yield of a few event-loop turns. Documented differences
 * from Go, pinned here: `n` must be a positive safe integer (Go accepts 0), an `acquire(n)` with
 * `n > size` rejects at once with RangeError (Go waits until its context ends), and a release
 * of more than is held throws RangeError (Go panics).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Channel, ErrGroup, Semaphore, after, recv, select, timeoutSignal } from "../../../src/index.js";
import { VirtualClock, useClock } from "../../../src/testing/index.js";
import { assertNothingParked, go, isPending, mulberry32, testSeed, turns } from "./helpers.js";

test("TestWeighted: goroutines hammering acquire(n)/release(n) never hold more than the size between them", async () => {
  const seed = testSeed(0x5e4a);
  const rand = mulberry32(seed);
  const n = 4; // Go: GOMAXPROCS
  const loops = 400; // Go: 10000 / n
  const sem = new Semaphore(n);
  let held = 0;
  let peak = 0;
  const hammer = async (weight: number) => {
    for (let i = 0; i < loops; i++) {
      await sem.acquire(weight);
      held += weight;
      peak = Math.max(peak, held);
      assert.ok(held <= n, `held ${held} > size ${n} (seed ${seed})`);
      await turns(Math.floor(rand() * 2)); // Go: sleep up to 1 ms
      held -= weight;
      sem.release(weight);
    }
  };
  // Go hammers with weights 0..n-1; sluice refuses 0 (n must be positive), so 1..n here.
  await Promise.all(Array.from({ length: n }, (_, i) => go(() => hammer(i + 1))));
  assert.equal(sem.available, n, "everything released");
  assert.ok(peak > 1, `holders overlapped (peak ${peak})`);
  assertNothingParked();
});

test("TestWeighted (difference from Go): a weight of 0 is refused with RangeError, changing nothing", async () => {
  const sem = new Semaphore(2);
  await assert.rejects(sem.acquire(0), RangeError);
  assert.throws(() => sem.tryAcquire(0), RangeError);
  assert.throws(() => sem.release(0), RangeError);
  assert.deepEqual([sem.available, sem.waiting], [2, 0]);
});

test("TestWeightedPanic: releasing an unacquired semaphore throws RangeError (Go panics) and releases nothing", () => {
  const w = new Semaphore(1);
  assert.throws(() => w.release(1), RangeError);
  assert.equal(w.available, 1);
  assert.equal(w.tryAcquire(1), true, "the refused release changed nothing");
  assert.throws(() => w.release(2), RangeError);
  w.release(1);
  assert.equal(w.available, 1);
});

test("TestWeightedTryAcquire: tryAcquire succeeds exactly while units are free", async () => {
  const sem = new Semaphore(2);
  const tries: boolean[] = [];
  await sem.acquire(1);
  tries.push(sem.tryAcquire(1));
  tries.push(sem.tryAcquire(1));
  sem.release(2);
  tries.push(sem.tryAcquire(1));
  await sem.acquire(1);
  tries.push(sem.tryAcquire(1));
  assert.deepEqual(tries, [true, false, true, false]);
});

test("TestWeightedAcquire: acquire with a 10 ms deadline succeeds exactly while units are free", async () => {
  const clock = new VirtualClock();
  const sem = new Semaphore(2);
  const tryAcquire = async (n: number): Promise<boolean> => {
    const p = sem.acquire(n, { signal: timeoutSignal(10, { clock }) }).then(
      () => true,
      (e: unknown) => {
        assert.ok(e instanceof DOMException && e.name === "TimeoutError", `expected a TimeoutError, got ${String(e)}`);
        return false;
      },
    );
    await clock.advanceAsync(10);
    return p;
  };
  const tries: boolean[] = [];
  await sem.acquire(1);
  tries.push(await tryAcquire(1));
  tries.push(await tryAcquire(1));
  sem.release(2);
  tries.push(await tryAcquire(1));
  await sem.acquire(1);
  tries.push(await tryAcquire(1));
  assert.deepEqual(tries, [true, false, true, false]);
  assert.equal(sem.waiting, 0, "timed-out waiters left the queue");
  assertNothingParked();
});

test("TestWeightedDoesntBlockIfTooBig: acquire(n > size) rejects at once with RangeError (Go would wait for its context) and blocks no one", async () => {
  const n = 2;
  const sem = new Semaphore(n);
  await assert.rejects(sem.acquire(n + 1), RangeError);
  assert.equal(sem.waiting, 0, "the refused acquire is not queued");

  const g = new ErrGroup();
  for (let i = n * 3; i > 0; i--) {
    await g.go(async (signal) => {
      await sem.acquire(1, { signal });
      await turns(1); // Go: sleep 1 ms
      sem.release(1);
    });
  }
  await g.wait();
  assert.equal(sem.available, n);
  assertNothingParked();
});

test("TestLargeAcquireDoesntStarve: a large acquire is served although small holders keep releasing and re-acquiring", async () => {
  const n = 4; // Go: GOMAXPROCS
  const sem = new Semaphore(n);
  let running = true;
  let cycles = 0;
  const workers: Promise<void>[] = [];
  for (let i = n; i > 0; i--) {
    await sem.acquire(1);
    workers.push(
      go(async () => {
        try {
          while (running) {
            await turns(1); // Go: sleep 1 ms
            sem.release(1);
            await sem.acquire(1);
            cycles++;
            assert.ok(cycles < 10000, "the large acquire starved");
          }
        } finally {
          sem.release(1);
        }
      }),
    );
  }
  await sem.acquire(n);
  running = false;
  sem.release(n);
  await Promise.all(workers);
  assert.equal(sem.available, n);
  assertNothingParked();
});

test("TestAllocCancelDoesntStarve: when a large waiter at the head gives up, the small waiter behind it proceeds", async () => {
  const clock = new VirtualClock();
  const restore = useClock(clock);
  try {
    const sem = new Semaphore(10);
    await sem.acquire(1); // hold 1 read lock
    // A write lock request that gives up after 300 ms.
    const writer = go(() => sem.acquire(10, { signal: timeoutSignal(300) }));
    await clock.advanceAsync(100); // long enough for it to be queued
    assert.equal(sem.waiting, 1);
    const doneCh = new Channel<never>();
    // A read lock, queued behind the write request, but woken when that request is cancelled.
    const reader = go(async () => {
      await sem.acquire(1);
      sem.release(1);
      doneCh.close();
    });
    await turns(1);
    assert.equal(sem.waiting, 2, "the reader waits behind the writer (FIFO)");
    const r = select([recv(doneCh), recv(after(1000))]);
    await clock.advanceAsync(200); // the writer's deadline
    await assert.rejects(writer, (e: unknown) => e instanceof DOMException && e.name === "TimeoutError");
    assert.equal((await r).index, 0, "the reader was not woken when the writer gave up");
    await reader;
    await clock.advanceAsync(1000); // let the unused `after` fire; nothing waits on it
    sem.release(1);
    assert.equal(sem.available, 10);
  } finally {
    restore();
  }
  assertNothingParked();
});

test("TestWeightedAcquireCanceled (go.dev/issue/63615): a cancellation that comes before the units fails the acquire; an aborted signal fails even without waiting", async () => {
  const sem = new Semaphore(2);
  const ac = new AbortController();
  await sem.acquire(1);
  const p = sem.acquire(2, { signal: ac.signal });
  assert.equal(await isPending(p, 1), true);
  // Cancel, then free the unit: the acquire must fail, and both units be free afterwards.
  const reason = new Error("cancelled");
  ac.abort(reason);
  sem.release(1);
  await assert.rejects(p, (e) => e === reason);
  assert.equal(sem.tryAcquire(2), true, "tryAcquire after the cancelled acquire failed");
  sem.release(2);
  // A done context fails the acquire even when it would not need to wait.
  await assert.rejects(sem.acquire(1, { signal: ac.signal }), (e) => e === reason);
  assert.equal(sem.available, 2, "the refused acquire took nothing");
  assertNothingParked();
});

test("Example_workerPool: a semaphore bounds the workers; acquiring all units waits for the last of them", async () => {
  const collatzSteps = (n: number): number => {
    let steps = 0;
    for (; n > 1; steps++) n = n % 2 === 0 ? n / 2 : 3 * n + 1;
    return steps;
  };
  const maxWorkers = 4; // Go: GOMAXPROCS
  const sem = new Semaphore(maxWorkers);
  const out = new Array<number>(32).fill(-1);
  let inFlight = 0;
  for (let i = 0; i < out.length; i++) {
    await sem.acquire(1);
    inFlight++;
    assert.ok(inFlight <= maxWorkers);
    void go(async () => {
      try {
        await turns(1);
        out[i] = collatzSteps(i + 1);
      } finally {
        inFlight--;
        sem.release(1);
      }
    });
  }
  await sem.acquire(maxWorkers);
  assert.equal(inFlight, 0);
  assert.deepEqual(out, [0, 1, 7, 2, 5, 8, 16, 3, 19, 6, 14, 9, 9, 17, 17, 4, 12, 20, 20, 7, 7, 15, 15, 10, 23, 10, 111, 18, 18, 18, 106, 5]);
  assertNothingParked();
});
