import assert from "node:assert/strict";
import { test } from "node:test";
import { DatabaseUnreachableError, OrderStore, databaseFromEnv } from "../../../examples/order-service/store.js";
import type { EnrichedOrder } from "../../../examples/order-service/order.js";
import { tableName, withStore } from "./helpers.js";

function row(id: string, totalCents = 1000): EnrichedOrder {
  return {
    orderId: id,
    customerId: "c-1",
    currency: "EUR",
    items: [{ sku: "SKU-1", qty: 1, priceCents: totalCents }],
    createdAt: "2026-01-01T00:00:00.000Z",
    tier: "standard",
    region: "eu-west",
    subtotalCents: totalCents,
    discountCents: 0,
    totalCents,
  };
}

test("creates the table if missing, and a batch is written in one statement", { timeout: 20_000 }, async () => {
  await withStore("batch", async (store) => {
    assert.equal(await store.count(), 0);
    assert.equal(await store.upsert([row("a"), row("b"), row("c")]), 3);
    assert.equal(await store.count(), 3);
    assert.deepEqual((await store.rows()).map((r) => [r.orderId, r.writes]), [["a", 1], ["b", 1], ["c", 1]]);
    assert.equal(await store.upsert([]), 0);
  });
});

test("a redelivery is harmless: the same id updates its row (writes counts it), no second row", { timeout: 20_000 }, async () => {
  await withStore("upsert", async (store) => {
    await store.upsert([row("a", 100), row("b", 200)]);
    await store.upsert([row("b", 250), row("c", 300)]);
    assert.deepEqual(await store.rows(), [
      { orderId: "a", totalCents: 100, writes: 1 },
      { orderId: "b", totalCents: 250, writes: 2 },
      { orderId: "c", totalCents: 300, writes: 1 },
    ]);
  });
});

test("opening on an existing table keeps its rows", { timeout: 20_000 }, async () => {
  await withStore("reopen", async (store) => {
    await store.upsert([row("a")]);
    const again = await OrderStore.open({ table: store.table });
    try {
      assert.equal(await again.count(), 1);
    } finally {
      await again.close();
    }
  });
});

test("a failing batch writes none of its rows", { timeout: 20_000 }, async () => {
  await withStore("atomic", async (store) => {
    // bigint overflow in the second row: the statement fails as a whole
    const bad = { ...row("y"), totalCents: 2 ** 70 };
    await assert.rejects(store.upsert([row("x"), bad]));
    assert.equal(await store.count(), 0);
    await assert.rejects(store.upsert([row("x"), row("x")]), /must not hold the same order id twice/);
  });
});

test("bad table names are refused before connecting; an unreachable server says where it looked", { timeout: 20_000 }, async () => {
  await assert.rejects(OrderStore.open({ table: "orders; drop table x" }), TypeError);
  await assert.rejects(
    OrderStore.open({ table: tableName("nowhere"), port: 1 }),
    (e: unknown) => e instanceof DatabaseUnreachableError && /PostgreSQL is not reachable at 127\.0\.0\.1:1 \(database test, user /.test(e.message),
  );
});

test("the connection follows libpq's environment (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD), else the local defaults", async () => {
  assert.deepEqual(databaseFromEnv({}), { host: "127.0.0.1", port: 5432, database: "test", user: "postgres", password: undefined });
  assert.deepEqual(databaseFromEnv({ PGHOST: "db.internal", PGPORT: "6543", PGDATABASE: "orders", PGUSER: "svc", PGPASSWORD: "s3cret" }), {
    host: "db.internal",
    port: 6543,
    database: "orders",
    user: "svc",
    password: "s3cret",
  });
  assert.throws(() => databaseFromEnv({ PGPORT: "54x" }), /PGPORT must be an integer in 1..65535, got "54x"/);
  assert.throws(() => databaseFromEnv({ PGPORT: "70000" }), RangeError);
  // The store uses them: a PGPORT where nothing listens is where it looks, and says so.
  const saved = process.env.PGPORT;
  process.env.PGPORT = "1";
  try {
    await assert.rejects(OrderStore.open({ table: tableName("envport") }), (e) => e instanceof DatabaseUnreachableError && /127\.0\.0\.1:1 /.test(e.message));
  } finally {
    if (saved === undefined) delete process.env.PGPORT;
    else process.env.PGPORT = saved;
  }
});
