/**
 * `npm run demo` (demo/oom.ts), run as a child process with a short duration and a small
 * payload: the bug run trips sluice's parked-sends warning, the fix run stays bounded, a verdict
 * is printed, and the demo exits by itself with code 0. Every run has a hard timeout.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const DEMO = fileURLToPath(new URL("../../demo/oom.ts", import.meta.url));
/** Kept output per stream: the demo prints a few KB; more means something is wrong. */
const MAX_OUTPUT = 1 << 20;

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the demo; SIGKILLed after `timeoutMs` (its runs then exit on their own: their IPC closes). */
function runDemo(args: readonly string[], timeoutMs: number): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", DEMO, ...args], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      timeout: timeoutMs,
      killSignal: "SIGKILL",
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      if (stdout.length < MAX_OUTPUT) stdout += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      if (stderr.length < MAX_OUTPUT) stderr += d;
    });
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

interface Row {
  run: "bug" | "fix";
  accepted: number;
  processed: number;
  pending: number;
  parked: number;
  lag: number;
  heapMb: number;
}

const ROW = /^\s*(?:\d+\.\d+s)?\s+(bug|fix)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s+(\d+\.\d)(?:\s|$)/;
const num = (s: string): number => Number(s.replaceAll(",", ""));

function rows(stdout: string): Row[] {
  const out: Row[] = [];
  for (const line of stdout.split("\n")) {
    const m = ROW.exec(line);
    if (m === null) continue;
    out.push({
      run: m[1] as "bug" | "fix",
      accepted: num(m[2]!),
      processed: num(m[3]!),
      pending: num(m[4]!),
      parked: num(m[5]!),
      lag: num(m[6]!),
      heapMb: Number(m[7]),
    });
  }
  return out;
}

const CAPACITY = 256;
/** The fix holds at most its buffer, the message its producer holds, and the one in the handler. */
const SLACK = 2;

test("npm run demo -- --duration 3: the bug run warns and grows, the fix run stays bounded, a verdict, exit 0", { timeout: 60_000 }, async () => {
  // --rate 2000: parked senders pass 1,000 after ~0.6 s, well inside the 3 s, even on a busy machine.
  const r = await runDemo(["--duration", "3", "--payload", "1024", "--rate", "2000", "--cap", "50000"], 45_000);
  const context = `\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
  assert.equal(r.signal, null, `killed by ${r.signal}${context}`);
  assert.equal(r.code, 0, `exit code${context}`);

  // The warning fired in the bug run and the parent printed it.
  assert.match(r.stdout, /^\s+bug\s+!! SluiceWarning SLUICE_PARKED_SENDS at \d+\.\d+s/m, `no warning line${context}`);
  assert.match(r.stdout, /senders parked on channel "events" \(capacity 0\)/, context);

  const all = rows(r.stdout);
  const bug = all.filter((x) => x.run === "bug");
  const fix = all.filter((x) => x.run === "fix");
  // A row at 0 s, 1 s, 2 s and the last one at 3 s, for each run.
  assert.ok(bug.length >= 4 && fix.length >= 4, `rows: bug ${bug.length}, fix ${fix.length}${context}`);
  for (const x of all) assert.equal(x.pending, x.accepted - x.processed, `pending = accepted - processed${context}`);

  // The fix: pending never above capacity + slack, at most one parked sender (its producer).
  for (const x of fix) {
    assert.ok(x.pending <= CAPACITY + SLACK, `fix pending ${x.pending} > ${CAPACITY + SLACK}${context}`);
    assert.ok(x.parked <= 1, `fix parked ${x.parked}${context}`);
  }
  // The bug: parked senders passed the warning threshold, and pending is far beyond what the fix holds.
  const lastBug = bug.at(-1)!;
  assert.ok(lastBug.parked > 1000, `bug parked ${lastBug.parked}${context}`);
  assert.ok(lastBug.pending > CAPACITY * 4, `bug pending ${lastBug.pending}${context}`);
  // The backlog waits on the broker instead.
  assert.ok(fix.at(-1)!.lag > CAPACITY, `fix lag ${fix.at(-1)!.lag}${context}`);

  const verdict = /^verdict: bug: pending grew ~[\d,]+\/s to [\d,]+ .*; fix: pending flat at <= (\d+) \(capacity 256\)/m.exec(r.stdout);
  assert.ok(verdict !== null, `no verdict line${context}`);
  assert.ok(Number(verdict[1]) <= CAPACITY + SLACK, context);
});

test("npm run demo -- --help prints the usage and exits 0", { timeout: 30_000 }, async () => {
  const r = await runDemo(["--help"], 20_000);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Usage: npm run demo/);
  for (const flag of ["--duration", "--rate", "--payload", "--work-ms", "--cap", "--help"]) {
    assert.ok(r.stdout.includes(flag), `usage lacks ${flag}`);
  }
});

test("npm run demo with a bad flag names it and exits 2", { timeout: 30_000 }, async () => {
  const r = await runDemo(["--rate", "fast"], 20_000);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /--rate must be a number/);
  assert.equal(r.stdout, "");
});
