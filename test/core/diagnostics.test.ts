/**
 * Specification of parked-work diagnostics (issue 3 §2, "All goroutines are asleep"): the
 * exit-time report on `beforeExit`, its switches (`SLUICE_TRACE`, `SLUICE_REPORT`,
 * `configureDiagnostics`), and the `parkedWork()` snapshot.
 */
import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Channel, ErrGroup, Semaphore, WaitGroup, configureDiagnostics, parkedWork } from "../../src/index.js";
import { capture } from "./fixtures/probe.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const FIXTURE = fileURLToPath(new URL("./fixtures/parked-at-exit.ts", import.meta.url));
const PARK_LINE = readFileSync(FIXTURE, "utf8").split("\n").findIndex((l) => l.includes("// PARK-HERE")) + 1;
const CHILD_TIMEOUT_MS = 20_000;

interface Run {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  ms: number;
}

const runs = new Map<string, Promise<Run>>();

/** Runs the fixture once per (mode, env) in a fresh process; never hangs (killed after CHILD_TIMEOUT_MS). */
function runFixture(mode: string, extraEnv: Record<string, string> = {}): Promise<Run> {
  const key = JSON.stringify([mode, extraEnv]);
  let run = runs.get(key);
  if (run === undefined) {
    run = spawnFixture(mode, extraEnv);
    runs.set(key, run);
  }
  return run;
}

function spawnFixture(mode: string, extraEnv: Record<string, string> = {}): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extraEnv };
  delete env.NODE_TEST_CONTEXT;
  if (!("SLUICE_TRACE" in extraEnv)) delete env.SLUICE_TRACE;
  if (!("SLUICE_REPORT" in extraEnv)) delete env.SLUICE_REPORT;
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(process.execPath, ["--import", "tsx", FIXTURE, mode], { cwd: REPO, env, timeout: CHILD_TIMEOUT_MS },
      (err, stdout, stderr) => {
        const e = err as (Error & { code?: unknown; signal?: string | null }) | null;
        resolve({
          code: e === null ? 0 : typeof e.code === "number" ? e.code : null,
          signal: e?.signal ?? null,
          stdout: String(stdout),
          stderr: String(stderr),
          ms: Date.now() - started,
        });
      });
  });
}

function reportLines(stderr: string): string[] {
  return stderr.split("\n");
}

describe("exit-time report of parked work", { concurrency: 4 }, () => {
  it("when the loop empties with operations parked: one report on stderr naming each channel and its count; the process exits by itself", async () => {
    const r = await runFixture("parked");
    assert.equal(r.signal, null, `killed after ${r.ms} ms: the report must not keep the process alive`);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, "fixture ran\n");
    const lines = reportLines(r.stderr);
    const orders = lines.filter((l) => l.includes("stuck-orders"));
    const replies = lines.filter((l) => l.includes("idle-replies"));
    assert.equal(orders.length, 1, r.stderr);
    assert.match(orders[0]!, /\b3\b.*send/, "names the count of parked senders");
    assert.equal(replies.length, 1, r.stderr);
    assert.match(replies[0]!, /\b1\b.*recv/, "names the count of parked receivers");
    assert.doesNotMatch(r.stderr, new RegExp(`parked-at-exit\\.ts:${PARK_LINE}\\b`), "no stacks without tracing");
  });

  it("with SLUICE_TRACE=1 the report shows where each operation parked (file and line)", async () => {
    const r = await runFixture("parked", { SLUICE_TRACE: "1" });
    assert.equal(r.code, 0);
    assert.match(r.stderr, /stuck-orders/);
    assert.match(r.stderr, new RegExp(`parked-at-exit\\.ts:${PARK_LINE}:\\d+`), r.stderr);
  });

  it("configureDiagnostics({ trace: true }) turns tracing on as SLUICE_TRACE does", async () => {
    const r = await runFixture("trace-on");
    assert.equal(r.code, 0);
    assert.match(r.stderr, new RegExp(`parked-at-exit\\.ts:${PARK_LINE}:\\d+`), r.stderr);
  });

  it("with SLUICE_REPORT=0 nothing is printed", async () => {
    const r = await runFixture("parked", { SLUICE_REPORT: "0" });
    assert.equal(r.code, 0);
    assert.equal(r.stdout, "fixture ran\n");
    assert.equal(r.stderr, "");
  });

  it("configureDiagnostics({ report: false }) turns the report off", async () => {
    const r = await runFixture("report-off");
    assert.equal(r.code, 0);
    assert.equal(r.stderr, "");
  });

  it("nothing is printed when nothing is left parked", async () => {
    const r = await runFixture("clean");
    assert.equal(r.code, 0);
    assert.equal(r.stdout, "fixture ran\n");
    assert.equal(r.stderr, "");
  });

  it("prints one report per process, even when the loop empties twice", async () => {
    const r = await runFixture("parked"); // its beforeExit listener re-arms the loop once
    assert.equal(r.code, 0);
    assert.equal(reportLines(r.stderr).filter((l) => l.includes("stuck-orders")).length, 1, r.stderr);
  });
});

describe("parkedWork()", () => {
  after(() => {
    configureDiagnostics({ trace: false });
  });

  function entriesFor(name: string): ReturnType<typeof parkedWork> {
    return parkedWork().filter((e) => e.boundary.includes(name));
  }

  it("is empty when nothing is parked", () => {
    assert.deepEqual(parkedWork(), []);
  });

  it("lists a channel's parked senders and receivers by name, role and count, and forgets them once they leave", async () => {
    const out = new Channel<number>(0, { name: "pw-out" });
    const inb = new Channel<number>(0, { name: "pw-in" });
    const ac = new AbortController();
    const ps: Promise<unknown>[] = [0, 1, 2].map((i) => capture(out.send(i, { signal: ac.signal })));
    ps.push(capture(inb.recv({ signal: ac.signal })));
    const o = entriesFor("pw-out");
    assert.equal(o.length, 1);
    assert.equal(o[0]!.role, "send");
    assert.equal(o[0]!.count, 3);
    assert.deepEqual(o[0]!.stacks, [], "no stacks while tracing is off");
    const i = entriesFor("pw-in");
    assert.equal(i.length, 1);
    assert.equal(i[0]!.role, "recv");
    assert.equal(i[0]!.count, 1);
    await out.recv();
    assert.equal(entriesFor("pw-out")[0]!.count, 2, "the count follows the queue");
    ac.abort();
    await Promise.all(ps);
    assert.deepEqual(parkedWork(), []);
  });

  it("is a snapshot: a fresh array of fresh entries that does not change afterwards", async () => {
    const ch = new Channel<number>(0, { name: "pw-snap" });
    const ac = new AbortController();
    const p = capture(ch.send(1, { signal: ac.signal }));
    const a = parkedWork();
    const b = parkedWork();
    assert.notEqual(a, b);
    assert.notEqual(a[0], b[0]);
    ac.abort();
    await p;
    assert.equal(a.length, 1);
    assert.equal(a[0]!.count, 1);
  });

  it("lists semaphore, wait-group and errgroup waiters too", async () => {
    const sem = new Semaphore(1, { name: "pw-sem" });
    const wg = new WaitGroup({ name: "pw-wg" });
    const group = new ErrGroup({ limit: 1, name: "pw-group" });
    const ac = new AbortController();
    sem.tryAcquire(1);
    wg.add(1);
    let release!: () => void;
    await group.go(() => new Promise<void>((resolve) => {
      release = resolve;
    }));
    const ps = [
      capture(sem.acquire(1, { signal: ac.signal })),
      capture(wg.wait({ signal: ac.signal })),
      capture(group.go(() => 1, { signal: ac.signal })),
    ];
    assert.equal(entriesFor("pw-sem")[0]?.count, 1);
    assert.equal(entriesFor("pw-sem")[0]?.role, "acquire");
    assert.equal(entriesFor("pw-wg")[0]?.count, 1);
    assert.equal(entriesFor("pw-wg")[0]?.role, "wait");
    assert.equal(entriesFor("pw-group")[0]?.count, 1);
    ac.abort();
    await Promise.all(ps);
    release();
    await group.wait();
    sem.release(1);
    wg.done();
    assert.deepEqual(parkedWork(), []);
  });

  it("with tracing on, gives where each operation parked (oldest first, at most 10), pointing at the caller", async () => {
    configureDiagnostics({ trace: true });
    const ac = new AbortController();
    try {
      const ch = new Channel<number>(0, { name: "pw-trace" });
      const ps = [];
      for (let i = 0; i < 12; i++) ps.push(capture(ch.send(i, { signal: ac.signal })));
      const [e] = entriesFor("pw-trace");
      assert.equal(e!.count, 12);
      assert.equal(e!.stacks.length, 10);
      for (const s of e!.stacks) assert.match(s, /diagnostics\.test\.ts:\d+/);
      ac.abort();
      await Promise.all(ps);
    } finally {
      ac.abort();
      configureDiagnostics({ trace: false });
    }
  });

  it("a traced stack starts at the caller's frames, not sluice's own", async () => {
    configureDiagnostics({ trace: true });
    const ac = new AbortController();
    try {
      const ch = new Channel<number>(0, { name: "pw-frames" });
      void capture(ch.send(1, { signal: ac.signal }));
      const [e] = entriesFor("pw-frames");
      const frames = e!.stacks[0]!.split("\n").filter((l) => l.trim().startsWith("at "));
      const ours = frames.filter((l) => /[/\\]src[/\\]core[/\\]/.test(l));
      assert.deepEqual(ours, [], "frames inside sluice are dropped");
    } finally {
      ac.abort();
      configureDiagnostics({ trace: false });
    }
  });
});

describe("configureDiagnostics", () => {
  it("returns the settings in force; no argument changes nothing", () => {
    const now = configureDiagnostics();
    assert.equal(typeof now.report, "boolean");
    assert.equal(typeof now.trace, "boolean");
    assert.deepEqual(configureDiagnostics({}), now);
    const on = configureDiagnostics({ trace: true });
    assert.equal(on.trace, true);
    assert.equal(configureDiagnostics({ trace: now.trace }).trace, now.trace);
  });

  it("refuses options of the wrong type with TypeError, changing nothing", () => {
    const before = configureDiagnostics();
    assert.throws(() => configureDiagnostics({ report: "no" as unknown as boolean }), TypeError);
    assert.throws(() => configureDiagnostics({ trace: 1 as unknown as boolean }), TypeError);
    assert.throws(() => configureDiagnostics(null as never), TypeError);
    assert.deepEqual(configureDiagnostics(), before);
  });
});
