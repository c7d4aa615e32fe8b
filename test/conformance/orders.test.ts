/**
 * Conformance: issue 13's reference service (examples/order-service, `npm run orders`), end to
 * end against the real PostgreSQL on 127.0.0.1:5432 (database `test`): a SIGTERM in the middle
 * of the load drains, prints counts that add up, and they match `SELECT count(*)`.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import pg from "pg";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const TABLE = `conf_orders_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
let client: pg.Client;

before(async () => {
  for (const user of [process.env.PGUSER, "postgres", "root"].filter((u): u is string => u !== undefined)) {
    const c = new pg.Client({ host: "127.0.0.1", port: 5432, database: "test", user, connectionTimeoutMillis: 3000 });
    try {
      await c.connect();
      client = c;
      return;
    } catch {
      await c.end().catch(() => undefined);
    }
  }
  throw new Error("the order-service conformance test needs PostgreSQL on 127.0.0.1:5432, database test (trust auth, user postgres or root)");
});

after(async () => {
  await client?.query(`DROP TABLE IF EXISTS ${TABLE}`).catch(() => undefined);
  await client?.end();
});

interface Summary {
  ok: boolean;
  consumed: number;
  persisted: number;
  acked: number;
  deadLettered: number;
  abandoned: number;
  rewritten?: number;
}

test("a SIGTERM mid-load: drains, prints consumed/persisted/acked/dead-lettered/abandoned that add up and match SELECT count(*)", { timeout: 90_000 }, async () => {
  const child = spawn(process.execPath, ["--import", "tsx", "examples/order-service/main.ts", "--orders", "20000", "--rate", "500", "--table", TABLE, "--json", "--progress-ms", "200"], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, SLUICE_REPORT: "0" },
  });
  let stdout = "";
  let stderr = "";
  let signalled = false;
  const killer = setTimeout(() => child.kill("SIGKILL"), 80_000);
  child.stderr.on("data", (c: Buffer) => (stderr = (stderr + c.toString()).slice(-20_000)));
  child.stdout.on("data", (c: Buffer) => {
    stdout = (stdout + c.toString()).slice(-200_000);
    // The first progress line with something persisted: we are mid-load.
    if (!signalled && /persisted\s+[1-9]/.test(stdout)) {
      signalled = true;
      child.kill("SIGTERM");
    }
  });
  const code = await new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
  clearTimeout(killer);
  assert.ok(signalled, `no progress seen: ${stdout.slice(-1000)} ${stderr.slice(-1000)}`);
  assert.equal(code, 0, stderr.slice(-2000));
  const last = stdout.trimEnd().split("\n").pop()!;
  const s = JSON.parse(last) as Summary;
  assert.ok(s.consumed < 20_000, "stopped before the end of the load");
  assert.equal(s.consumed, s.persisted + s.deadLettered + s.abandoned, "the counts add up to what was consumed");
  assert.ok(s.acked <= s.persisted + s.deadLettered, "nothing acked that was not persisted (or dead-lettered)");
  const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${TABLE}`);
  assert.equal(Number(rows[0]!.n), s.persisted, "the printed persisted count matches SELECT count(*)");
  assert.equal(s.rewritten ?? 0, 0, "nothing persisted twice (rows written more than once)");
});
