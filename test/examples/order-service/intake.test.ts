import assert from "node:assert/strict";
import { test } from "node:test";
import { Channel } from "../../../src/index.js";
import { InMemoryBroker, type Delivery } from "../../../examples/order-service/broker.js";
import { feed } from "../../../examples/order-service/intake.js";

test("moves every message into the channel, then closes it", { timeout: 5000 }, async () => {
  const broker = new InMemoryBroker(["a", "b", "c"]);
  const out = new Channel<Delivery>(1);
  const seen: number[] = [];
  const done = feed(broker, out, { signal: new AbortController().signal }, (d) => seen.push(d.messageId));
  const bodies: string[] = [];
  for await (const d of out) {
    bodies.push(d.body);
    broker.ack(d.tag);
  }
  await done;
  assert.deepEqual(bodies, ["a", "b", "c"]);
  assert.deepEqual(seen, [0, 1, 2]);
});

test("a stop ends it and closes the channel; a delivery taken but not handed on stays unacked", { timeout: 5000 }, async () => {
  const broker = new InMemoryBroker(["a", "b", "c"]);
  const out = new Channel<Delivery>(0);
  const ctl = new AbortController();
  let taken = 0;
  const done = feed(broker, out, { signal: ctl.signal }, () => {
    taken++;
    if (taken === 1) queueMicrotask(() => ctl.abort());
  });
  await done;
  assert.equal(out.closed, true);
  assert.equal(taken, 1);
  assert.equal(broker.stats.unacked, 1, "the taken delivery is the caller's to give back");
});

test("the pipeline closing the channel ends it quietly", { timeout: 5000 }, async () => {
  const broker = new InMemoryBroker(["a", "b"]);
  const out = new Channel<Delivery>(0);
  const done = feed(broker, out, { signal: new AbortController().signal }, () => {
    if (!out.closed) out.close();
  });
  await done;
  assert.equal(broker.stats.delivered, 1);
});
