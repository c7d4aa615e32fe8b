import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { Pool, BusyError, DroppedError, PoolClosedError } from "../../src/flow/index.js";
import type { ConcurrencyLimit, LimitSample } from "../../src/flow/index.js";
import { BusyError as CoreBusyError, parkedWork } from "../../src/index.js";
import { VirtualClock } from "../../src/testing/index.js";

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}
function deferred<T = void>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every queued reaction run: a few macrotask turns. */
async function settle(turns = 3): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
}

/** Whether `p` is still pending after the queued reactions ran. */
async function pending(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(() => (done = true), () => (done = true));
  await settle();
  return !done;
}

/** A task that runs until released, recording how many run at once. */
function gate() {
  let running = 0;
  let peak = 0;
  let started = 0;
  const releases: Deferred<void>[] = [];
  const task = async (): Promise<void> => {
    running++;
    started++;
    peak = Math.max(peak, running);
    const d = deferred();
    releases.push(d);
    try {
      await d.promise;
    } finally {
      running--;
    }
  };
  return {
    task,
    get running() {
      return running;
    },
    get peak() {
      return peak;
    },
    get started() {
      return started;
    },
    releaseOne() {
      releases.shift()?.resolve();
    },
    releaseAll() {
      for (const d of releases.splice(0)) d.resolve();
    },
  };
}

function outcomes(pool: Pool): number {
  const s = pool.stats;
  return s.completed + s.failed + s.rejected + s.dropped + s.aborted;
}

describe("Pool: construction", () => {
  test("concurrency must be a positive safe integer; Infinity is refused", () => {
    assert.throws(() => new Pool({ concurrency: 0 }), RangeError);
    assert.throws(() => new Pool({ concurrency: -1 }), RangeError);
    assert.throws(() => new Pool({ concurrency: 1.5 }), RangeError);
    assert.throws(() => new Pool({ concurrency: NaN }), RangeError);
    assert.throws(() => new Pool({ concurrency: Infinity }), /concurrency.*Infinity/);
    assert.throws(() => new Pool({ concurrency: "3" as unknown as number }), TypeError);
    assert.throws(() => new Pool(undefined as unknown as { concurrency: number }), TypeError);
  });

  test("queue must be a non-negative safe integer; Infinity is refused", () => {
    assert.throws(() => new Pool({ concurrency: 1, queue: -1 }), /options\.queue/);
    assert.throws(() => new Pool({ concurrency: 1, queue: 2.5 }), RangeError);
    assert.throws(() => new Pool({ concurrency: 1, queue: Infinity }), RangeError);
    assert.equal(new Pool({ concurrency: 1, queue: 0 }).stats.queued, 0);
  });

  test("overflow, watermarks and dynamic bounds are checked by name", () => {
    assert.throws(() => new Pool({ concurrency: 1, overflow: "drop" as never }), /options\.overflow/);
    assert.throws(() => new Pool({ concurrency: 1, queue: 4, highWater: 5 }), /highWater/);
    assert.throws(() => new Pool({ concurrency: 1, queue: 4, highWater: 3, lowWater: 3 }), /lowWater/);
    assert.throws(() => new Pool({ concurrency: 1, queue: 4, lowWater: 1 }), /lowWater/);
    assert.throws(() => new Pool({ concurrency: { min: 4, max: 2 } }), /concurrency\.max/);
    assert.throws(() => new Pool({ concurrency: { min: 0, max: 2 } }), /concurrency\.min/);
    assert.throws(() => new Pool({ concurrency: 1, onError: 5 as never }), /onError/);
  });
});

describe("Pool: admission", () => {
  test("submit resolves once accepted, and at most `concurrency` functions run", async () => {
    const pool = new Pool({ concurrency: 2, queue: 1 });
    const g = gate();
    await pool.submit(g.task);
    await pool.submit(g.task);
    await pool.submit(g.task); // queued
    assert.equal(pool.stats.running, 2);
    assert.equal(pool.stats.queued, 1);
    const fourth = pool.submit(g.task); // blocks: queue full
    assert.ok(await pending(fourth));
    assert.equal(pool.stats.waiting, 1);
    g.releaseOne();
    await fourth; // the queued one started, the fourth took its queue place
    assert.equal(g.peak, 2);
    assert.equal(pool.stats.queued, 1);
    g.releaseAll();
    await settle();
    g.releaseAll();
    await pool.drain();
    assert.equal(pool.stats.completed, 4);
    assert.equal(g.peak, 2);
  });

  test("blocked submitters are admitted in FIFO order", async () => {
    const pool = new Pool({ concurrency: 1 });
    const g = gate();
    await pool.submit(g.task);
    const order: number[] = [];
    const subs = [1, 2, 3].map((i) => pool.submit(async () => void order.push(i)));
    g.releaseOne();
    await Promise.all(subs);
    await pool.drain();
    assert.deepEqual(order, [1, 2, 3]);
  });

  test("a new submit never overtakes a blocked one, even when space appears", async () => {
    const pool = new Pool({ concurrency: 1, queue: 1 });
    const g = gate();
    await pool.submit(g.task);
    await pool.submit(g.task);
    const blocked = pool.submit(g.task);
    assert.equal(pool.trySubmit(g.task), false, "trySubmit must not jump the FIFO");
    g.releaseOne();
    await blocked;
    g.releaseAll();
    await settle();
    g.releaseAll();
    await pool.drain();
  });

  test("submit's signal bounds only the wait for admission", async () => {
    const pool = new Pool({ concurrency: 1 });
    const g = gate();
    await pool.submit(g.task);
    const ac = new AbortController();
    let ran = false;
    const sub = pool.submit(async (signal) => {
      ran = true;
      assert.equal(signal.aborted, false);
    }, { signal: ac.signal });
    ac.abort(new Error("gave up"));
    await assert.rejects(sub, /gave up/);
    g.releaseAll();
    await pool.drain();
    assert.equal(ran, false, "a withdrawn task never runs");
    assert.equal(pool.stats.aborted, 1);

    // Accepted, then aborted: the task runs anyway and sees no abort.
    const ac2 = new AbortController();
    let sawAbort: boolean | undefined;
    const d = deferred();
    await pool.submit(async (signal) => {
      await d.promise;
      sawAbort = signal.aborted;
    }, { signal: ac2.signal });
    ac2.abort();
    d.resolve();
    await pool.drain();
    assert.equal(sawAbort, false);
    assert.equal(pool.stats.completed, 2);
  });

  test("a deadline is AbortSignal.timeout: the submit rejects with TimeoutError when no room appears", async () => {
    const pool = new Pool({ concurrency: 1 });
    const g = gate();
    await pool.submit(g.task);
    // AbortSignal.timeout's timer does not keep the process alive (the running task here holds
    // no I/O, unlike a real one), so hold a handle while we wait.
    const keepAlive = setInterval(() => {}, 1000);
    try {
      await assert.rejects(pool.submit(g.task, { signal: AbortSignal.timeout(5) }), { name: "TimeoutError" });
    } finally {
      clearInterval(keepAlive);
    }
    assert.equal(pool.stats.waiting, 0);
    g.releaseAll();
    await pool.drain();
  });

  test("trySubmit never waits: false when full, counted as rejected", async () => {
    const pool = new Pool({ concurrency: 1, queue: 1 });
    const g = gate();
    assert.equal(pool.trySubmit(g.task), true);
    assert.equal(pool.trySubmit(g.task), true);
    assert.equal(pool.trySubmit(g.task), false);
    assert.equal(pool.stats.rejected, 1);
    assert.throws(() => pool.trySubmit(42 as never), TypeError);
    g.releaseAll();
    await settle();
    g.releaseAll();
    await pool.drain();
    assert.equal(pool.stats.completed, 2);
    assert.equal(outcomes(pool), 3);
  });

  test('overflow "reject": BusyError (the core class) with a retry estimate, nothing runs', async () => {
    const pool = new Pool({ concurrency: 1, queue: 1, overflow: "reject" });
    await pool.run(async () => 1); // one run time sample for the estimate
    const g = gate();
    await pool.submit(g.task);
    await pool.submit(g.task);
    let ran = false;
    const err = await pool.submit(async () => void (ran = true)).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof BusyError);
    assert.ok(err instanceof CoreBusyError, "flow re-exports the core's BusyError");
    assert.equal((err as BusyError).code, "ERR_BUSY");
    assert.equal(typeof (err as BusyError).retryAfterMs, "number");
    await assert.rejects(pool.run(async () => 1), BusyError);
    g.releaseAll();
    await settle();
    g.releaseAll();
    await pool.drain();
    assert.equal(ran, false);
    assert.equal(pool.stats.rejected, 2);
  });

  test('overflow "drop-oldest": the oldest queued task never runs and its run caller gets DroppedError', async () => {
    const pool = new Pool({ concurrency: 1, queue: 2, overflow: "drop-oldest" });
    const g = gate();
    await pool.submit(g.task);
    const ran: string[] = [];
    const a = pool.run(async () => void ran.push("a"));
    const b = pool.run(async () => void ran.push("b"));
    await pool.submit(async () => void ran.push("c")); // drops a
    assert.equal(pool.trySubmit(async () => void ran.push("d")), true); // drops b
    const ea = await a.then(() => null, (e: unknown) => e);
    assert.ok(ea instanceof DroppedError);
    assert.equal((ea as DroppedError).code, "ERR_DROPPED");
    await assert.rejects(b, DroppedError);
    g.releaseAll();
    await pool.drain();
    assert.deepEqual(ran, ["c", "d"]);
    assert.equal(pool.stats.dropped, 2);
    assert.equal(outcomes(pool), 5);
  });

  test('overflow "drop-oldest" with queue 0 has nothing to drop and refuses like "reject"', async () => {
    const pool = new Pool({ concurrency: 1, queue: 0, overflow: "drop-oldest" });
    const g = gate();
    await pool.submit(g.task);
    await assert.rejects(pool.submit(g.task), BusyError);
    assert.equal(pool.trySubmit(g.task), false);
    assert.equal(pool.stats.rejected, 2);
    assert.equal(pool.stats.dropped, 0);
    g.releaseAll();
    await pool.drain();
  });

  test("maxWaiting bounds the blocked submitters", async () => {
    const pool = new Pool({ concurrency: 1, maxWaiting: 1 });
    const g = gate();
    await pool.submit(g.task);
    const w = pool.submit(g.task);
    await assert.rejects(pool.submit(g.task), BusyError);
    g.releaseOne();
    await w;
    g.releaseAll();
    await pool.drain();
  });

  test("an already-aborted signal wins over a full or closed pool", async () => {
    const pool = new Pool({ concurrency: 1, overflow: "reject" });
    const g = gate();
    await pool.submit(g.task);
    const reason = new Error("already");
    const signal = AbortSignal.abort(reason);
    await assert.rejects(pool.submit(g.task, { signal }), (e) => e === reason);
    await assert.rejects(pool.run(g.task, { signal }), (e) => e === reason);
    pool.close();
    await assert.rejects(pool.submit(g.task, { signal }), (e) => e === reason);
    g.releaseAll();
    await pool.drain();
    assert.equal(pool.stats.aborted, 3);
    assert.equal(pool.stats.rejected, 0);
  });

  test("bad arguments reject (promise methods) or throw (sync methods) with typed errors", async () => {
    const pool = new Pool({ concurrency: 1 });
    await assert.rejects(pool.submit("x" as never), TypeError);
    await assert.rejects(pool.run(null as never), TypeError);
    await assert.rejects(pool.submit(async () => {}, { signal: 1 as never }), TypeError);
    await assert.rejects(pool.drain({ signal: {} as never }), TypeError);
    assert.throws(() => pool.map(5 as never, (x) => x), TypeError);
    assert.throws(() => pool.map([1], 5 as never), TypeError);
    assert.equal(outcomes(pool), 0);
  });
});

describe("Pool: run and task signals", () => {
  test("run settles with the task's outcome", async () => {
    const pool = new Pool({ concurrency: 2 });
    assert.equal(await pool.run(async () => 42), 42);
    assert.equal(await pool.run(() => "sync"), "sync");
    await assert.rejects(pool.run(async () => { throw new Error("boom"); }), /boom/);
    await assert.rejects(pool.run(() => { throw new Error("sync boom"); }), /sync boom/);
    assert.deepEqual([pool.stats.completed, pool.stats.failed], [2, 2]);
  });

  test("a caller's abort while the task runs fires its signal and rejects at once; the slot stays taken until it settles", async () => {
    const pool = new Pool({ concurrency: 1 });
    const ac = new AbortController();
    const finish = deferred();
    let taskSignal: AbortSignal | undefined;
    const r = pool.run(async (signal) => {
      taskSignal = signal;
      await finish.promise; // ignores its signal, like a stubborn function
      return "late";
    }, { signal: ac.signal });
    let secondStarted = false;
    const second = pool.run(async () => void (secondStarted = true));
    await settle();
    const reason = new Error("caller left");
    ac.abort(reason);
    await assert.rejects(r, (e) => e === reason);
    assert.equal(taskSignal?.aborted, true);
    assert.equal(taskSignal?.reason, reason);
    assert.equal(pool.stats.running, 1, "the slot is still taken");
    assert.ok(await pending(second));
    assert.equal(secondStarted, false, "strict concurrency: nothing starts until the function settles");
    finish.resolve();
    await second;
    assert.equal(secondStarted, true);
    assert.equal(pool.stats.completed, 2);
  });

  test("a run aborted while queued is withdrawn and never runs", async () => {
    const pool = new Pool({ concurrency: 1, queue: 4 });
    const g = gate();
    await pool.submit(g.task);
    const ac = new AbortController();
    let ran = false;
    const r = pool.run(async () => void (ran = true), { signal: ac.signal });
    assert.equal(pool.stats.queued, 1);
    ac.abort(new Error("nope"));
    await assert.rejects(r, /nope/);
    assert.equal(pool.stats.queued, 0);
    g.releaseAll();
    await pool.drain();
    assert.equal(ran, false);
    assert.equal(pool.stats.aborted, 1);
  });

  test("one signal aborting several queued and blocked callers withdraws them all: none starts on the way", async () => {
    const pool = new Pool({ concurrency: 1, queue: 2 });
    const g = gate();
    await pool.submit(g.task);
    const ac = new AbortController();
    let started = 0;
    const body = async () => void started++;
    const calls = [
      pool.run(body, { signal: ac.signal }), // queued
      pool.run(body, { signal: ac.signal }), // queued
      pool.submit(body, { signal: ac.signal }), // blocked
    ];
    g.releaseAll(); // the slot frees in a later turn; the abort comes first, in one step
    ac.abort(new Error("all at once"));
    for (const c of calls) await assert.rejects(c, /all at once/);
    await pool.drain();
    assert.equal(started, 0, "a withdrawn task never runs, even when withdrawing the one ahead freed room");
    assert.equal(pool.stats.aborted, 3);
  });

  test("a task's signal fires on pool.abort()", async () => {
    const pool = new Pool({ concurrency: 2 });
    const seen: unknown[] = [];
    const started = deferred();
    let n = 0;
    const body = (signal: AbortSignal) =>
      new Promise<void>((resolve) => {
        if (++n === 2) started.resolve();
        signal.addEventListener("abort", () => {
          seen.push(signal.reason);
          resolve();
        });
      });
    await pool.submit(body);
    const r = pool.run(body, { signal: new AbortController().signal });
    await started.promise;
    const reason = new Error("shutdown");
    pool.abort(reason);
    await r; // the function resolved after its signal fired
    await pool.drain();
    assert.deepEqual(seen, [reason, reason]);
  });

  test("failures of submitted tasks go to onError and are counted", async () => {
    const errors: unknown[] = [];
    const pool = new Pool({ concurrency: 2, onError: (e) => errors.push(e) });
    const boom = new Error("boom");
    await pool.submit(async () => { throw boom; });
    pool.trySubmit(() => { throw boom; });
    await pool.drain();
    assert.deepEqual(errors, [boom, boom]);
    assert.equal(pool.stats.failed, 2);
  });

  test("without onError, a failure is reported as a SLUICE_TASK_FAILED process warning", async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on("warning", onWarning);
    try {
      const pool = new Pool({ concurrency: 1, name: "mailer" });
      await pool.submit(async () => { throw new Error("smtp down"); });
      await pool.drain();
      await settle();
      const w = warnings.find((x) => (x as { code?: string }).code === "SLUICE_TASK_FAILED");
      assert.ok(w, "a warning was emitted");
      assert.match(w.message, /mailer/);
      assert.match(String((w as { detail?: string }).detail), /smtp down/);
      assert.equal(pool.stats.failed, 1);
    } finally {
      process.off("warning", onWarning);
    }
  });
});

describe("Pool: lifecycle", () => {
  test("close refuses new work; work offered before it (queued, running, blocked) still runs", async () => {
    const pool = new Pool({ concurrency: 1, queue: 1 });
    const g = gate();
    await pool.submit(g.task);
    const ran: string[] = [];
    await pool.submit(async () => void ran.push("queued"));
    const blocked = pool.submit(async () => void ran.push("blocked"));
    pool.close();
    assert.equal(pool.closed, true);
    await assert.rejects(pool.submit(g.task), (e: unknown) => e instanceof PoolClosedError && e.code === "ERR_POOL_CLOSED");
    await assert.rejects(pool.run(g.task), PoolClosedError);
    assert.equal(pool.trySubmit(g.task), false);
    await assert.rejects(pool.map([1], (x) => x).next(), PoolClosedError);
    g.releaseAll();
    await blocked; // admitted as room freed, after the close
    await pool.drain();
    assert.deepEqual(ran, ["queued", "blocked"]);
    assert.equal(pool.stats.rejected, 3);
    assert.equal(pool.stats.completed, 3);
    assert.equal(outcomes(pool), 6);
  });

  test("drain waits for queued, running and blocked work without closing", async () => {
    const pool = new Pool({ concurrency: 1, queue: 1 });
    const g = gate();
    await pool.submit(g.task);
    await pool.submit(g.task);
    const blocked = pool.submit(g.task);
    const drained = pool.drain();
    assert.ok(await pending(drained));
    g.releaseOne();
    await blocked;
    assert.ok(await pending(drained));
    g.releaseAll();
    await settle();
    g.releaseAll();
    await drained;
    assert.equal(pool.closed, false);
    await pool.submit(async () => {}); // still open
    await pool.drain();
    assert.equal(pool.stats.completed, 4);
  });

  test("drain takes a signal", async () => {
    const pool = new Pool({ concurrency: 1 });
    const g = gate();
    await pool.submit(g.task);
    const ac = new AbortController();
    const d = pool.drain({ signal: ac.signal });
    ac.abort(new Error("stop waiting"));
    await assert.rejects(d, /stop waiting/);
    g.releaseAll();
    await pool.drain();
  });

  test("abort rejects queued and blocked callers with the reason and counts them as aborted", async () => {
    const pool = new Pool({ concurrency: 1, queue: 1 });
    const g = gate();
    await pool.submit(g.task);
    let ran = false;
    const queued = pool.run(async () => void (ran = true));
    const blocked = pool.submit(async () => void (ran = true));
    const reason = new Error("bye");
    pool.abort(reason);
    await assert.rejects(queued, (e) => e === reason);
    await assert.rejects(blocked, (e) => e === reason);
    const after = await pool.submit(g.task).then(() => null, (e: unknown) => e);
    assert.ok(after instanceof PoolClosedError);
    assert.equal((after as PoolClosedError).cause, reason);
    assert.equal(pool.stats.running, 1, "a running function keeps its slot");
    g.releaseAll();
    await pool.drain();
    assert.equal(ran, false);
    assert.equal(pool.stats.aborted, 2);
    assert.equal(outcomes(pool), 4);
    assert.deepEqual(parkedWork().filter((e) => e.boundary.includes("pool")), []);
  });

  test("Symbol.asyncDispose closes and drains", async () => {
    const d = deferred();
    let finished = false;
    {
      await using pool = new Pool({ concurrency: 1 });
      await pool.submit(async () => {
        await d.promise;
        finished = true;
      });
      setImmediate(() => d.resolve());
    }
    assert.equal(finished, true);
  });
});

describe("Pool: sizing", () => {
  test("resize grows (starting queued work) and shrinks (new work waits for running to fall)", async () => {
    const pool = new Pool({ concurrency: 1, queue: 10 });
    const g = gate();
    for (let i = 0; i < 4; i++) await pool.submit(g.task);
    assert.equal(g.running, 1);
    pool.resize(3);
    await settle();
    assert.equal(g.running, 3);
    pool.resize(1);
    g.releaseOne();
    await settle();
    assert.equal(g.running, 2, "lowering the concurrency kills nothing and starts nothing");
    g.releaseOne();
    await settle();
    assert.equal(g.running, 1);
    g.releaseOne();
    await settle();
    assert.equal(g.running, 1, "the last queued task starts once below the new concurrency");
    assert.equal(g.peak, 3);
    g.releaseAll();
    await pool.drain();
    assert.throws(() => pool.resize(0), RangeError);
  });

  test("dynamic mode grows to max when work would wait, and shrinks after idleMs", async () => {
    const clock = new VirtualClock();
    const pool = new Pool({ concurrency: { min: 1, max: 3 }, queue: 10, idleMs: 1000, clock });
    const g = gate();
    assert.equal(pool.concurrency, 1);
    for (let i = 0; i < 5; i++) await pool.submit(g.task);
    assert.equal(pool.concurrency, 3);
    assert.equal(g.running, 3);
    assert.equal(pool.stats.queued, 2);
    g.releaseAll();
    await settle();
    g.releaseAll();
    await pool.drain();
    assert.equal(pool.concurrency, 3, "no shrink before idleMs");
    clock.advance(999);
    assert.equal(pool.concurrency, 3);
    clock.advance(1);
    assert.equal(pool.concurrency, 1, "shrunk back to min after idleMs unneeded");
    assert.equal(clock.pending, 0, "no timer left armed at min");
  });

  test("an adaptive limit drives the concurrency and hears how each task ended", async () => {
    const listeners = new Set<(n: number) => void>();
    const samples: string[] = [];
    const limit: { limit: number; inflight: number; set(n: number): void } & Omit<ConcurrencyLimit, "limit" | "inflight"> = {
      limit: 1,
      inflight: 0,
      start(): LimitSample {
        return {
          success: () => samples.push("success"),
          dropped: () => samples.push("dropped"),
          ignore: () => samples.push("ignore"),
        };
      },
      subscribe(l) {
        listeners.add(l);
        return () => listeners.delete(l);
      },
      set(n: number) {
        this.limit = n;
        for (const l of listeners) l(n);
      },
    };
    const pool = new Pool({ concurrency: limit, queue: 10 });
    const g = gate();
    for (let i = 0; i < 3; i++) await pool.submit(g.task);
    assert.equal(g.running, 1);
    limit.set(3);
    await settle();
    assert.equal(g.running, 3);
    assert.throws(() => pool.resize(5), TypeError);
    g.releaseAll();
    await pool.drain();
    await pool.run(async () => { throw new BusyError("upstream full"); }).catch(() => {});
    await pool.run(async () => { throw new Error("bad input"); }).catch(() => {});
    assert.deepEqual(samples, ["success", "success", "success", "dropped", "ignore"]);
    pool.close();
    assert.equal(listeners.size, 0, "a closed, idle pool unsubscribes from its limit");
  });
});

describe("Pool: watermarks", () => {
  test("onHighWater at highWater, onLowWater at lowWater, with hysteresis", async () => {
    const events: string[] = [];
    const pool = new Pool({
      concurrency: 1,
      queue: 10,
      highWater: 4,
      lowWater: 1,
      onHighWater: () => events.push(`high@${pool.stats.queued}`),
      onLowWater: () => events.push(`low@${pool.stats.queued}`),
    });
    const g = gate();
    await pool.submit(g.task); // running
    for (let i = 0; i < 3; i++) await pool.submit(g.task);
    assert.deepEqual(events, []);
    await pool.submit(g.task); // queued 4
    assert.deepEqual(events, ["high@4"]);
    assert.equal(pool.stats.aboveHighWater, true);
    await pool.submit(g.task); // 5: no second high
    for (let i = 0; i < 3; i++) {
      g.releaseOne();
      await settle();
    }
    assert.equal(pool.stats.queued, 2);
    await pool.submit(g.task); // back to 3: still high, nothing fires
    assert.deepEqual(events, ["high@4"]);
    g.releaseOne();
    await settle();
    g.releaseOne();
    await settle();
    assert.deepEqual(events, ["high@4", "low@1"]);
    assert.equal(pool.stats.aboveHighWater, false);
    await pool.submit(g.task); // 2: below high, nothing
    assert.deepEqual(events, ["high@4", "low@1"]);
    g.releaseAll();
    for (let i = 0; i < 5; i++) {
      await settle();
      g.releaseAll();
    }
    await pool.drain();
  });
});

describe("Pool: map", () => {
  test("yields results in input order by default", async () => {
    const pool = new Pool({ concurrency: 3 });
    const delays = [5, 1, 3, 0, 2, 4];
    const out: number[] = [];
    for await (const v of pool.map(delays, async (d) => {
      for (let i = 0; i < d; i++) await settle(1);
      return d * 10;
    })) out.push(v);
    assert.deepEqual(out, [50, 10, 30, 0, 20, 40]);
    assert.equal(pool.stats.completed, 6);
  });

  test("with the real clock, map steps are sampled for waitTime and runTime like submitted tasks", async () => {
    // Steps that find a free slot skip the task record; a sampled one must still be timed.
    // The stride doubles from 1 while samples come less than 1 ms apart, so 4,000 quick steps
    // are sampled at least log2(4000) ~ 12 times; losing the sample after the first stride
    // change would leave 2.
    const pool = new Pool({ concurrency: 4 });
    const N = 4000;
    let n = 0;
    for await (const v of pool.map(Array.from({ length: N }, (_, i) => i), async (i) => i)) n += v >= 0 ? 1 : 0;
    assert.equal(n, N);
    const { runTime, waitTime, completed } = pool.stats;
    assert.equal(completed, N);
    assert.ok(runTime.count >= 8, `runTime sampled ${runTime.count} of ${N}`);
    assert.ok(waitTime.count >= 8, `waitTime sampled ${waitTime.count} of ${N}`);
    assert.ok(runTime.count < N);
  });

  test("ordered: false yields in completion order", async () => {
    const pool = new Pool({ concurrency: 3 });
    const gates = [deferred(), deferred(), deferred()];
    const it = pool.map([0, 1, 2], async (i) => {
      await gates[i]!.promise;
      return i;
    }, { ordered: false });
    const first = it.next();
    gates[2]!.resolve();
    assert.deepEqual(await first, { value: 2, done: false });
    gates[0]!.resolve();
    assert.deepEqual(await it.next(), { value: 0, done: false });
    gates[1]!.resolve();
    assert.deepEqual(await it.next(), { value: 1, done: false });
    assert.deepEqual(await it.next(), { value: undefined, done: true });
  });

  test("pulls an item only when a slot is free, and never holds more than concurrency pulled but unconsumed", async () => {
    const pool = new Pool({ concurrency: 2 });
    let pulled = 0;
    function* source() {
      for (let i = 0; i < 100; i++) {
        pulled++;
        yield i;
      }
    }
    const it = pool.map(source(), async (x) => x);
    assert.equal(pulled, 0, "nothing is pulled before the first next()");
    assert.deepEqual(await it.next(), { value: 0, done: false });
    await settle();
    // The consumer is idle: at most concurrency items were pulled beyond what it consumed.
    assert.ok(pulled - 1 <= 2, `pulled ${pulled} with 1 consumed`);
    for (let i = 1; i < 5; i++) assert.equal((await it.next()).value, i);
    await settle();
    assert.ok(pulled - 5 <= 2, `pulled ${pulled} with 5 consumed`);
    await it.return!();
  });

  test("a slow head blocks pulling beyond the window (reorder window bounded by concurrency)", async () => {
    const pool = new Pool({ concurrency: 3 });
    let pulled = 0;
    const head = deferred<number>();
    async function* source() {
      for (let i = 0; i < 50; i++) {
        pulled++;
        yield i;
      }
    }
    const it = pool.map(source(), (x) => (x === 0 ? head.promise : x));
    const first = it.next();
    await settle(6);
    assert.equal(pulled, 3, "three in flight or done, none consumed: pulling stops");
    head.resolve(0);
    assert.deepEqual(await first, { value: 0, done: false });
    const rest: number[] = [];
    for await (const v of it) rest.push(v);
    assert.equal(rest.length, 49);
    assert.equal(pulled, 50);
  });

  test("the first failure is thrown at its position; in-flight work is signalled and the source closed", async () => {
    const pool = new Pool({ concurrency: 2 });
    let closed = false;
    const hold = deferred();
    const signals: AbortSignal[] = [];
    function* source() {
      try {
        for (let i = 0; ; i++) yield i;
      } finally {
        closed = true;
      }
    }
    const out: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const v of pool.map(source(), async (x, signal) => {
          signals.push(signal);
          if (x === 2) throw new Error("bad item 2");
          if (x === 3) await hold.promise;
          return x;
        })) out.push(v);
      })(),
      /bad item 2/,
    );
    assert.deepEqual(out, [0, 1]);
    assert.equal(closed, true);
    assert.ok(signals.every((s) => s.aborted));
    hold.resolve();
    await pool.drain();
    assert.equal(pool.stats.running, 0);
  });

  test("break stops the iteration: the source is closed and in-flight signals fire", async () => {
    const pool = new Pool({ concurrency: 2 });
    let closed = false;
    async function* source() {
      try {
        for (let i = 0; ; i++) yield i;
      } finally {
        closed = true;
      }
    }
    const inflight: AbortSignal[] = [];
    for await (const v of pool.map(source(), async (x, signal) => {
      inflight.push(signal);
      await settle(1);
      return x;
    })) {
      if (v === 3) break;
    }
    await settle();
    assert.equal(closed, true);
    assert.ok(inflight.length <= 3 + 2);
    assert.ok(inflight.every((s) => s.aborted));
    await pool.drain();
  });

  test("map's signal: an abort rejects the pending next() with the reason", async () => {
    const pool = new Pool({ concurrency: 1 });
    const ac = new AbortController();
    const never = deferred<number>();
    const it = pool.map([1, 2, 3], () => never.promise, { signal: ac.signal });
    const p = it.next();
    await settle();
    ac.abort(new Error("enough"));
    await assert.rejects(p, /enough/);
    await assert.rejects(it.next(), /enough/);
    never.resolve(0);
    await pool.drain();
    await assert.rejects(pool.map([1], (x) => x, { signal: AbortSignal.abort(new Error("pre")) }).next(), /pre/);
  });

  test("a failing source is reported at its position", async () => {
    const pool = new Pool({ concurrency: 2 });
    async function* source() {
      yield 1;
      throw new Error("source broke");
    }
    const out: number[] = [];
    await assert.rejects((async () => {
      for await (const v of pool.map(source(), (x) => x)) out.push(v);
    })(), /source broke/);
    assert.deepEqual(out, [1]);
  });

  test("map shares the pool's slots with submitted work", async () => {
    const pool = new Pool({ concurrency: 2 });
    const g = gate();
    await pool.submit(g.task);
    let peak = 0;
    let now = 0;
    const it = pool.map([1, 2, 3, 4], async (x) => {
      peak = Math.max(peak, ++now + g.running);
      await settle(1);
      now--;
      return x;
    });
    const all: number[] = [];
    for await (const v of it) all.push(v);
    assert.deepEqual(all, [1, 2, 3, 4]);
    assert.ok(peak <= 2, `peak ${peak}`);
    g.releaseAll();
    await pool.drain();
  });
});
