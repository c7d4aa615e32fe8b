import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { InMemoryBroker, type Delivery } from "../../../examples/order-service/broker.js";

test("delivers in order, then undefined once the source is exhausted", async () => {
  const b = new InMemoryBroker(["a", "b"]);
  const d1 = await b.receive();
  const d2 = await b.receive();
  assert.deepEqual([d1?.body, d2?.body, d1?.messageId, d2?.messageId], ["a", "b", 0, 1]);
  assert.equal(await b.receive(), undefined);
  b.ack(d1!.tag);
  b.ack(d2!.tag);
  assert.deepEqual(b.stats, { published: 2, delivered: 2, redelivered: 0, acked: 2, nacked: 0, unacked: 0, requeued: 0, drained: true });
});

test("receive waits while maxUnacked are outstanding, and takes nothing from the source meanwhile", { timeout: 5000 }, async () => {
  let pulled = 0;
  function* source(): Generator<string> {
    for (let i = 0; i < 10; i++) {
      pulled++;
      yield `m${i}`;
    }
  }
  const b = new InMemoryBroker(source(), { maxUnacked: 2 });
  const d1 = (await b.receive())!;
  await b.receive();
  const third = b.receive();
  let settled = false;
  void third.then(() => (settled = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(settled, false);
  assert.equal(pulled, 2);
  b.ack(d1.tag);
  assert.equal((await third)?.body, "m2");
  assert.equal(pulled, 3);
});

test("an aborted receive rejects with the reason and takes nothing", async () => {
  const b = new InMemoryBroker(["a", "b"], { maxUnacked: 1 });
  await b.receive();
  const ctl = new AbortController();
  const waiting = b.receive({ signal: ctl.signal });
  const reason = new Error("stop");
  ctl.abort(reason);
  await assert.rejects(waiting, (e) => e === reason);
  assert.equal(b.stats.delivered, 1);
  assert.equal(b.stats.published, 1);
});

test("a nacked message is delivered again, first, with a new tag and attempt + 1", async () => {
  const b = new InMemoryBroker(["a", "b"]);
  const d = (await b.receive())!;
  b.nack(d.tag);
  const again = (await b.receive())!;
  assert.deepEqual([again.body, again.messageId, again.attempt], ["a", 0, 2]);
  assert.notEqual(again.tag, d.tag);
  assert.equal(b.stats.redelivered, 1);
});

test("acking twice, or a tag never delivered, throws and changes nothing", async () => {
  const b = new InMemoryBroker(["a"]);
  const d = (await b.receive())!;
  b.ack(d.tag);
  assert.throws(() => b.ack(d.tag), RangeError);
  assert.throws(() => b.nack(99), RangeError);
  assert.equal(b.stats.acked, 1);
  assert.equal(b.stats.nacked, 0);
  assert.throws(() => new InMemoryBroker([], { maxUnacked: 0 }), /maxUnacked must be a positive safe integer, got 0/);
});

test("randomized: every message is acked exactly once in the end, outstanding never above maxUnacked", { timeout: 20_000 }, async () => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 1, max: 5 }), fc.array(fc.boolean(), { minLength: 200, maxLength: 200 }), async (n, max, nacks) => {
      const b = new InMemoryBroker(Array.from({ length: n }, (_, i) => `m${i}`), { maxUnacked: max });
      const held: Delivery[] = [];
      const acked = new Map<number, number>();
      let k = 0;
      for (;;) {
        if (held.length === max || (b.stats.drained && held.length > 0)) {
          const d = held.shift()!;
          if (nacks[k++ % nacks.length] === true && d.attempt < 3) b.nack(d.tag);
          else {
            b.ack(d.tag);
            acked.set(d.messageId, (acked.get(d.messageId) ?? 0) + 1);
          }
          continue;
        }
        const d = await b.receive();
        if (d === undefined) {
          if (held.length === 0) break;
          continue;
        }
        held.push(d);
        assert.ok(b.stats.unacked <= max);
      }
      assert.equal(acked.size, n);
      assert.ok([...acked.values()].every((c) => c === 1));
      const s = b.stats;
      assert.equal(s.delivered, s.acked + s.nacked + s.unacked);
      assert.equal(s.acked, n);
    }),
    { numRuns: 60 },
  );
});
