/**
 * Test helpers for the order service: a store on a table of its own (random suffix), dropped
 * afterwards. There is no skip: when PostgreSQL is not reachable, `OrderStore.open` rejects with
 * a `DatabaseUnreachableError` naming host, port, database and user, and the test fails with it.
 */
import { randomBytes } from "node:crypto";
import { OrderStore } from "../../../examples/order-service/store.js";

/** A fresh table name: `orders_test_<what>_<random hex>`. */
export function tableName(what: string): string {
  return `orders_test_${what}_${randomBytes(4).toString("hex")}`;
}

/** Opens a store on a new table, runs `fn`, then drops the table and closes the store. */
export async function withStore<T>(what: string, fn: (store: OrderStore) => Promise<T>): Promise<T> {
  const store = await OrderStore.open({ table: tableName(what) });
  try {
    return await fn(store);
  } finally {
    await store.drop();
    await store.close();
  }
}
