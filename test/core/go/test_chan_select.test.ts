/**
 * Ports of Go's `test/chan/select.go` ... `select8.go` to sluice.
 *
 * Go's `select { ...; default: }` is `trySelect`, a nil channel is `null`, "blocks" (Go: still
 * blocked after 0.1 s) is "still pending after a few event-loop turns", "panics" is the
 * documented throw or rejection. See ./helpers.ts for the goroutine mapping.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Channel, ChannelClosedError, recv, select, send, trySelect, type SelectCase } from "../../../src/index.js";
import { assertNothingParked, go, isPending, Scope, testSeed, turns, withSeededRandom } from "./helpers.js";

test("select.go: non-blocking sends to two buffered channels evaluate every case's value once per select", () => {
  let counter = 0;
  let shift = 0;
  const getValue = (): number => {
    counter++;
    return 1 << shift;
  };
  const sendBoth = (a: Channel<number> | null, b: Channel<number> | null): number => {
    let i = 0;
    for (;;) {
      // Both values are computed on every pass, even for a nil channel's case (as in Go).
      const r = trySelect([send(a, getValue()), send(b, getValue())]);
      if (r === undefined) break;
      i++;
      if (r.index === 0) a = null;
      else b = null;
      shift++;
    }
    return i;
  };
  const a = new Channel<number>(1);
  const b = new Channel<number>(1);
  assert.equal(sendBoth(a, b), 2);
  const av = a.tryRecv()!.value!;
  const bv = b.tryRecv()!.value!;
  assert.equal(av | bv, 3, `bad values ${av} ${bv}`);
  assert.equal(sendBoth(a, null), 1);
  assert.equal(counter, 10);
});

test("select2.go: selects whose other case never fires leave nothing behind on that channel", async () => {
  // Go measures that 100,000 selects do not grow the heap. The sluice counterpart (memory is
  // not asserted in tests): the losing case of each select is unlinked from `dummy` at once, so
  // its parked receivers never pile up.
  const n = 20000; // Go: 100000, twice
  const c = new Channel<number>();
  const dummy = new Channel<number>();
  const sender = go(async () => {
    for (let i = 0; i < n; i++) await c.send(1);
  });
  for (let i = 0; i < n; i++) {
    const r = await select([recv(c), recv(dummy)]);
    assert.equal(r.index, 0, "dummy");
  }
  await sender;
  assert.equal(dummy.stats.parkedReceivers, 0);
  assert.ok(dummy.stats.peakParkedReceivers <= 1, `at most the current select waits on dummy (peak ${dummy.stats.peakParkedReceivers})`);
  assertNothingParked();
});

/** select3.go's testBlock: does `f` block (still pending after a few turns)? Cleans up after. */
async function blocks(f: (signal: AbortSignal) => Promise<unknown>): Promise<boolean> {
  const ac = new AbortController();
  const p = f(ac.signal);
  const pending = await isPending(p);
  ac.abort(new Error("test over"));
  await p.catch(() => {});
  return pending;
}

/** select3.go's testPanic: does `f` throw or reject with ChannelClosedError? */
async function panics(f: () => unknown): Promise<boolean> {
  try {
    await f();
    return false;
  } catch (e) {
    assert.ok(e instanceof ChannelClosedError, `expected ChannelClosedError, got ${String(e)}`);
    return true;
  }
}

test("select3.go: the semantics of select for nil, closed, ready and non-ready channels", async () => {
  const closedch = new Channel<number>();
  closedch.close();

  // Sending to / receiving from a nil channel blocks (a bare nil operation is a one-case select).
  assert.equal(await blocks((signal) => select([send(null, 7)], { signal })), true);
  assert.equal(await blocks((signal) => select([recv(null)], { signal })), true);

  // Nil channel cases inside a select with default are never selected.
  assert.equal(trySelect([send(null, 7)]), undefined);
  assert.equal(trySelect([recv(null)]), undefined);

  // Sending to a buffered channel with free space never blocks.
  assert.equal(await blocks(() => new Channel<number>(1).send(7)), false);

  // Receiving from a closed channel never blocks, and gives the zero value (undefined), ok false.
  assert.equal(
    await blocks(async () => {
      for (let i = 0; i < 10; i++) {
        assert.equal((await closedch.recv()).value, undefined, "zero value from closed channel");
        assert.deepEqual(await closedch.recv(), { value: undefined, ok: false });
      }
    }),
    false,
  );

  // Sending to a closed channel panics.
  assert.equal(await panics(() => closedch.send(7)), true);
  assert.equal(await panics(() => closedch.trySend(7)), true);

  // Receiving from a non-ready channel always blocks.
  assert.equal(await blocks((signal) => new Channel<number>().recv({ signal })), true);

  // Empty selects always block: with no signal, `select([])` never settles (and parks nothing).
  assert.equal(await isPending(select([])), true);
  assert.equal(await blocks((signal) => select([], { signal })), true);

  // Selects with only nil channels always block.
  assert.equal(await blocks((signal) => select([recv(null)], { signal })), true);
  assert.equal(await blocks((signal) => select([send(null, 7)], { signal })), true);
  assert.equal(await blocks((signal) => select([recv(null), send(null, 7)], { signal })), true);

  // Selects with non-ready non-nil channels always block.
  assert.equal(await blocks((signal) => select([recv(new Channel<number>())], { signal })), true);

  // Selects with default cases don't block.
  assert.equal(trySelect([]), undefined);
  assert.equal(trySelect([recv(null)]), undefined);
  assert.equal(trySelect([send(null, 7)]), undefined);

  // Selects with ready channels don't block (and do not take the default case).
  assert.deepEqual(trySelect([send(new Channel<number>(1), 7)]), { index: 0, value: undefined, ok: true });
  {
    const ch = new Channel<number>(1);
    await ch.send(7);
    assert.deepEqual(trySelect([recv(ch)]), { index: 0, value: 7, ok: true });
  }

  // Selects with closed channels behave like ordinary operations.
  assert.equal(await blocks(() => select([recv(closedch)])), false);
  assert.deepEqual(await select([recv(closedch)]), { index: 0, value: undefined, ok: false });
  assert.equal(await panics(() => select([send(closedch, 7)])), true);
  assert.equal(await panics(() => trySelect([send(closedch, 7)])), true);

  // A select does not get confused if it sees itself: it cannot pair with its own cases.
  assert.equal(
    await blocks((signal) => {
      const c = new Channel<number>();
      return select([send(c, 1), recv(c)], { signal });
    }),
    true,
  );
  assertNothingParked();
});

test("select4.go: only the case that fires delivers its value; the other case has no effect", async () => {
  // Go checks that the assignment target of a case that did not fire is not even evaluated.
  // In sluice a case carries no target: the fired case's value comes back in the result alone.
  const c = new Channel<number>(1);
  const c1 = new Channel<number>();
  await c.send(42);
  const r = await select([recv(c1), recv(c)]);
  assert.deepEqual(r, { index: 1, value: 42, ok: true });
  assert.equal(c1.stats.received + c1.stats.recvsWaited, 0, "the case on c1 left no trace");
  assertNothingParked();
});

test("select5.go: every combination of default, dummy and nil cases around one real send or receive", async () => {
  // Go generates one program per combination; here they are enumerated in a loop. The real
  // case is placed at every position among the extra cases, with and without a default.
  const extras = ["dummy send", "dummy recv", "nil send", "nil recv"] as const;
  const dummy = new Channel<number>();
  const c = new Channel<number>(1); // buffered, so one goroutine does both ends (as in Go)
  let n = 1;
  let combinations = 0;
  for (let mask = 0; mask < 1 << extras.length; mask++) {
    const chosen = extras.filter((_, i) => (mask & (1 << i)) !== 0);
    for (let pos = 0; pos <= chosen.length; pos++) {
      for (const withDefault of [false, true]) {
        for (const op of ["recv", "send"] as const) {
          combinations++;
          // (select5's evaluation-order checks test Go's compiler; here the cases are an array
          // literal, evaluated by JavaScript once, in order, before select runs.)
          const cases: SelectCase[] = chosen.map((e) =>
            e.endsWith("send") ? send(e.startsWith("nil") ? null : dummy, 1) : recv(e.startsWith("nil") ? null : dummy),
          );
          if (op === "recv") await c.send(n);
          cases.splice(pos, 0, op === "recv" ? recv(c) : send(c, n));
          const r = withDefault ? trySelect(cases) : await select(cases);
          assert.ok(r !== undefined, `nonblock: ${op} at ${pos} among ${chosen.join(", ")}`);
          assert.equal(r.index, pos, `${op} at ${pos} among [${chosen.join(", ")}]: case ${r.index} fired`);
          const x = op === "recv" ? r.value : (await c.recv()).value;
          assert.equal(x, n, `have ${String(x)} want ${n}`);
          n++;
        }
      }
    }
  }
  // The "nonblock" template: only extra cases, none can proceed, so default runs and nothing
  // is touched.
  for (let mask = 0; mask < 1 << extras.length; mask++) {
    const cases = extras
      .filter((_, i) => (mask & (1 << i)) !== 0)
      .map((e) => (e.endsWith("send") ? send(e.startsWith("nil") ? null : dummy, 1) : recv(e.startsWith("nil") ? null : dummy)));
    assert.equal(trySelect(cases), undefined);
  }
  assert.equal(combinations, 192); // 4 ops x sum over subsets of (size + 1) positions
  assert.deepEqual([dummy.stats.sent, dummy.stats.received, dummy.stats.parkedReceivers, dummy.stats.parkedSenders], [0, 0, 0, 0]);
  assertNothingParked();
});

test("select6.go (issue 2075): a select that loses on a channel with other waiters leaves that channel's queue intact", async () => {
  const c1 = new Channel<boolean>();
  const c2 = new Channel<boolean>();
  const c3 = new Channel<boolean>();
  const g1 = go(async () => {
    await c1.recv();
  });
  const g2 = go(async () => {
    const r = await select([recv(c1), recv(c2)]);
    assert.equal(r.index, 1, "dummy");
    await c3.send(true);
    await c1.recv();
  });
  const g3 = go(async () => {
    await c2.send(true);
  });
  await c3.recv();
  await c1.send(true);
  await c1.send(true);
  await Promise.all([g1, g2, g3]);
  assertNothingParked();
});

test("select7.go: every pairing of send (plain, one-case select, two-case select) with receive (the same three) delivers", async () => {
  type Recv = (c: Channel<number>) => Promise<unknown>;
  const recv1: Recv = (c) => c.recv();
  const recv2: Recv = (c) => select([recv(c)]);
  const recv3: Recv = (c) => select([recv(c), recv(new Channel<number>())]);
  const sends: ((rf: Recv) => Promise<void>)[] = [
    async (rf) => {
      const c = new Channel<number>();
      const g = go(() => rf(c));
      await turns(1);
      await c.send(1);
      await g;
    },
    async (rf) => {
      const c = new Channel<number>();
      const g = go(() => rf(c));
      await turns(1);
      await select([send(c, 1)]);
      await g;
    },
    async (rf) => {
      const c = new Channel<number>();
      const g = go(() => rf(c));
      await turns(1);
      const r = await select([send(c, 1), send(new Channel<number>(), 1)]);
      assert.equal(r.index, 0);
      await g;
    },
  ];
  for (const rf of [recv1, recv2, recv3]) for (const sf of sends) await sf(rf);
  assertNothingParked();
});

test("select8.go: one-, two- and three-case selects with a goroutine sending forever; a select never pairs with itself", async () => {
  await withSeededRandom(testSeed(0x5e18), async () => {
    const ch = new Channel<number>();
    const scope = new Scope();
    scope.go(async (signal) => {
      for (;;) await ch.send(5, { signal });
    });
    assert.deepEqual(await select([recv(ch)]), { index: 0, value: 5, ok: true });
    assert.equal(trySelect([]), undefined);
    await turns(1); // the sender is parked again
    assert.deepEqual(trySelect([recv(ch)]), { index: 0, value: 5, ok: true });
    for (let i = 0; i < 50; i++) {
      await turns(1);
      // `ch <- 10` could only pair with a receiver; the only one is this select itself.
      const r = trySelect([recv(ch), send(ch, 10)]);
      assert.ok(r === undefined || r.index === 0, "unreachable: the send case fired");
      if (r !== undefined) assert.equal(r.value, 5);
    }
    await scope.cancel();
    assertNothingParked();
  });
});
