/**
 * Randomized stress of ErrGroup: spawners hand a group (with or without a limit, with or
 * without a parent signal that aborts at a random point) random tasks through `go` (awaited or
 * not, with or without a signal for the wait for a slot, which may abort) and `tryGo`. Tasks
 * succeed or fail, synchronously or after a random number of turns.
 *
 * Checked: the tasks running at once (counted by the tasks themselves) never exceed the
 * limit; `go` resolves only once its task has started, `tryGo` returns true only if it started
 * its task; every accepted task runs exactly once and a refused one never; a task started
 * after the group failed sees an aborted signal; `group.signal` is the signal every task gets,
 * aborted by the parent's abort; `wait()` settles only after every accepted task settled, with
 * the first error the group saw (or none), and aborts `group.signal`.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { ErrGroup } from "../../../src/index.js";
import { background, checkProperty, delay, delayArb, later, parkedSummary, startRun, TestAbort, watchdog } from "./harness.js";

type AbortPlan = { kind: "none" } | { kind: "pre" } | { kind: "after"; d: number };
interface TaskSpec {
  pre: number;
  via: "go" | "tryGo";
  /** For `go`: await it before spawning the next task, or let it wait in the background. */
  awaitGo: boolean;
  /** For `go`: the signal of its wait for a slot. */
  abort: AbortPlan;
  outcome: "ok" | "fail" | "sync" | "syncThrow";
  duration: number;
}
interface Plan {
  limit: number | undefined;
  spawners: TaskSpec[][];
  parentAbort: number | undefined;
}

const MAX_TASKS = 8;

const abortArb: fc.Arbitrary<AbortPlan> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: "none" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "pre" as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("after" as const), d: delayArb(7) }) },
);

const planArb: fc.Arbitrary<Plan> = fc.record({
  limit: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined, freq: 4 }),
  spawners: fc.array(
    fc.array(
      fc.record({
        pre: delayArb(),
        via: fc.constantFrom("go" as const, "go" as const, "tryGo" as const),
        awaitGo: fc.boolean(),
        abort: abortArb,
        outcome: fc.constantFrom("ok" as const, "ok" as const, "ok" as const, "fail" as const, "sync" as const, "syncThrow" as const),
        duration: delayArb(7),
      }),
      { maxLength: MAX_TASKS },
    ),
    { minLength: 1, maxLength: 3 },
  ),
  parentAbort: fc.option(delayArb(9), { nil: undefined, freq: 3 }),
});

class TaskError extends Error {
  constructor(readonly id: number) {
    super(`task ${id} failed`);
  }
}

async function runPlan(plan: Plan): Promise<void> {
  const run = startRun("errgroup");
  const limit = plan.limit ?? Infinity;
  const parent = new AbortController();
  const parentReason = new TestAbort("parent");
  const group = new ErrGroup({ name: run.name, limit: plan.limit, signal: plan.parentAbort === undefined ? undefined : parent.signal });
  const n = plan.spawners.length * MAX_TASKS;
  const runs = new Uint8Array(n); // times each task started
  const accepted = new Uint8Array(n); // 1: go resolved / tryGo true; 2: go rejected / tryGo false
  let running = 0;
  let peak = 0;
  let settled = 0; // tasks whose bodies finished
  let firstError: TaskError | undefined;
  let parentAbortedFirst = false;
  const background_: Promise<void>[] = [];

  const check = (where: string): void => {
    assert.ok(running >= 0 && running <= limit, `${where}: ${running} tasks running, limit ${limit}`);
    assert.ok(group.pending >= running, `${where}: pending ${group.pending} < running ${running}`);
  };

  // A failed assertion inside a task would reach the group as the task's failure: keep it
  // here too, and report it first.
  let violation: unknown;
  const inTask = (body: () => void): void => {
    try {
      body();
    } catch (e) {
      violation ??= e;
      throw e;
    }
  };

  const makeTask = (id: number, spec: TaskSpec) => (signal: AbortSignal): unknown => {
    const where = `task ${id}`;
    runs[id]!++;
    running++;
    peak = Math.max(peak, running);
    inTask(() => {
      assert.equal(runs[id], 1, `${where} ran twice`);
      assert.equal(signal, group.signal, `${where}: gets group.signal`);
      if (firstError !== undefined) assert.ok(signal.aborted, `${where}: started after the group failed, with a live signal`);
      check(where);
    });
    const finish = (): void => {
      running--;
      settled++;
      inTask(() => check(`${where} finished`));
    };
    if (spec.outcome === "sync") {
      finish();
      return 42;
    }
    if (spec.outcome === "syncThrow") {
      finish();
      const e = new TaskError(id);
      firstError ??= e; // the group sees a synchronous throw at once
      throw e;
    }
    const p = (async () => {
      await delay(spec.duration);
      finish();
      if (spec.outcome === "fail") throw new TaskError(id);
    })();
    // Registered before the group's own handler on the same promise, so this runs just
    // before the group sees the outcome: the order of failures the group sees.
    p.catch((e: TaskError) => {
      firstError ??= e;
    });
    return p;
  };

  const spawner = async (s: number, specs: TaskSpec[]): Promise<void> => {
    const detached: Promise<void>[] = [];
    for (let k = 0; k < specs.length; k++) {
      const spec = specs[k]!;
      const id = s * MAX_TASKS + k;
      const where = `spawner ${s} task ${id} (${spec.via})`;
      await delay(spec.pre);
      check(where);
      const task = makeTask(id, spec);
      if (spec.via === "tryGo") {
        const ok = group.tryGo(task);
        assert.equal(runs[id], ok ? 1 : 0, `${where}: tryGo returned ${ok} and the task ran ${runs[id]} times`);
        if (!ok) assert.ok(plan.limit !== undefined, `${where}: tryGo refused without a limit`);
        accepted[id] = ok ? 1 : 2;
        check(where);
        continue;
      }
      const reason = new TestAbort(where);
      let signal: AbortSignal | undefined;
      if (spec.abort.kind === "pre") signal = AbortSignal.abort(reason);
      else if (spec.abort.kind === "after") {
        const c = new AbortController();
        signal = c.signal;
        background_.push(later(spec.abort.d, () => c.abort(reason)));
      }
      const pendingBefore = group.pending;
      const pr = group.go(task, signal === undefined ? undefined : { signal });
      if (spec.abort.kind === "pre") {
        assert.equal(group.pending, pendingBefore, `${where}: an already-aborted go accepts nothing`);
        assert.equal(runs[id], 0, `${where}: an already-aborted go ran its task`);
      } else {
        // Counted as pending at once, unless it started at once and finished synchronously.
        const finishedAtOnce = runs[id] === 1 && (spec.outcome === "sync" || spec.outcome === "syncThrow");
        assert.equal(group.pending, pendingBefore + (finishedAtOnce ? 0 : 1), `${where}: go counts its task as pending at once`);
      }
      const outcome = pr.then(
        () => {
          assert.equal(runs[id], 1, `${where}: go resolved before its task started`);
          accepted[id] = 1;
        },
        (e: unknown) => {
          assert.equal(e, reason, `${where}: go rejects only with its signal's reason, got ${String(e)}`);
          assert.equal(runs[id], 0, `${where}: go rejected but its task ran`);
          accepted[id] = 2;
        },
      );
      if (spec.awaitGo) await outcome;
      else detached.push(background(outcome));
    }
    await Promise.all(detached);
  };

  const owner = async (): Promise<void> => {
    if (plan.parentAbort !== undefined) {
      background_.push(
        later(plan.parentAbort, () => {
          parentAbortedFirst = !group.signal.aborted;
          parent.abort(parentReason);
          assert.ok(group.signal.aborted, "the parent's abort aborts group.signal at once");
        }),
      );
    }
    await Promise.all(plan.spawners.map((specs, s) => spawner(s, specs)));
    let waitError: unknown;
    let waitFailed = false;
    try {
      await group.wait();
    } catch (e) {
      waitFailed = true;
      waitError = e;
    }
    // wait() settled: every accepted task settled, and the group's signal is aborted.
    let acceptedCount = 0;
    for (let id = 0; id < n; id++) {
      if (accepted[id] === 1) acceptedCount++;
      assert.equal(runs[id], accepted[id] === 1 ? 1 : 0, `task ${id}: accepted ${accepted[id]} but ran ${runs[id]} times`);
    }
    assert.equal(settled, acceptedCount, "wait() settled before every task did");
    assert.equal(running, 0);
    assert.equal(group.pending, 0, "pending is 0 after wait()");
    assert.ok(group.signal.aborted, "wait() aborts group.signal");
    assert.equal(waitFailed, firstError !== undefined, `wait() ${waitFailed ? "rejected" : "resolved"}, first error ${String(firstError)}`);
    if (waitFailed) assert.equal(waitError, firstError, `wait() rejects with the first error: ${String(firstError)}, got ${String(waitError)}`);
    if (parentAbortedFirst) assert.equal(group.signal.reason, parentReason, "group.signal's reason is the parent's");
    else if (firstError !== undefined) assert.equal(group.signal.reason, firstError, "group.signal's reason is the first error");
    assert.ok(peak <= limit);
    await Promise.all(background_);
  };

  try {
    await watchdog(() => `running ${running}, pending ${group.pending}; parked: ${parkedSummary()}`, owner());
  } catch (e) {
    throw violation ?? e;
  } finally {
    parent.abort(new TestAbort("cleanup"));
  }
  if (violation !== undefined) throw violation;
  run.finish();
}

describe("ErrGroup under random schedules", () => {
  it("never runs more than limit tasks, runs each accepted task once, and wait() reports the first error after all settled", async () => {
    await checkProperty("errgroup stress", fc.asyncProperty(planArb, runPlan), 250);
  });
});
