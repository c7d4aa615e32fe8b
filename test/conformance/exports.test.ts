/**
 * Conformance: the package's subpath exports resolve after a build, as a user imports them
 * (`sluice`, `sluice/flow`, `sluice/pipeline`, `sluice/http`, `sluice/nats`, `sluice/redis`,
 * `sluice/metrics`), each with its `types` file and its settled names.
 *
 * The build goes to a temporary copy of the package (tsconfig.build.json, outDir in a temp
 * folder), so the worktree's own dist/ is left alone.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** The names each subpath must export (DESIGN.md's settled details). */
const SETTLED: Record<string, string[]> = {
  "sluice": ["Channel", "ChannelClosedError", "BusyError", "select", "trySelect", "recv", "send", "after", "done", "WaitGroup", "ErrGroup", "Semaphore", "parkedWork"],
  "sluice/flow": ["BusyError", "Pool", "DroppedError", "RateLimiter", "KeyedRateLimiter"],
  "sluice/pipeline": ["pipeline", "Pipeline", "map", "filter", "flatMap", "batch", "tap", "rateLimit", "merge", "fanOut", "partition", "Broadcast", "LaggedError", "toReadable", "toWritable", "toReadableStream", "toWritableStream"],
  "sluice/http": ["Admission", "fastifyAdmission"],
  "sluice/nats": ["consumeJetStream", "JetStreamSink"],
  "sluice/redis": ["consumeRedisStream", "RedisStreamSink"],
  "sluice/metrics": ["snapshot", "registerPrometheus", "serveDashboard"],
};

let tmp = "";
let pkgDir = "";
let build: { code: number; output: string } = { code: -1, output: "not run" };

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), "sluice-exports-"));
  pkgDir = join(tmp, "node_modules", "sluice");
  mkdirSync(pkgDir, { recursive: true });
  for (const f of ["package.json", "tsconfig.json", "tsconfig.build.json"]) cpSync(join(ROOT, f), join(pkgDir, f));
  cpSync(join(ROOT, "src"), join(pkgDir, "src"), { recursive: true });
  // The package's dependencies (peer and dev) as the worktree has them.
  symlinkSync(join(ROOT, "node_modules"), join(pkgDir, "node_modules"), "dir");
  const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
  try {
    const r = await run(process.execPath, [tsc, "-p", join(pkgDir, "tsconfig.build.json")], { cwd: pkgDir, maxBuffer: 1 << 22 });
    build = { code: 0, output: r.stdout + r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    build = { code: typeof err.code === "number" ? err.code : 1, output: `${err.stdout ?? ""}${err.stderr ?? ""}` };
  }
});

after(() => {
  if (tmp !== "") rmSync(tmp, { recursive: true, force: true });
});

test("npm run build (tsc -p tsconfig.build.json) succeeds", { timeout: 240_000 }, () => {
  assert.equal(build.code, 0, build.output.slice(0, 4000));
});

test("after the build, every subpath export resolves, has its types, and exports its settled names", { timeout: 240_000 }, async () => {
  {
    const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")) as { exports: Record<string, { types?: string; import?: string } | string> };
    for (const spec of Object.keys(SETTLED)) {
      const sub = spec === "sluice" ? "." : `./${spec.slice("sluice/".length)}`;
      const entry = pkg.exports[sub];
      assert.ok(entry !== undefined && typeof entry === "object", `package.json exports ${sub}`);
      assert.ok(entry.types !== undefined && existsSync(join(pkgDir, entry.types)), `${sub}: types file ${String(entry.types)} built`);
      assert.ok(entry.import !== undefined && existsSync(join(pkgDir, entry.import)), `${sub}: import file ${String(entry.import)} built`);
    }

    // A user's module, outside the package, importing each subpath by name.
    const app = join(tmp, "app");
    mkdirSync(app);
    writeFileSync(join(app, "package.json"), JSON.stringify({ type: "module" }));
    writeFileSync(
      join(app, "check.js"),
      `const want = ${JSON.stringify(SETTLED)};\n` +
        "const out = {};\n" +
        "for (const [spec, names] of Object.entries(want)) {\n" +
        "  try { const m = await import(spec); out[spec] = names.filter((n) => !(n in m)); }\n" +
        "  catch (e) { out[spec] = 'import failed: ' + e.message; }\n" +
        "}\n" +
        "console.log(JSON.stringify(out));\n",
    );
    // node_modules of the app: the built package (its own deps resolve from its folder).
    const { stdout } = await run(process.execPath, [join(app, "check.js")], { cwd: app, env: { ...process.env, NODE_PATH: "", SLUICE_REPORT: "0" }, maxBuffer: 1 << 20 });
    const result = JSON.parse(stdout.trim().split("\n").pop()!) as Record<string, string[] | string>;
    for (const spec of Object.keys(SETTLED)) {
      assert.deepEqual(result[spec], [], `${spec}: ${JSON.stringify(result[spec])}`);
    }
  }
});

test("the published package carries what its `sluice` bin runs: installed from its tarball, `sluice demo` works without the repository", { timeout: 240_000 }, async () => {
  // Pack a copy of the package (prepack builds it there), install the tarball into a fresh app
  // (offline: sluice has no runtime dependency), and run the installed bin.
  const src = join(tmp, "pack-src");
  mkdirSync(src);
  for (const f of ["package.json", "tsconfig.json", "tsconfig.build.json", "tsconfig.cli.json", "README.md"]) cpSync(join(ROOT, f), join(src, f));
  for (const d of ["src", "demo", "examples", "bin"]) cpSync(join(ROOT, d), join(src, d), { recursive: true });
  symlinkSync(join(ROOT, "node_modules"), join(src, "node_modules"), "dir");
  const { stdout: packed } = await run("npm", ["pack", "--json", "--pack-destination", tmp], { cwd: src, maxBuffer: 1 << 24 });
  const info = (JSON.parse(packed.slice(packed.indexOf("["))) as { filename: string; files: { path: string }[] }[])[0]!;
  const files = info.files.map((f) => f.path);
  assert.ok(files.includes("bin/sluice.js"), "the bin is published");
  assert.ok(files.includes("dist/cli/demo/cli.js"), "the compiled CLI is published");
  assert.ok(!files.some((f) => f.startsWith("demo/") || f.startsWith("test/") || f.startsWith("bench/")), "sources, tests and benchmarks are not");
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
  assert.equal(Object.keys(pkg.dependencies ?? {}).length, 0, "no runtime dependency");

  const app = join(tmp, "installed-app");
  mkdirSync(app);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", version: "1.0.0", type: "module" }));
  await run("npm", ["install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", join(tmp, info.filename)], { cwd: app, maxBuffer: 1 << 22 });
  const bin = join(app, "node_modules", ".bin", "sluice");
  const env = { ...process.env, NODE_PATH: "", NODE_OPTIONS: "" };
  const help = await run(bin, ["--help"], { cwd: app, env });
  assert.match(help.stdout, /usage: sluice <command>/);
  const demo = await run(bin, ["demo", "oom", "--duration", "1", "--json"], { cwd: app, env, maxBuffer: 1 << 22 });
  const last = JSON.parse(demo.stdout.trim().split("\n").pop()!) as { demo: string; ok: boolean };
  assert.equal(last.demo, "oom");
  assert.equal(last.ok, true, demo.stdout.slice(-2000));
  // The benchmarks are not published: a clear refusal, not a stack trace.
  await assert.rejects(run(bin, ["bench"], { cwd: app, env }), (e: { code?: number; stderr?: string }) => e.code === 1 && /run from a clone of the repository/.test(e.stderr ?? ""));
});
