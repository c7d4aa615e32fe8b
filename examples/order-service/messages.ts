/**
 * What travels between the service's stages: each item keeps the broker delivery it came
 * from, so that whichever way it leaves the pipeline (persisted, dead-lettered, abandoned) the
 * service knows which delivery to ack or give back.
 *
 *   Delivery --validate--> Validated --enrich--> Enriched --batch--> Enriched[] --persist--> ack
 */
import type { Delivery } from "./broker.js";
import type { EnrichedOrder, Order } from "./order.js";

/** A delivery whose body is a valid order. */
export interface Validated {
  readonly delivery: Delivery;
  readonly order: Order;
}

/** A validated order with its customer's data and totals. */
export interface Enriched {
  readonly delivery: Delivery;
  readonly order: EnrichedOrder;
}

/**
 * A stage's call did not finish because the run was stopping (the deadline passed, or another
 * stage failed): the item is abandoned, not dead-lettered; its delivery goes back to the broker.
 */
export class AbandonedError extends Error {
  readonly code = "ERR_ABANDONED";
  constructor(reason: unknown) {
    super("abandoned: the run stopped before this item was done", { cause: reason });
    this.name = "AbandonedError";
  }
}
