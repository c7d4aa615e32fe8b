/**
 * The `sluice` command (bin/sluice.js -> demo/cli.ts) and the HTML report it writes (issue 16,
 * "The demos, as pictures, and a CLI"): `sluice demo oom --json --report FILE` runs the OOM
 * demo, its last stdout line is one JSON object of the final figures, and the report file
 * parses, has its charts, and its values are the run's. Usage errors exit 2; a demo whose
 * module is missing is named.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { splitDemoArgs } from "../../demo/cli.js";
import { renderReport } from "../../src/metrics/index.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BIN = fileURLToPath(new URL("../../bin/sluice.js", import.meta.url));
const MAX_OUTPUT = 1 << 20;

function sluice(args: readonly string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], timeout: timeoutMs, killSignal: "SIGKILL" });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      if (stdout.length < MAX_OUTPUT) stdout += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      if (stderr.length < MAX_OUTPUT) stderr += d;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** The `data-points` of every polyline of the chart titled `title`, by series label. */
function chartSeries(html: string, title: string): Map<string, [number, number][]> {
  const start = html.indexOf(`data-chart="${title}"`);
  assert.ok(start >= 0, `chart ${title} present`);
  const end = html.indexOf("</figure>", start);
  const out = new Map<string, [number, number][]>();
  for (const m of html.slice(start, end).matchAll(/<polyline [^>]*data-series="([^"]*)" data-points="([^"]*)"/g)) {
    out.set(m[1]!, m[2]! === "" ? [] : m[2]!.split(";").map((p) => p.split(",").map(Number) as [number, number]));
  }
  return out;
}

describe("the sluice command", () => {
  it("sluice demo oom --json --report FILE: one JSON line last, and a report whose charts are the run", { timeout: 90_000 }, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "sluice-cli-"));
    try {
      const file = path.join(dir, "oom.html");
      const r = await sluice(["demo", "oom", "--duration", "3", "--payload", "1024", "--rate", "2000", "--cap", "50000", "--json", "--report", file], 75_000);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const last = r.stdout.trimEnd().split("\n").at(-1)!;
      const figures = JSON.parse(last) as Record<string, unknown>;
      assert.equal(figures.demo, "oom");
      assert.equal(figures.ok, true);
      assert.equal(typeof figures.bugPeakHeapMb, "number");
      assert.ok((figures.fixPeakPending as number) <= 258, "the fix stays bounded");
      assert.ok((figures.bugPeakPending as number) > 258, "the bug grows");
      assert.match(r.stderr, /report written to/);

      const html = readFileSync(file, "utf8");
      assert.match(html, /^<!doctype html>/);
      assert.doesNotMatch(html, /<script|<link|src=|https?:\/\//, "self-contained: no script, no external resource");
      const charts = [...html.matchAll(/<figure class="chart" data-chart="([^"]*)"/g)].map((m) => m[1]);
      assert.equal(charts.length, 4);
      assert.equal((html.match(/<svg /g) ?? []).length, 4);
      const heap = chartSeries(html, "Live memory after a full GC (V8 heap + Buffers), bug against fix");
      assert.deepEqual([...heap.keys()], ["bug", "fix"]);
      const bugHeap = heap.get("bug")!;
      assert.ok(bugHeap.length >= 3, "a point per second");
      assert.equal(Math.round(Math.max(...bugHeap.map(([, y]) => y)) * 10) / 10, figures.bugPeakHeapMb, "the chart's peak is the figure");
      const pending = chartSeries(html, "Messages held in the process (pending = accepted - processed)");
      assert.equal(Math.max(...pending.get("fix")!.map(([, y]) => y)), figures.fixPeakPending);
      assert.equal(Math.max(...pending.get("bug")!.map(([, y]) => y)), figures.bugPeakPending);
      // The figures table carries the same values.
      assert.match(html, new RegExp(`data-figure="bugPeakPending" data-value="${figures.bugPeakPending as number}"`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("sluice demo oom --dashboard: the page's stream shows both runs' channels, relayed from their processes", { timeout: 90_000 }, async () => {
    const child = spawn(process.execPath, [BIN, "demo", "oom", "--dashboard", "--duration", "4", "--payload", "1024", "--rate", "2000", "--cap", "50000"], {
      cwd: ROOT, stdio: ["ignore", "ignore", "pipe"], timeout: 75_000, killSignal: "SIGKILL",
    });
    const exited = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
    try {
      // The URL is the first thing printed on stderr.
      const url = await new Promise<string>((resolve, reject) => {
        let err = "";
        child.stderr.setEncoding("utf8").on("data", (d: string) => {
          if (err.length < MAX_OUTPUT) err += d;
          const m = /dashboard of this run at (http:\/\/\S+)/.exec(err);
          if (m !== null) resolve(m[1]!);
        });
        child.on("close", () => reject(new Error(`exited before printing the dashboard URL: ${err}`)));
      });
      // Read frames until both relayed channels show up, the bug's with parked senders.
      const res = await fetch(new URL("events", url));
      assert.equal(res.status, 200);
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let buf = "";
      let seen: { bug?: Record<string, unknown>; fix?: Record<string, unknown> } = {};
      while (!((seen.bug?.waiting as number) > 0 && seen.fix !== undefined && seen.fix.capacity === 256)) {
        const { value, done } = await reader.read();
        assert.ok(!done, "the stream ended before both runs were seen");
        buf += decoder.decode(value, { stream: true });
        let i: number;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (!/^event: frame$/m.test(block) || data === undefined) continue;
          const frame = JSON.parse(data) as { boundaries: Record<string, unknown>[] };
          seen = {
            bug: frame.boundaries.find((b) => b.id === "channel/bug/events") ?? seen.bug,
            fix: frame.boundaries.find((b) => b.id === "channel/fix/events") ?? seen.fix,
          };
        }
      }
      await reader.cancel();
      assert.equal(seen.bug!.capacity, 0);
      assert.ok((seen.fix!.depth as number) <= 256);
      assert.equal(await exited, 0);
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("usage errors exit 2 and name the problem; --help exits 0; a missing demo is named", { timeout: 60_000 }, async () => {
    const bad = await sluice(["demo", "oom", "--rate", "fast"], 30_000);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--rate must be a number/);
    const unknown = await sluice(["nope"], 30_000);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "nope"/);
    const help = await sluice(["demo", "oom", "--help"], 30_000);
    assert.equal(help.code, 0);
    for (const flag of ["--report", "--json", "--dashboard", "--duration", "--rate"]) assert.ok(help.stdout.includes(flag), flag);
    const noName = await sluice(["demo", "nosuch"], 30_000);
    assert.equal(noName.code, 2);
    assert.match(noName.stderr, /unknown demo "nosuch"/);
  });

  it("splits the CLI's flags from the demo's, whatever their order and form", () => {
    const f = splitDemoArgs(["--duration", "5", "--report=out.html", "--json", "--rate", "9", "--port", "0", "--dashboard", "--", "--json"]);
    assert.deepEqual(f.rest, ["--duration", "5", "--rate", "9", "--", "--json"]);
    assert.equal(f.report, "out.html");
    assert.equal(f.json, true);
    assert.equal(f.dashboard, true);
    assert.equal(f.port, 0);
    const g = splitDemoArgs(["--report", "a.html", "--work-ms=2"]);
    assert.deepEqual(g.rest, ["--work-ms=2"]);
    assert.equal(g.report, "a.html");
    assert.throws(() => splitDemoArgs(["--report"]), /--report needs/);
    assert.throws(() => splitDemoArgs(["--port", "x"]), /--port must be/);
  });
});

describe("renderReport", () => {
  it("escapes text, draws lines and bars with their values as data attributes, and thins long lines", () => {
    const points = Array.from({ length: 5000 }, (_, i) => [i, i * 2] as const);
    const html = renderReport({
      title: "a <b> & c",
      generatedAt: new Date(0),
      sections: [{
        title: "run",
        verdict: "fine",
        ok: true,
        figures: { peak: 42, name: "<x>" },
        charts: [
          { title: "line", unit: "MB", series: [{ label: "s1", points }] },
          { type: "bars", title: "bars", unit: "ns/op", bars: [{ label: "sluice", value: 10, group: "W1", highlight: true }, { label: "peer", value: 20, group: "W1" }] },
        ],
      }],
    });
    assert.match(html, /<title>a &lt;b&gt; &amp; c<\/title>/);
    assert.match(html, /data-value="&lt;x&gt;"/);
    const s = chartSeries(html, "line").get("s1")!;
    assert.equal(s.length, 2000, "at most MAX_POINTS points");
    assert.deepEqual(s[0], [0, 0]);
    assert.deepEqual(s.at(-1), [4999, 9998]);
    assert.match(html, /data-bar="sluice" data-group="W1" data-value="10"/);
    assert.match(html, /data-bar="peer" data-group="W1" data-value="20"/);
    assert.match(html, /1970-01-01T00:00:00.000Z/);
    assert.throws(() => renderReport({} as never), TypeError);
  });
});
