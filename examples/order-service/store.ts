/**
 * The PostgreSQL store of the example: one table of enriched orders, written in batches with
 * an upsert keyed on the order id, so that a redelivered message is harmless (it rewrites the
 * same row and bumps its `writes` counter, which is how the tests see a double write).
 *
 * Bounded: a `pg.Pool` of at most `poolSize` connections (default 4); a batch is one statement
 * whatever its size (the rows travel as 10 arrays through `unnest`), and one statement in
 * autocommit is one transaction: when `upsert` resolves, the whole batch is committed; when it
 * rejects, none of it is.
 */
import pg from "pg";
import type { EnrichedOrder } from "./order.js";

/**
 * Where the database is. Each field not given is read from libpq's environment variables
 * (`PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER`, `PGPASSWORD`), else 127.0.0.1:5432, database
 * `test`, user `postgres`, no password (trust auth).
 */
export interface StoreOptions {
  /** The table's name: letters, digits and `_`, starting with a letter (it is created if missing). */
  table: string;
  host?: string;
  port?: number;
  database?: string;
  user?: string;
  password?: string;
  /** The most connections open at once (default 4). */
  poolSize?: number;
}

/** Where the database is by libpq's environment variables (`PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER`, `PGPASSWORD`) and the defaults. */
export function databaseFromEnv(env: NodeJS.ProcessEnv = process.env): { host: string; port: number; database: string; user: string; password: string | undefined } {
  const port = env.PGPORT === undefined || env.PGPORT === "" ? 5432 : Number(env.PGPORT);
  if (!Number.isSafeInteger(port) || port < 1 || port > 65535) throw new RangeError(`PGPORT must be an integer in 1..65535, got ${JSON.stringify(env.PGPORT)}`);
  return {
    host: env.PGHOST || "127.0.0.1",
    port,
    database: env.PGDATABASE || "test",
    user: env.PGUSER || "postgres",
    password: env.PGPASSWORD || undefined,
  };
}

/** PostgreSQL could not be reached: says where it looked, and why. */
export class DatabaseUnreachableError extends Error {
  readonly code = "ERR_DATABASE_UNREACHABLE";
  constructor(where: string, cause: unknown) {
    super(`PostgreSQL is not reachable at ${where}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = "DatabaseUnreachableError";
  }
}

/** One stored row as the tests read it back. */
export interface StoredRow {
  readonly orderId: string;
  readonly totalCents: number;
  readonly writes: number;
}

const TABLE = /^[A-Za-z][A-Za-z0-9_]{0,62}$/;

/** SQLSTATEs worth retrying: serialization failure, deadlock, connection trouble, too many connections. */
const TRANSIENT = new Set(["40001", "40P01", "57P01", "53300", "08000", "08003", "08006"]);

/** Whether a failed `upsert` may be tried again (a deadlock or a dropped connection; not a bad row). */
export function isTransientDatabaseError(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" && (TRANSIENT.has(code) || code === "ECONNRESET" || code === "ECONNREFUSED");
}

/**
 * The orders table.
 *
 * @example
 * const store = await OrderStore.open({ table: "orders" });
 * await store.upsert(rows);        // one transaction; resolves once committed
 * console.log(await store.count());
 * await store.close();
 */
export class OrderStore {
  readonly table: string;
  readonly #pool: pg.Pool;
  readonly #where: string;

  private constructor(table: string, pool: pg.Pool, where: string) {
    this.table = table;
    this.#pool = pool;
    this.#where = where;
  }

  /**
   * Connects (checking that the server answers) and creates the table if it is missing.
   * Rejects with `DatabaseUnreachableError` (naming host, port, database and user) when the
   * server cannot be reached, and with `TypeError` for a table name that is not a plain identifier.
   */
  static async open(options: StoreOptions): Promise<OrderStore> {
    const { table } = options;
    if (typeof table !== "string" || !TABLE.test(table)) {
      throw new TypeError(`table must be a plain identifier (a letter, then letters, digits or _), got ${JSON.stringify(table)}`);
    }
    const env = databaseFromEnv();
    const host = options.host ?? env.host;
    const port = options.port ?? env.port;
    const database = options.database ?? env.database;
    const user = options.user ?? env.user;
    const password = options.password ?? env.password;
    if (!Number.isSafeInteger(port) || port < 1 || port > 65535) throw new RangeError(`port must be an integer in 1..65535, got ${String(port)}`);
    const max = options.poolSize ?? 4;
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`poolSize must be a positive safe integer, got ${String(max)}`);
    const where = `${host}:${port} (database ${database}, user ${user})`;
    const pool = new pg.Pool({ host, port, database, user, password, max, connectionTimeoutMillis: 5000, idleTimeoutMillis: 10_000 });
    // An idle client that loses its connection emits here; without a listener it would crash the process.
    pool.on("error", () => {});
    const store = new OrderStore(table, pool, where);
    try {
      await pool.query("select 1");
    } catch (e) {
      await pool.end().catch(() => {});
      throw new DatabaseUnreachableError(where, e);
    }
    try {
      await store.#ensureTable();
    } catch (e) {
      await pool.end().catch(() => {});
      throw e;
    }
    return store;
  }

  /** Where the store is connected, for messages. */
  get where(): string {
    return this.#where;
  }

  async #ensureTable(): Promise<void> {
    await this.#pool.query(`create table if not exists ${this.table} (
      order_id text primary key,
      customer_id text not null,
      currency text not null,
      items jsonb not null,
      tier text not null,
      region text not null,
      subtotal_cents bigint not null,
      discount_cents bigint not null,
      total_cents bigint not null,
      created_at timestamptz not null,
      persisted_at timestamptz not null default now(),
      writes integer not null default 1
    )`);
  }

  /**
   * Writes a batch in one statement (one transaction): new orders are inserted, known ones
   * (a redelivery) updated in place with `writes` incremented. Resolves with the number of rows
   * written once committed. An empty batch writes nothing and does not touch the database.
   * Duplicate order ids inside one batch are refused (`RangeError`) before anything is sent.
   */
  async upsert(orders: readonly EnrichedOrder[]): Promise<number> {
    if (orders.length === 0) return 0;
    const ids = orders.map((o) => o.orderId);
    if (new Set(ids).size !== ids.length) throw new RangeError("a batch must not hold the same order id twice");
    const r = await this.#pool.query(
      `insert into ${this.table} as t
         (order_id, customer_id, currency, items, tier, region, subtotal_cents, discount_cents, total_cents, created_at)
       select * from unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::text[], $6::text[],
                            $7::bigint[], $8::bigint[], $9::bigint[], $10::timestamptz[])
       on conflict (order_id) do update set
         customer_id = excluded.customer_id, currency = excluded.currency, items = excluded.items,
         tier = excluded.tier, region = excluded.region, subtotal_cents = excluded.subtotal_cents,
         discount_cents = excluded.discount_cents, total_cents = excluded.total_cents,
         created_at = excluded.created_at, persisted_at = now(), writes = t.writes + 1`,
      [
        ids,
        orders.map((o) => o.customerId),
        orders.map((o) => o.currency),
        orders.map((o) => JSON.stringify(o.items)),
        orders.map((o) => o.tier),
        orders.map((o) => o.region),
        orders.map((o) => o.subtotalCents),
        orders.map((o) => o.discountCents),
        orders.map((o) => o.totalCents),
        orders.map((o) => o.createdAt),
      ],
    );
    return r.rowCount ?? orders.length;
  }

  /** `select count(*)` of the table. */
  async count(): Promise<number> {
    const r = await this.#pool.query<{ n: string }>(`select count(*) as n from ${this.table}`);
    return Number(r.rows[0]!.n);
  }

  /** Rows written more than once (a redelivery, or an order sent twice). */
  async rewritten(): Promise<number> {
    const r = await this.#pool.query<{ n: string }>(`select count(*) as n from ${this.table} where writes > 1`);
    return Number(r.rows[0]!.n);
  }

  /** Every row's id, total and write count, ordered by id (for tests: keep the table small). */
  async rows(): Promise<StoredRow[]> {
    const r = await this.#pool.query<{ order_id: string; total_cents: string; writes: number }>(
      `select order_id, total_cents, writes from ${this.table} order by order_id`,
    );
    return r.rows.map((x) => ({ orderId: x.order_id, totalCents: Number(x.total_cents), writes: x.writes }));
  }

  /** Drops the table (tests clean up with it). */
  async drop(): Promise<void> {
    await this.#pool.query(`drop table if exists ${this.table}`);
  }

  /** Closes every connection; waits for queries in flight. */
  async close(): Promise<void> {
    await this.#pool.end();
  }
}
