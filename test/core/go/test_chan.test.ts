/**
 * Ports of Go's `test/chan/nonblock.go`, `doubleselect.go`, `fifo.go`, `goroutines.go`,
 * `zerosize.go` and `sendstmt.go` to sluice (see ./helpers.ts for the goroutine mapping).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Channel, recv, select, send, trySelect } from "../../../src/index.js";
import { assertNothingParked, go, testSeed, turns, withSeededRandom } from "./helpers.js";

/**
 * nonblock.go, for one value type: a non-blocking receive from an empty channel takes the
 * default case; a non-blocking send succeeds once a receiver waits (or there is room); a
 * non-blocking receive succeeds once a sender waits (or a value is buffered). Go retries up to
 * 10000 times with a short sleep; here each retry waits one event-loop turn, at most 100.
 */
async function nonblock<T>(buffer: number, toReceiver: T, fromSender: T): Promise<void> {
  const maxTries = 100;
  const c = new Channel<T>(buffer);
  const strobe = new Channel<boolean>();
  assert.equal(trySelect([recv(c)]), undefined, "blocked sender");

  const receiver = go(async () => {
    assert.equal((await c.recv()).value, toReceiver, "receiver value");
    await strobe.send(true);
  });
  for (let tries = 0; ; tries++) {
    if (trySelect([send(c, toReceiver)]) !== undefined) break;
    assert.ok(tries < maxTries, `receiver buffer=${buffer}`);
    await turns(1);
  }
  await strobe.recv();
  await receiver;

  const sender = go(async () => {
    await c.send(fromSender);
    await strobe.send(true);
  });
  if (buffer > 0) await strobe.recv();
  let got: T | undefined;
  for (let tries = 0; ; tries++) {
    const r = trySelect([recv(c)]);
    if (r !== undefined) {
      got = r.value as T;
      break;
    }
    assert.ok(tries < maxTries, `sender buffer=${buffer}`);
    await turns(1);
  }
  assert.equal(got, fromSender, "sender value");
  if (buffer === 0) await strobe.recv();
  await sender;
}

test("nonblock.go: non-blocking sends and receives succeed exactly when the other side is ready (numbers, bigints, booleans, strings; capacity 0 and 1)", async () => {
  for (let buffer = 0; buffer < 2; buffer++) {
    await nonblock<number>(buffer, 123, 234);
    await nonblock<bigint>(buffer, 123456n, 234567n);
    await nonblock<boolean>(buffer, true, true);
    await nonblock<string>(buffer, "hello", "hello again");
  }
  assertNothingParked();
});

test("doubleselect.go: a four-way send select never fires two cases in one iteration (every value arrives exactly once)", async () => {
  await withSeededRandom(testSeed(0xd0b1e), async () => {
    const iterations = 20000; // Go: 100000
    const [c1, c2, c3, c4] = [0, 1, 2, 3].map(() => new Channel<number>());
    const done = new Channel<boolean>();
    const cmux = new Channel<number>();

    const sender = go(async () => {
      try {
        for (let i = 0; i < iterations; i++) await select([send(c1!, i), send(c2!, i), send(c3!, i), send(c4!, i)]);
      } finally {
        c1!.close();
        c2!.close();
        c3!.close();
        c4!.close();
      }
    });
    const muxes = [c1!, c2!, c3!, c4!].map((input) =>
      go(async () => {
        for await (const v of input) await cmux.send(v);
        await done.send(true);
      }),
    );
    const closer = go(async () => {
      for (let i = 0; i < 4; i++) await done.recv();
      cmux.close();
    });

    const seen = new Uint8Array(iterations);
    let count = 0;
    for await (const v of cmux) {
      assert.equal(seen[v], 0, `got duplicate value: ${v}`);
      seen[v] = 1;
      count++;
    }
    await Promise.all([sender, ...muxes, closer]);
    assert.equal(count, iterations, "every value arrived");
    const perChannel = [c1!, c2!, c3!, c4!].map((c) => c.stats.sent);
    assert.ok(perChannel.every((n) => n > 0), `every case fired at some point: ${perChannel.join(", ")}`);
    assertNothingParked();
  });
});

test("fifo.go: AsynchFifo: a buffered channel is a FIFO", async () => {
  const N = 10;
  const ch = new Channel<number>(N);
  for (let i = 0; i < N; i++) await ch.send(i);
  for (let i = 0; i < N; i++) assert.equal((await ch.recv()).value, i, "bad receive");
});

test("fifo.go: SynchFifo: receivers threaded in a daisy chain read an unbuffered channel in sequence", async () => {
  const N = 10;
  const ch = new Channel<number>();
  let input = new Channel<number>();
  const start = input;
  const chain: Promise<void>[] = [];
  for (let i = 0; i < N; i++) {
    const out = new Channel<number>();
    const [inp, val] = [input, i];
    chain.push(
      go(async () => {
        await inp.recv();
        assert.equal((await ch.recv()).value, val);
        await out.send(1);
      }),
    );
    input = out;
  }
  await start.send(0);
  for (let i = 0; i < N; i++) await ch.send(i);
  await input.recv();
  await Promise.all(chain);
  assertNothingParked();
});

test("goroutines.go: 10000 goroutines threaded together pass one value down the chain and all finish", async () => {
  const n = 10000; // as in Go
  const leftmost = new Channel<number>();
  let right = leftmost;
  let left = leftmost;
  const gs: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    right = new Channel<number>();
    const [l, r] = [left, right];
    gs.push(
      go(async () => {
        await l.send((await r.recv()).value!);
      }),
    );
    left = right;
  }
  const last = right;
  gs.push(
    go(async () => {
      await last.send(1);
    }),
  );
  assert.deepEqual(await leftmost.recv(), { value: 1, ok: true });
  await Promise.all(gs);
  assertNothingParked();
});

test("zerosize.go: channels of an empty type (undefined, []) carry values, told apart from close by ok", async () => {
  // Go: making channels of zero-sized types must not panic. In JavaScript the signal-only
  // payload is `undefined`; it must still count as a value, distinct from a closed channel.
  for (const cap of [0, 1]) {
    const c = new Channel<undefined>(cap);
    const g = go(() => c.send(undefined));
    assert.deepEqual(await c.recv(), { value: undefined, ok: true }, `cap ${cap}: a value`);
    await g;
    if (cap > 0) {
      assert.equal(c.trySend(undefined), true);
      assert.equal(c.length, 1, "an undefined value occupies the buffer");
      assert.deepEqual(trySelect([recv(c)]), { index: 0, value: undefined, ok: true });
    }
    c.close();
    assert.deepEqual(await c.recv(), { value: undefined, ok: false }, `cap ${cap}: closed`);
    const e = new Channel<[]>(cap);
    assert.equal(e.capacity, cap);
  }
  assertNothingParked();
});

test("sendstmt.go: the channel of a send case may itself come from a receive", async () => {
  // chanchan: `case <-cc <- 2` sends 2 on the channel received from cc.
  const cc = new Channel<Channel<number>>(1);
  const c = new Channel<number>(1);
  await cc.send(c);
  const r = trySelect([send((await cc.recv()).value!, 2)]);
  assert.ok(r !== undefined, "nonblock");
  assert.equal((await c.recv()).value, 2, "bad receive");
  // (sendprec, `c <- false || true`, checks Go's parser: nothing for sluice to port.)
});
