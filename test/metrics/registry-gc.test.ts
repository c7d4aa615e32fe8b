/**
 * The registry holds boundaries weakly (issue 16): observing never keeps a boundary alive, a
 * collected boundary leaves the registry, and unnamed boundaries cost no entry unless every
 * boundary is observed. Checked in a child process run with `--expose-gc`.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

const FIXTURE = fileURLToPath(new URL("./fixtures/registry-gc.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../../", import.meta.url));

function run(): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ["--expose-gc", "--import", "tsx", FIXTURE], { cwd: ROOT, timeout: 50_000 }, (err, stdout, stderr) => {
      if (err !== null) return reject(new Error(`fixture failed: ${err.message}\n${stderr}`));
      resolve(JSON.parse(stdout.trim().split("\n").at(-1)!) as Record<string, number>);
    });
  });
}

describe("registry weakness (--expose-gc)", () => {
  it("drops collected boundaries, keeps live ones, and registers nothing for unnamed ones by default", { timeout: 60_000 }, async () => {
    const r = await run();
    assert.equal(r.created, 15_000, "5000 named channels + 5000 unnamed semaphores and pools under observeAll");
    assert.ok(r.inSnapshot >= 15_000, `snapshot lists them while alive (${r.inSnapshot})`);
    assert.equal(r.after, r.base, `every dropped boundary left the registry (after ${r.rounds} GC rounds)`);
    assert.equal(r.kept, 1, "the one still referenced stays");
    assert.equal(r.unobserved, 0, "unnamed channels cost no entry when not observing all");
  });
});
