/**
 * Ports of golang.org/x/sync `errgroup/errgroup_test.go` to sluice's `ErrGroup`.
 *
 * Mapping: a task returning a non-nil error is a task that rejects (throws); `new(errgroup.Group)`
 * is `new ErrGroup()`; `errgroup.WithContext(ctx)` is `new ErrGroup({ signal })`, its `ctx` being
 * `group.signal` (ctx.Done() is `done(group.signal)`, context.Cause(ctx) is
 * `group.signal.reason`); `g.Go(f)` blocks for a slot, so it is `await group.go(f)`.
 * Differences from Go, pinned here: the limit is fixed at construction (Go's SetLimit changes
 * it between uses: a new group stands in), and a limit of 0 is refused with RangeError (Go's
 * SetLimit(0) makes every Go block and every TryGo fail).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Channel, ErrGroup, done, recv, trySelect } from "../../../src/index.js";
import { assertNothingParked, go, turns } from "./helpers.js";

const task = (err: Error | null) => async (): Promise<void> => {
  if (err !== null) throw err;
};

test("ExampleGroup_parallel: results of parallel searches, in order, and no error", async () => {
  const fakeSearch = (kind: string) => async (_signal: AbortSignal, query: string) => `${kind} result for "${query}"`;
  const searches = [fakeSearch("web"), fakeSearch("image"), fakeSearch("video")];
  const google = async (signal: AbortSignal, query: string): Promise<string[]> => {
    const g = new ErrGroup({ signal });
    const results = new Array<string>(searches.length);
    for (const [i, search] of searches.entries()) {
      await g.go(async (s) => {
        results[i] = await search(s, query);
      });
    }
    await g.wait();
    return results;
  };
  assert.deepEqual(await google(new AbortController().signal, "golang"), [
    'web result for "golang"',
    'image result for "golang"',
    'video result for "golang"',
  ]);
});

test("TestZeroGroup: wait() reports the first error of all tasks so far, and a group is reusable after wait()", async () => {
  const err1 = new Error("errgroup_test: 1");
  const err2 = new Error("errgroup_test: 2");
  const cases: (Error | null)[][] = [[], [null], [err1], [err1, null], [err1, null, err2]];
  for (const errs of cases) {
    const g = new ErrGroup();
    let firstErr: Error | null = null;
    for (const [i, err] of errs.entries()) {
      await g.go(task(err));
      if (firstErr === null && err !== null) firstErr = err;
      const gErr = await g.wait().then(
        () => null,
        (e: unknown) => e,
      );
      assert.equal(gErr, firstErr, `after go() for errors ${JSON.stringify(errs.slice(0, i + 1).map(String))}`);
    }
  }
  assertNothingParked();
});

test("TestWithContext: wait() returns the first error, and the group's signal (ctx.Done()) is done after wait()", async () => {
  const errDoom = new Error("group_test: doomed");
  const cases: { errs: (Error | null)[]; want: Error | null }[] = [
    { errs: [], want: null },
    { errs: [null], want: null },
    { errs: [errDoom], want: errDoom },
    { errs: [errDoom, null], want: errDoom },
  ];
  for (const { errs, want } of cases) {
    const g = new ErrGroup({ signal: new AbortController().signal });
    for (const err of errs) await g.go(task(err));
    const err = await g.wait().then(
      () => null,
      (e: unknown) => e,
    );
    assert.equal(err, want);
    const canceled = trySelect([recv(done(g.signal))]) !== undefined;
    assert.ok(canceled, `ctx.Done() was not closed for errors ${JSON.stringify(errs.map(String))}`);
  }
  assertNothingParked();
});

test("TestTryGo: tryGo starts a task only while a slot is free", async () => {
  const ch = new Channel<undefined>();
  const fn = async (): Promise<void> => {
    await ch.send(undefined);
  };
  const drain = (n: number) =>
    go(async () => {
      for (let i = 0; i < n; i++) await ch.recv();
    });

  const n = 42;
  const g = new ErrGroup({ limit: 42 });
  for (let i = 0; i < n; i++) assert.ok(g.tryGo(fn), `TryGo should succeed but got fail at ${i}-th call`);
  assert.equal(g.tryGo(fn), false, "TryGo is expected to fail but succeeded");
  const d1 = drain(n);
  await g.wait();
  await d1;

  // The group is reusable after wait().
  assert.ok(g.tryGo(fn), "TryGo should succeed but got fail after all goroutines");
  const d2 = drain(1);
  await g.wait();
  await d2;

  // Switch limit (Go: SetLimit(1) on the same group; sluice: a group with limit 1).
  const g1 = new ErrGroup({ limit: 1 });
  assert.ok(g1.tryGo(fn), "TryGo should succeed but got failed");
  assert.equal(g1.tryGo(fn), false, "TryGo should fail but succeeded");
  const d3 = drain(1);
  await g1.wait();
  await d3;

  // Block all calls (Go: SetLimit(0)): sluice refuses a limit of 0 instead.
  assert.throws(() => new ErrGroup({ limit: 0 }), RangeError);
  assertNothingParked();
});

test("TestGoLimit: with a limit of 10, at most 10 of 1025 tasks are ever active", async () => {
  const limit = 10;
  const g = new ErrGroup({ limit });
  let active = 0;
  let peak = 0;
  for (let i = 0; i <= 1 << 10; i++) {
    await g.go(async () => {
      const n = ++active;
      peak = Math.max(peak, n);
      if (n > limit) throw new Error(`saw ${n} active goroutines; want <= ${limit}`);
      await turns(1); // give other tasks a chance to increment active
      active--;
    });
  }
  await g.wait();
  assert.equal(peak, limit, "the limit was reached, never passed");
  assertNothingParked();
});

test("TestCancelCause: the group's signal is aborted with the first error as its reason (context.Cause), or a plain abort when none failed", async () => {
  const errDoom = new Error("group_test: doomed");
  const cases: { errs: (Error | null)[]; want: Error | null }[] = [
    { errs: [], want: null },
    { errs: [null], want: null },
    { errs: [errDoom], want: errDoom },
    { errs: [errDoom, null], want: errDoom },
  ];
  for (const { errs, want } of cases) {
    const g = new ErrGroup({ signal: new AbortController().signal });
    for (const err of errs) assert.ok(g.tryGo(task(err)));
    const err = await g.wait().then(
      () => null,
      (e: unknown) => e,
    );
    assert.equal(err, want);
    assert.ok(g.signal.aborted);
    if (want !== null) {
      assert.equal(g.signal.reason, want, "context.Cause(ctx) is the first error");
    } else {
      // Go: context.Canceled. Here: the default reason of AbortController.abort().
      const reason: unknown = g.signal.reason;
      assert.ok(reason instanceof DOMException && reason.name === "AbortError", `got ${String(reason)}`);
    }
  }
  assertNothingParked();
});
