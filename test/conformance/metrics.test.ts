/**
 * Conformance: DESIGN.md "sluice/metrics and the CLI: settled details" (issue 16): snapshot(),
 * registerPrometheus, serveDashboard, and the `sluice` bin.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { get as httpGet } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Registry, register as globalRegister } from "prom-client";
import { Channel, ErrGroup, Semaphore } from "../../src/index.js";
import { AdaptiveLimit, CircuitBreaker, Pool, RateLimiter } from "../../src/flow/index.js";
import { Broadcast, map, pipeline } from "../../src/pipeline/index.js";
import { Admission } from "../../src/http/index.js";
import { diagnostics, registerPrometheus, serveDashboard, snapshot } from "../../src/metrics/index.js";
import { fetchReply } from "./http-client.js";

const T = { timeout: 60_000 };
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const uniq = (p: string): string => `conf-${p}-${Math.random().toString(36).slice(2, 8)}`;

describe("snapshot(): one entry per live registered boundary, { kind, name, ...stats }", () => {
  test("each kind of boundary appears once with its kind and name, and its stats", T, async () => {
    const names = {
      channel: uniq("ch"), semaphore: uniq("sem"), errgroup: uniq("eg"), pool: uniq("pool"), "rate-limiter": uniq("rl"),
      "adaptive-limit": uniq("al"), "circuit-breaker": uniq("cb"), broadcast: uniq("bc"), admission: uniq("adm"), pipeline: uniq("pl"),
    };
    const ch = new Channel<number>(4, { name: names.channel });
    ch.trySend(1);
    const keep: unknown[] = [
      ch,
      new Semaphore(2, { name: names.semaphore }),
      new ErrGroup({ name: names.errgroup }),
      new Pool({ concurrency: 1, name: names.pool }),
      new RateLimiter({ rate: 1, burst: 1, name: names["rate-limiter"] }),
      new AdaptiveLimit({ name: names["adaptive-limit"] }),
      new CircuitBreaker({ name: names["circuit-breaker"] }),
      new Broadcast({ name: names.broadcast }),
      new Admission({ concurrency: 1, name: names.admission }),
    ];
    const p = pipeline([1, 2, 3], map((x: number) => x, { name: "double" }), { name: names.pipeline });
    await p.run();
    const snap = snapshot();
    assert.ok(Array.isArray(snap));
    for (const [kind, name] of Object.entries(names)) {
      if (kind === "pipeline") continue;
      const found = snap.filter((e) => e.name === name);
      assert.equal(found.length, 1, `one entry for ${kind} ${name}`);
      assert.equal(found[0]!.kind, kind, `kind of ${name}`);
    }
    const stages = snap.filter((e) => e.kind === "pipeline-stage" && String(e.name).startsWith(names.pipeline));
    assert.equal(stages.length, 1, "one pipeline-stage entry per stage of a named pipeline");
    assert.equal(stages[0]!.in, 3, "the stage's stats are spread in the entry");
    const che = snap.find((e) => e.name === names.channel)!;
    assert.equal(che.capacity, 4, "the channel's stats are spread in the entry");
    assert.equal(che.length, 1);
    assert.notEqual(snapshot(), snap, "a fresh array each call");
    assert.ok(keep.length > 0 && p !== undefined);
  });

  test("diagnostics() adds where parked operations wait (parkedWork)", T, async () => {
    const ch = new Channel<number>(0, { name: uniq("diag-ch") });
    const ac = new AbortController();
    const parked = ch.send(1, { signal: ac.signal }).catch(() => undefined);
    const d = diagnostics();
    assert.ok(Array.isArray(d.boundaries));
    assert.ok(d.boundaries.some((e) => e.name === ch.name));
    assert.ok(d.parked.some((e) => e.boundary.includes(String(ch.name)) && e.count === 1), JSON.stringify(d.parked));
    ac.abort();
    await parked;
  });

  test("an unnamed boundary is not registered by default", T, () => {
    const before = snapshot().length;
    const ch = new Channel<number>(1);
    assert.equal(snapshot().length, before);
    assert.equal(ch.capacity, 1);
  });
});

describe("registerPrometheus(registry)", () => {
  test("metric names start with sluice_, label name (and kind where shared); counters end in _total", T, async () => {
    const registry = new Registry();
    const handle = registerPrometheus(registry);
    const name = uniq("prom-ch");
    const ch = new Channel<number>(8, { name });
    const pool = new Pool({ concurrency: 2, name: uniq("prom-pool") });
    try {
      const json = await registry.getMetricsAsJSON();
      assert.ok(json.length > 0, "some metrics registered");
      for (const m of json) {
        assert.match(m.name, /^sluice_/, `metric name ${m.name}`);
        if (String(m.type) === "counter") assert.match(m.name, /_total$/, `counter ${m.name} ends in _total`);
        for (const v of m.values) {
          const labels = v.labels as Record<string, unknown>;
          assert.ok("name" in labels, `${m.name} has a name label`);
        }
      }
      const text = await registry.metrics();
      assert.ok(text.includes(`name="${name}"`), "the named channel is labelled by name");
      assert.ok(pool.stats !== undefined);
    } finally {
      handle.unregister();
      ch.close();
    }
  });

  test("gauges are read at scrape time (no per-operation cost): a change shows in the next scrape", T, async () => {
    const registry = new Registry();
    const handle = registerPrometheus(registry);
    const name = uniq("scrape-ch");
    const ch = new Channel<number>(8, { name });
    try {
      const valueOf = async (): Promise<number | undefined> => {
        const json = await registry.getMetricsAsJSON();
        for (const m of json) {
          if (!/length|depth/.test(m.name) || String(m.type) !== "gauge") continue;
          for (const v of m.values) if ((v.labels as Record<string, unknown>).name === name) return v.value;
        }
        return undefined;
      };
      assert.equal(await valueOf(), 0);
      ch.trySend(1);
      ch.trySend(2);
      assert.equal(await valueOf(), 2);
    } finally {
      handle.unregister();
    }
  });

  test("a metric shared between kinds carries a kind label", T, async () => {
    const registry = new Registry();
    const handle = registerPrometheus(registry);
    const keep = [new Channel<number>(2, { name: uniq("k-ch") }), new Pool({ concurrency: 1, name: uniq("k-pool") })];
    try {
      const json = await registry.getMetricsAsJSON();
      // A metric is shared when its samples come from boundaries of more than one kind: its name then
      // does not say the kind, so it must be labelled with it.
      const kindsInName = ["channel", "semaphore", "errgroup", "pool", "rate_limiter", "keyed_rate_limiter", "adaptive_limit", "circuit_breaker", "retry_budget", "pipeline_stage", "broadcast", "admission"];
      for (const m of json) {
        const saysKind = kindsInName.some((k) => m.name.startsWith(`sluice_${k}_`));
        if (saysKind) continue;
        for (const v of m.values) assert.ok("kind" in (v.labels as Record<string, unknown>), `${m.name} (shared) has a kind label`);
      }
      assert.equal(keep.length, 2);
    } finally {
      handle.unregister();
    }
  });

  test("issue 16's names: sluice_channel_length, sluice_channel_capacity", T, async () => {
    const registry = new Registry();
    const handle = registerPrometheus(registry);
    const name = uniq("names-ch");
    const ch = new Channel<number>(3, { name });
    try {
      const json = await registry.getMetricsAsJSON();
      const by = (n: string): (typeof json)[number] | undefined => json.find((m) => m.name === n);
      const cap = by("sluice_channel_capacity")?.values.find((v) => (v.labels as Record<string, unknown>).name === name);
      assert.equal(cap?.value, 3);
      ch.trySend(1);
      const len = (await registry.getMetricsAsJSON()).find((m) => m.name === "sluice_channel_length")?.values.find((v) => (v.labels as Record<string, unknown>).name === name);
      assert.equal(len?.value, 1);
    } finally {
      handle.unregister();
    }
  });

  test("issue 16's names: sluice_pool_rejected_total{reason}", T, async () => {
    const registry = new Registry();
    const handle = registerPrometheus(registry);
    const pool = new Pool({ concurrency: 1, name: uniq("names-pool") });
    try {
      assert.equal(pool.trySubmit(() => new Promise<void>(() => {})), true);
      assert.equal(pool.trySubmit(() => undefined), false);
      const m = (await registry.getMetricsAsJSON()).find((x) => x.name === "sluice_pool_rejected_total");
      assert.ok(m !== undefined);
      const mine = m.values.filter((v) => (v.labels as Record<string, unknown>).name === pool.name);
      assert.ok(mine.length > 0 && mine.every((v) => "reason" in (v.labels as Record<string, unknown>)), JSON.stringify(mine));
    } finally {
      handle.unregister();
      pool.abort(new Error("end of test"));
    }
  });

  test("default registry: prom-client's global one", T, async () => {
    const handle = registerPrometheus();
    try {
      const text = await globalRegister.metrics();
      assert.match(text, /^# HELP sluice_/m);
    } finally {
      handle.unregister();
    }
  });
});

describe("serveDashboard({ port, host = \"127.0.0.1\" }) resolves with { url, close() }", () => {
  test("url on 127.0.0.1 serving the page; close() closes the server", T, async () => {
    const served = await serveDashboard({ port: 0 });
    assert.equal(typeof served.url, "string");
    assert.equal(typeof served.close, "function");
    const u = new URL(served.url);
    assert.equal(u.hostname, "127.0.0.1", "host defaults to 127.0.0.1");
    const r = await fetchReply(Number(u.port), { path: u.pathname });
    assert.equal(r.status, 200);
    assert.match(String(r.headers["content-type"]), /text\/html/);
    assert.doesNotMatch(r.body, /(src|href)=["']https?:\/\//, "nothing from a CDN");
    await served.close();
    await assert.rejects(
      new Promise<void>((resolve, reject) => {
        const s = connect(Number(u.port), "127.0.0.1");
        s.on("connect", () => {
          s.destroy();
          resolve();
        });
        s.on("error", reject);
      }),
      "the server is closed",
    );
  });

  test("the page's live feed (server-sent events) carries the named boundaries", T, async () => {
    const name = uniq("dash-ch");
    const ch = new Channel<number>(5, { name });
    ch.trySend(1);
    const served = await serveDashboard({ port: 0 });
    try {
      const u = new URL("events", served.url);
      const data = await new Promise<string>((resolve, reject) => {
        const req = httpGet(u, (res) => {
          assert.match(String(res.headers["content-type"]), /text\/event-stream/);
          let buf = "";
          res.on("data", (c: Buffer) => {
            buf += c.toString();
            if (buf.length > 1 << 20) reject(new Error("too much"));
            if (buf.includes(name)) {
              req.destroy();
              resolve(buf);
            }
          });
        });
        req.on("error", (e) => (e.message.includes("socket hang up") ? undefined : reject(e)));
      });
      assert.match(data, /^data:/m);
      assert.ok(data.includes(name));
    } finally {
      await served.close();
      ch.close();
    }
  });

  test("bad options name the option", T, async () => {
    await assert.rejects(serveDashboard({ port: -1 }), (e) => e instanceof RangeError && /port/.test((e as Error).message));
    await assert.rejects(serveDashboard({ port: 1.5 }), (e) => e instanceof RangeError && /port/.test((e as Error).message));
  });
});

/** Runs the `sluice` bin (bounded output, bounded time). */
function sluice(args: string[], timeoutMs = 50_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, "bin/sluice.js"), ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, SLUICE_REPORT: "0" } });
    let stdout = "";
    let stderr = "";
    const cap = (s: string, c: Buffer): string => (s.length > 1 << 20 ? s : s + c.toString("utf8"));
    child.stdout.on("data", (c: Buffer) => (stdout = cap(stdout, c)));
    child.stderr.on("data", (c: Buffer) => (stderr = cap(stderr, c)));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe("the sluice bin", () => {
  test("package.json has a sluice bin", T, () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { bin?: Record<string, string> };
    assert.equal(typeof pkg.bin?.sluice, "string");
    assert.ok(existsSync(join(ROOT, pkg.bin!.sluice!)));
  });

  test("sluice demo oom --json: the last stdout line is one JSON object of the run's final figures", T, async () => {
    const r = await sluice(["demo", "oom", "--json", "--duration", "2"]);
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    const lines = r.stdout.trimEnd().split("\n");
    const last = JSON.parse(lines[lines.length - 1]!) as unknown;
    assert.ok(last !== null && typeof last === "object" && !Array.isArray(last), "one JSON object");
    assert.ok(Object.keys(last as object).length > 0, "with figures");
  });

  test("sluice demo oom --report FILE writes a self-contained HTML file", T, async () => {
    const dir = mkdtempSync(join(tmpdir(), "sluice-conf-"));
    try {
      const file = join(dir, "report.html");
      const r = await sluice(["demo", "oom", "--report", file, "--duration", "2"]);
      assert.equal(r.code, 0, r.stderr.slice(-2000));
      const html = readFileSync(file, "utf8");
      assert.match(html, /^\s*<!doctype html>/i);
      assert.doesNotMatch(html, /(src|href)=["']?(https?:)?\/\//i, "nothing loaded from the network");
      assert.match(html, /<svg|<canvas/i, "charts");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // agent and broker land with the http and nats layers; until they are merged here, their tests are todo.
  const missing = (file: string): string | false => (existsSync(join(ROOT, file)) ? false : `${file} is not merged into this branch yet`);

  test("sluice demo oom|orders answer --help with the CLI's flags", T, async () => {
    for (const demo of ["oom", "orders"]) {
      const r = await sluice(["demo", demo, "--help"]);
      assert.equal(r.code, 0, `sluice demo ${demo} --help: ${r.stderr.slice(-500)}`);
      for (const flag of ["--report", "--json", "--dashboard"]) assert.ok(r.stdout.includes(flag), `${demo} --help mentions ${flag}`);
    }
  });

  for (const [demo, file] of [["agent", "demo/agent.ts"], ["broker", "demo/broker.ts"]] as const) {
    test(`sluice demo ${demo} --help exits 0 (issue 16: --help for each command)`, {
      ...T,
      todo: missing(file),
    }, async () => {
      const r = await sluice(["demo", demo, "--help"]);
      assert.equal(r.code, 0, `sluice demo ${demo} --help: ${r.stderr.slice(-500)}`);
    });
  }

  const jsonRuns: [string, string[], string | false][] = [
    ["orders", ["--orders", "300", "--table", `conf_orders_${process.pid}_${Math.random().toString(36).slice(2, 6)}`, "--drop"], false],
    ["agent", ["--duration", "2"], missing("demo/agent.ts")],
    ["broker", ["--messages", "200", "--work-ms", "5"], missing("demo/broker.ts")],
  ];
  for (const [demo, args, todo] of jsonRuns) {
    test(`sluice demo ${demo} --json: the last stdout line is one JSON object`, { ...T, todo }, async () => {
      const r = await sluice(["demo", demo, "--json", ...args]);
      assert.equal(r.code, 0, r.stderr.slice(-2000));
      const lines = r.stdout.trimEnd().split("\n");
      const last = JSON.parse(lines[lines.length - 1]!) as unknown;
      assert.ok(last !== null && typeof last === "object" && !Array.isArray(last), "one JSON object");
    });
  }

  for (const [demo, args, todo] of jsonRuns) {
    test(`sluice demo ${demo} --report FILE writes a self-contained HTML file`, { ...T, todo }, async () => {
      const dir = mkdtempSync(join(tmpdir(), "sluice-conf-"));
      try {
        const file = join(dir, "report.html");
        const r = await sluice(["demo", demo, "--report", file, ...args]);
        assert.equal(r.code, 0, r.stderr.slice(-2000));
        const html = readFileSync(file, "utf8");
        assert.match(html, /^\s*<!doctype html>/i);
        assert.doesNotMatch(html, /(src|href)=["']?(https?:)?\/\//i, "nothing loaded from the network");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  test("sluice demo oom --dashboard serves the run live (its URL on stderr) and still ends", T, async () => {
    const r = await sluice(["demo", "oom", "--dashboard", "--json", "--duration", "2"]);
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    assert.match(r.stderr, /http:\/\/127\.0\.0\.1:\d+\//, "the dashboard's URL");
    const lines = r.stdout.trimEnd().split("\n");
    assert.doesNotThrow(() => JSON.parse(lines[lines.length - 1]!), "--json still ends stdout");
  });

  test("sluice bench is a command (answers --help); a bad command exits 2", T, async () => {
    const r = await sluice(["bench", "--help"]);
    assert.equal(r.code, 0, r.stderr.slice(-500));
    const bad = await sluice(["demo", "no-such-demo"]);
    assert.equal(bad.code, 2);
  });
});
