import assert from "node:assert/strict";
import { test } from "node:test";
import { DeadLetterDesk, type DeadLetterReason } from "../../../examples/order-service/dead-letters.js";
import type { Delivery } from "../../../examples/order-service/broker.js";
import { UnknownCustomerError, LookupUnavailableError } from "../../../examples/order-service/lookup.js";
import { AbandonedError } from "../../../examples/order-service/messages.js";
import { InvalidOrderError } from "../../../examples/order-service/validate.js";

const delivery = (n: number): Delivery => ({ tag: n, messageId: n, body: "{}", attempt: 1 });
const order = { orderId: "o", customerId: "c-1", currency: "EUR", items: [], createdAt: "2026-01-01T00:00:00Z" };

test("failures of both stages are settled once each, sorted by reason; abandoned ones are not settled", { timeout: 5000 }, async () => {
  const settled: [number, DeadLetterReason][] = [];
  const desk = new DeadLetterDesk((d, reason) => settled.push([d.messageId, reason]), { buffer: 2, keep: 2 });
  const running = desk.run();
  await desk.invalid.send({ item: delivery(1), error: new InvalidOrderError("not JSON"), stage: "validate" });
  await desk.failed.send({ item: { delivery: delivery(2), order }, error: new UnknownCustomerError("c-9"), stage: "enrich" });
  await desk.failed.send({ item: { delivery: delivery(3), order }, error: new LookupUnavailableError("c-1"), stage: "enrich" });
  await desk.failed.send({ item: { delivery: delivery(4), order }, error: new AbandonedError(new Error("deadline")), stage: "enrich" });
  desk.close();
  await running;
  assert.deepEqual(settled, [[1, "invalid"], [2, "unknownCustomer"], [3, "enrichFailed"]]);
  assert.deepEqual(desk.counts, { invalid: 1, unknownCustomer: 1, enrichFailed: 1, abandoned: 1 });
  assert.equal(desk.total, 3);
  assert.deepEqual(desk.samples.map((s) => s.messageId), [2, 3], "only the last `keep` samples");
});

test("run ends only when both channels are closed and drained", { timeout: 5000 }, async () => {
  let n = 0;
  const desk = new DeadLetterDesk(() => n++, { buffer: 4 });
  desk.invalid.trySend({ item: delivery(1), error: new InvalidOrderError("x"), stage: "validate" });
  desk.invalid.close();
  let ended = false;
  const running = desk.run().then(() => (ended = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(n, 1, "the buffered letter was taken after close");
  assert.equal(ended, false, "the other channel is still open");
  desk.close();
  await running;
  assert.equal(ended, true);
});
