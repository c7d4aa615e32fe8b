/**
 * The order service as a real process (`examples/order-service/main.ts`), stopped by a real
 * SIGTERM in the middle of its load, checked against PostgreSQL.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { generateOrders } from "../../../examples/order-service/generator.js";
import { OrderStore } from "../../../examples/order-service/store.js";
import { tableName } from "./helpers.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const MAIN = "examples/order-service/main.ts";

interface Child {
  readonly child: ChildProcess;
  readonly lines: string[];
  readonly stderr: string[];
  readonly exited: Promise<number | null>;
}

/** Starts main.ts; `onLine` sees every stdout line as it comes. Lines are kept for the assertions (bounded by the run). */
function start(args: string[], onLine: (line: string, child: ChildProcess) => void = () => {}): Child {
  const child = spawn(process.execPath, ["--import", "tsx", MAIN, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  const stderr: string[] = [];
  createInterface({ input: child.stdout! }).on("line", (line) => {
    lines.push(line);
    onLine(line, child);
  });
  createInterface({ input: child.stderr! }).on("line", (line) => stderr.push(line));
  const exited = once(child, "exit").then(([code]) => code as number | null);
  return { child, lines, stderr, exited };
}

const persistedIn = (line: string): number | undefined => {
  const m = /^\s+[\d.]+s\s+consumed\s+[\d,]+\s+persisted\s+([\d,]+)/.exec(line);
  return m === null ? undefined : Number(m[1]!.replaceAll(",", ""));
};

interface Figures {
  ok: boolean;
  outcome: string;
  consumed: number;
  persisted: number;
  acked: number;
  deadLettered: number;
  abandoned: number;
  rows: number;
  rowsBefore: number;
  rewritten: number;
}

/** The rows of the table are only valid orders among the first `consumed` messages, each written once. */
async function checkRows(table: string, f: Figures): Promise<void> {
  const store = await OrderStore.open({ table });
  try {
    const rows = await store.rows();
    assert.equal(rows.length, f.persisted, "select count(*) = printed persisted");
    assert.equal(await store.count(), f.rows);
    assert.ok(rows.every((r) => r.writes === 1), "nothing persisted twice");
    const valid = new Set<string>();
    for (const m of generateOrders({ count: f.consumed, seed: 1 })) if (m.expected === "valid") valid.add(m.orderId!);
    const stray = rows.filter((r) => !valid.has(r.orderId));
    assert.deepEqual(stray, [], "only valid orders among those consumed are in the table");
  } finally {
    await store.close();
  }
}

/** Kills the child if it is still running (and waits for it), then drops its table. */
async function cleanUp(c: Child, table: string): Promise<void> {
  if (c.child.exitCode === null && c.child.signalCode === null) {
    c.child.kill("SIGKILL");
    await c.exited;
  }
  const store = await OrderStore.open({ table });
  try {
    await store.drop();
  } finally {
    await store.close();
  }
}

function checkFigures(f: Figures): void {
  assert.equal(f.consumed, f.persisted + f.deadLettered + f.abandoned, "consumed = persisted + dead-lettered + abandoned");
  assert.equal(f.acked, f.persisted + f.deadLettered, "acked = persisted + dead-lettered");
  assert.equal(f.rowsBefore, 0);
  assert.equal(f.rows, f.persisted, "printed persisted = select count(*)");
  assert.equal(f.rewritten, 0);
}

test("SIGTERM in the middle of the load: intake stops, in-flight work drains, the printed counts match the table", { timeout: 90_000 }, async () => {
  const table = tableName("sigterm");
  let signalled = false;
  const c = start(["--orders", "50000", "--table", table, "--json", "--progress-ms", "100", "--drain-ms", "20000"], (line, child) => {
    const p = persistedIn(line);
    if (!signalled && p !== undefined && p > 0) {
      signalled = true;
      child.kill("SIGTERM");
    }
  });
  try {
    const code = await c.exited;
    assert.ok(signalled, `never saw progress; stdout:\n${c.lines.join("\n")}\nstderr:\n${c.stderr.join("\n")}`);
    assert.equal(code, 0, c.stderr.join("\n"));
    assert.ok(c.lines.includes("SIGTERM"), "the service saw the signal");
    const f = JSON.parse(c.lines.at(-1)!) as Figures;
    assert.equal(f.outcome, "drained");
    assert.equal(f.ok, true);
    assert.ok(f.consumed > 0 && f.consumed < 50_000, `stopped in the middle: consumed ${f.consumed}`);
    assert.ok(f.abandoned <= 1, `abandoned ${f.abandoned}`);
    checkFigures(f);
    assert.ok(c.lines.some((l) => l.startsWith("summary: consumed")), "the human summary is printed too");
    await checkRows(table, f);
  } finally {
    await cleanUp(c, table);
  }
});

test("a second signal cuts the drain short: the rest is abandoned, and still nothing acked that was not persisted", { timeout: 90_000 }, async () => {
  const table = tableName("sigint");
  let signalled = false;
  const c = start(
    ["--orders", "50000", "--table", table, "--json", "--progress-ms", "100", "--drain-ms", "60000", "--lookup-ms", "30-60", "--batch", "20"],
    (line, child) => {
      const p = persistedIn(line);
      if (!signalled && p !== undefined && p > 0) {
        signalled = true;
        child.kill("SIGTERM");
      }
      if (line.startsWith("stop: intake stopped")) child.kill("SIGINT");
    },
  );
  try {
    const code = await c.exited;
    assert.ok(signalled, `never saw progress; stderr:\n${c.stderr.join("\n")}`);
    assert.equal(code, 0, c.stderr.join("\n"));
    assert.ok(c.lines.some((l) => l.startsWith("abort: the drain is cut short")));
    const f = JSON.parse(c.lines.at(-1)!) as Figures;
    assert.equal(f.outcome, "deadline");
    assert.ok(f.abandoned > 0, "slow lookups were in flight when the drain was cut");
    checkFigures(f);
    await checkRows(table, f);
  } finally {
    await cleanUp(c, table);
  }
});

test("a bad option: exit code 2 and a message naming it", { timeout: 30_000 }, async () => {
  const c = start(["--orders=-3"]);
  assert.equal(await c.exited, 2);
  assert.match(c.stderr.join("\n"), /--orders must be a non-negative integer, got "-3"/);
});
