/**
 * The benchmark measures JavaScript as `tsc` emits it, which is what the package ships (dist/
 * is tsc's output): sluice's code, and the floors, peers and harness beside it, compiled with
 * the build's own options (`tsconfig.bench.json`) into `.bench-build/` before the first
 * measurement. Under `tsx` the same code is esbuild's output (with `keepNames`), which measured
 * slower than tsc's for some sluice rows (W7-map by about 15%) and would not be what users run.
 *
 * The paths below are meant for the runner, which runs from source under `tsx` (`npm run bench`);
 * a compiled copy of this module (imported by the compiled `metrics-overhead.js`, preloaded in a
 * child) computes paths it never uses.
 */
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The compiled measuring child: `node --expose-gc <WORKER_JS> <workload> <impl> [cf|pf]`. */
export const WORKER_JS = fileURLToPath(new URL("../.bench-build/bench/worker.js", import.meta.url));

/** The compiled metrics-overhead module, preloaded (`--import`) into a child to attach an exporter. */
export const OVERHEAD_JS = new URL("../.bench-build/bench/metrics-overhead.js", import.meta.url).href;

/** Compiles `src/` and `bench/` into `.bench-build/` (about 10 s); exits the run loudly if tsc fails. */
export function compileBench(): void {
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  const r = spawnSync(process.execPath, [tsc, "-p", "tsconfig.bench.json"], { cwd: ROOT, encoding: "utf8" });
  if (r.status !== 0) {
    process.stderr.write(`bench: compiling the benchmark failed (tsc -p tsconfig.bench.json):\n${r.stdout}${r.stderr}\n`);
    process.exit(1);
  }
}
