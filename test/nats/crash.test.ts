/**
 * The crash test: N messages in a work-queue stream (5,000 here; 100,000 with
 * `npm run test:crash:nats`), two consumer processes with concurrency 16 that record every
 * processed id in PostgreSQL (an upsert counting deliveries), SIGKILLed at random moments
 * mid-work several times and restarted. At the end: 0 lost (every id recorded), the stream empty
 * (every message acked), and duplicates no more than the messages in flight at the kills (each
 * consumer holds at most 16: the pool's capacity).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { JetStreamSink } from "../../src/nats/index.js";
import { testStream, unique } from "./helpers.js";

const N = Number(process.env.SLUICE_CRASH_N ?? 5000);
const KILLS = Number(process.env.SLUICE_CRASH_KILLS ?? 4);
const CONSUMERS = 2;
const CONCURRENCY = 16;
const CHILD = fileURLToPath(new URL("./fixtures/crash-consumer.ts", import.meta.url));
/** Time for the whole run: generous for 2 busy cores, still bounded. */
const DEADLINE_MS = 90_000 + N * 4;

interface Child {
  proc: ChildProcess;
  ready: Promise<void>;
  inFlight: number;
  acked: number;
  exited: Promise<number | null>;
}

function start(args: string[]): Child {
  const proc = fork(CHILD, args, { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  let readyResolve!: () => void;
  const c: Child = {
    proc,
    ready: new Promise((r) => (readyResolve = r)),
    inFlight: 0,
    acked: 0,
    exited: new Promise((r) => proc.once("exit", (code) => r(code))),
  };
  proc.on("message", (m: { type: string; acked?: number; inFlight?: number }) => {
    if (m.type === "ready") readyResolve();
    if (m.type === "progress") {
      c.acked = m.acked ?? 0;
      c.inFlight = m.inFlight ?? 0;
    }
  });
  return c;
}

async function pgClient(): Promise<pg.Client> {
  for (const user of [process.env.PGUSER, "postgres", "root"]) {
    if (user === undefined) continue;
    const c = new pg.Client({ host: "127.0.0.1", port: 5432, user, database: "test" });
    try {
      await c.connect();
      process.env.PGUSER = user;
      return c;
    } catch {
      await c.end().catch(() => undefined);
    }
  }
  throw new Error("the crash test needs PostgreSQL on 127.0.0.1:5432 (database test, trust auth, user postgres or root)");
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test(`crash: ${N} messages, ${CONSUMERS} consumers of concurrency ${CONCURRENCY}, ${KILLS} SIGKILLs: 0 lost, duplicates <= in flight`, { timeout: DEADLINE_MS + 30_000 }, async (t) => {
  const db = await pgClient();
  const table = unique("crash").toLowerCase();
  const s = await testStream("crash", { duplicate_window: 120e9 });
  const children: Child[] = [];
  try {
    await db.query(`CREATE TABLE ${table} (id integer PRIMARY KEY, n integer NOT NULL)`);
    await s.consumer({ ack_wait: 2e9, max_deliver: -1, max_ack_pending: 1000 });
    const sink = new JetStreamSink(s.js, { maxInFlight: 256 });
    const pubs = new Set<Promise<unknown>>();
    for (let i = 0; i < N; i++) {
      const p = sink.publish(s.subject, String(i), { msgID: `m${i}` }).finally(() => pubs.delete(p));
      pubs.add(p);
      if (pubs.size >= 512) await Promise.race(pubs);
    }
    await Promise.all(pubs);
    assert.equal(await s.count(), N);

    const args = [s.name, "c0", table, String(CONCURRENCY)];
    for (let i = 0; i < CONSUMERS; i++) children.push(start(args));
    await Promise.all(children.map((c) => c.ready));

    const count = async (): Promise<{ ids: number; deliveries: number }> => {
      const r = await db.query<{ ids: string; deliveries: string | null }>(`SELECT count(*) AS ids, sum(n) AS deliveries FROM ${table}`);
      return { ids: Number(r.rows[0]!.ids), deliveries: Number(r.rows[0]!.deliveries ?? 0) };
    };
    const started = Date.now();
    const kills: { atIds: number; inFlight: number }[] = [];
    // Spread the kills over the work (not over time: a quiet machine drains a small stream in
    // about a second): the k-th kill comes once at least k/(KILLS + 1) of the ids are in.
    while (kills.length < KILLS) {
      await sleep(5 + Math.random() * 20);
      const { ids } = await count();
      if (ids >= N) break;
      if (ids < ((kills.length + 1) * N) / (KILLS + 1)) continue;
      // Mid-work: a victim that reported messages in its pool.
      const candidates = children.map((c, i) => [c, i] as const).filter(([c]) => c.inFlight > 0);
      if (candidates.length === 0) continue;
      const [victim, i] = candidates[Math.floor(Math.random() * candidates.length)]!;
      const inFlight = victim.inFlight;
      victim.proc.kill("SIGKILL");
      await victim.exited;
      kills.push({ atIds: ids, inFlight });
      children[i] = start(args);
    }
    assert.equal(kills.length, KILLS, `only ${kills.length} kills happened before the work ran out`);

    let last = await count();
    while (last.ids < N || (await s.count()) > 0) {
      if (Date.now() - started > DEADLINE_MS) assert.fail(`deadline: ${last.ids}/${N} processed, ${await s.count()} left in the stream`);
      await sleep(200);
      last = await count();
    }
    const seconds = (Date.now() - started) / 1000;
    for (const c of children) c.proc.kill("SIGTERM");
    const codes = await Promise.all(children.map((c) => c.exited));
    const duplicates = last.deliveries - last.ids;
    const bound = KILLS * CONCURRENCY;
    t.diagnostic(
      `crash: ${N} ids in ${seconds.toFixed(1)} s, ${kills.length} kills (in flight reported before each: ${kills.map((k) => k.inFlight).join(", ")}), ` +
        `lost 0, duplicates ${duplicates} (bound ${bound})`,
    );
    assert.equal(last.ids, N, "0 lost: every id recorded");
    assert.equal(await s.count(), 0, "every message acked");
    assert.ok(duplicates <= bound, `duplicates ${duplicates} > ${bound} (kills x pool capacity)`);
    assert.deepEqual(codes, children.map(() => 0), "consumers stop cleanly on SIGTERM");
  } finally {
    for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill("SIGKILL");
    await db.query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
    await db.end();
    await s.close();
  }
});
