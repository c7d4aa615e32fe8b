/** `sluice demo orders` through the CLI (demo/cli.ts), as a real process against PostgreSQL. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { OrderStore } from "../../../examples/order-service/store.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

async function sluice(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", "demo/cli.ts", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stdout, stderr };
}

test("sluice demo orders --json: exit 0, the last line is the figures, and the demo's table is gone", { timeout: 90_000 }, async () => {
  const r = await sluice(["demo", "orders", "--orders", "300", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const f = JSON.parse(r.stdout.trimEnd().split("\n").at(-1)!) as Record<string, unknown>;
  assert.equal(f.demo, "orders");
  assert.equal(f.ok, true);
  assert.equal(f.consumed, 300);
  assert.equal(f.tableRows, f.persisted);
  assert.equal((f.persisted as number) + (f.deadLettered as number) + (f.abandoned as number), 300);
  const store = await OrderStore.open({ table: String(f.table) });
  try {
    assert.equal(await store.count(), 0, "the demo dropped its table (this one was created again, empty)");
  } finally {
    await store.drop();
    await store.close();
  }
});

test("sluice demo orders --help lists the demo's flags; a bad flag exits 2", { timeout: 60_000 }, async () => {
  const help = await sluice(["demo", "orders", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--drain-ms MS/);
  assert.match(help.stdout, /--orders N\s+messages in the generated load \(default 5000\)/);
  const bad = await sluice(["demo", "orders", "--batch", "0"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--batch must be a positive integer, got "0"/);
});
