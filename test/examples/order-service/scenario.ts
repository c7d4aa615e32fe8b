/**
 * A run of the order service against a real table, with everything a test checks recorded:
 * the load (what each message should become), every ack and why, and the rows in the table.
 */
import assert from "node:assert/strict";
import { InMemoryBroker } from "../../../examples/order-service/broker.js";
import { generateOrders, type GeneratedMessage, type GeneratorOptions } from "../../../examples/order-service/generator.js";
import { CustomerLookup, type CustomerLookupOptions } from "../../../examples/order-service/lookup.js";
import { OrderService, type OrderServiceOptions, type OrderServiceSummary } from "../../../examples/order-service/service.js";
import type { OrderStore } from "../../../examples/order-service/store.js";

/** The load and the broker it is in, for one or more runs. */
export interface Load {
  readonly messages: readonly GeneratedMessage[];
  readonly broker: InMemoryBroker;
  /** Every ack of every run: message id -> outcomes (one entry per ack). */
  readonly acks: Map<number, ("persisted" | "dead-lettered")[]>;
}

export function makeLoad(options: GeneratorOptions, maxUnacked = 64): Load {
  const messages = [...generateOrders(options)];
  return { messages, broker: new InMemoryBroker(messages.map((m) => m.body), { maxUnacked }), acks: new Map() };
}

export type RunOptions = Omit<OrderServiceOptions, "broker" | "store" | "lookup" | "onAck"> & { lookup?: CustomerLookupOptions };

/** Runs the service once over `load`; `setup` sees the service before it runs (to stop it on an event). */
export async function runOnce(load: Load, store: OrderStore, options: RunOptions, setup?: (s: OrderService) => void): Promise<OrderServiceSummary> {
  const lookup = new CustomerLookup({ minMs: 0, maxMs: 2, failureRate: 0.1, ...options.lookup });
  const service = new OrderService({
    ...options,
    broker: load.broker,
    store,
    lookup,
    onAck: (id, outcome) => {
      const list = load.acks.get(id) ?? [];
      list.push(outcome);
      load.acks.set(id, list);
    },
  });
  setup?.(service);
  return service.run();
}

/** The identities every summary holds, whatever stopped the run. */
export function checkSummary(s: OrderServiceSummary): void {
  assert.equal(s.consumed, s.persisted + s.deadLettered + s.abandoned, "consumed = persisted + dead-lettered + abandoned");
  assert.equal(s.acked, s.persisted + s.deadLettered, "acked = persisted + dead-lettered");
  assert.equal(s.deadLettered, s.deadLetters.invalid + s.deadLetters.unknownCustomer + s.deadLetters.enrichFailed);
  for (const st of s.stages) assert.ok(st.in >= st.out, `${st.name}: out ${st.out} > in ${st.in}`);
}

/**
 * What the table and the acks must agree on after every run so far: each message acked at most
 * once; the rows are exactly the orders acked as persisted, each written once; nothing acked as
 * persisted that the table does not hold; only valid orders persisted, every invalid message
 * acked (if at all) as dead-lettered.
 */
export async function checkTable(load: Load, store: OrderStore): Promise<void> {
  const rows = await store.rows();
  const persistedIds = new Set<string>();
  for (const [id, outcomes] of load.acks) {
    assert.equal(outcomes.length, 1, `message ${id} acked ${outcomes.length} times`);
    const m = load.messages[id]!;
    if (outcomes[0] === "persisted") {
      assert.equal(m.expected, "valid", `message ${id} (${m.expected}) was persisted`);
      persistedIds.add(m.orderId!);
    }
  }
  for (const m of load.messages) {
    const outcomes = load.acks.get(m.seq);
    if (m.expected === "invalid" && outcomes !== undefined) assert.deepEqual(outcomes, ["dead-lettered"]);
  }
  assert.deepEqual(rows.map((r) => r.orderId).sort(), [...persistedIds].sort(), "table rows = orders acked as persisted");
  const twice = rows.filter((r) => r.writes !== 1);
  assert.deepEqual(twice, [], "no row written twice");
  assert.equal(await store.count(), persistedIds.size, "select count(*) = persisted acks");
}
