/**
 * The dashboard end to end in headless Chromium (issue 16, "Live dashboard"): a workload runs,
 * the page (served offline: uPlot from the dashboard itself) shows every boundary with live
 * updates over server-sent events, and once the workload is held still the values shown equal
 * `snapshot()`. Saves a screenshot (to docs/dashboard.png with SLUICE_UPDATE_SCREENSHOT=1).
 *
 * Needs Debian's chromium at /usr/bin/chromium (`.ci/run` installs it): fails loudly without it.
 */
import { describe, it, after, before } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { Channel } from "../../src/index.js";
import { CircuitBreaker, Pool, RateLimiter } from "../../src/flow/index.js";
import { serveDashboard, snapshot, type ServedDashboard } from "../../src/metrics/index.js";

const CHROMIUM = "/usr/bin/chromium";
const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run",
];
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
// Plain names (each test file runs in a process of its own): they appear in the screenshot.
const NAMES = { orders: "orders", db: "db", payments: "payments", api: "api" };

/** A small service: a producer into a bounded channel, a slow consumer handing work to a pool. */
function startWorkload(): { stop(): Promise<void>; release(): void; held: Promise<void>[] } {
  const orders = new Channel<number>(32, { name: NAMES.orders });
  const db = new Pool({ concurrency: 4, queue: 8, overflow: "reject", name: NAMES.db });
  const breaker = new CircuitBreaker({ name: NAMES.payments, minimumCalls: 5, failureRate: 0.5, openMs: 60_000 });
  const limiter = new RateLimiter({ rate: 200, burst: 20, name: NAMES.api });
  const stop = new AbortController();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  const producer = (async () => {
    for (let i = 0; !stop.signal.aborted; i++) {
      if (limiter.allow()) {
        // Bursts and lulls, so the charts have a shape.
        await orders.send(i, { signal: stop.signal }).catch(() => undefined);
      }
      await sleep(i % 200 < 120 ? 1 : 6);
    }
  })();
  const consumer = (async () => {
    while (!stop.signal.aborted) {
      const r = await orders.recv({ signal: stop.signal }).catch(() => undefined);
      if (r === undefined || !r.ok) break;
      db.trySubmit(() => sleep(8 + (r.value % 7)));
      await breaker.run(() => (r.value % 3 === 0 ? Promise.reject(new Error("card declined")) : Promise.resolve())).catch(() => undefined);
      await sleep(4);
    }
  })();
  // Two tasks that hold their slots until the end: "in flight" stays non-zero when still.
  const held = [db.submit(() => gate), db.submit(() => gate)];
  return {
    held,
    release,
    async stop() {
      stop.abort();
      await Promise.all([producer, consumer]);
      await sleep(30); // the pool's short tasks finish (each under 15 ms)
      while (db.running > 2 || db.queued > 0) await sleep(5);
    },
  };
}

async function seq(page: Page): Promise<number> {
  return Number(await page.getAttribute("#seq", "data-seq"));
}

/** Waits until the page has shown frame `n` (or a later one). */
async function waitForSeq(page: Page, n: number, timeout: number): Promise<void> {
  await page.waitForFunction(`Number(document.querySelector("#seq").getAttribute("data-seq")) >= ${n}`, undefined, { timeout });
}

/** The `data-value` of every field of one boundary's card. */
async function shown(page: Page, id: string): Promise<Record<string, string>> {
  return page.$$eval(`section[data-boundary="${id}"] [data-field]`, (els) =>
    Object.fromEntries(els.map((e) => [e.getAttribute("data-field")!, e.getAttribute("data-value") ?? ""])),
  );
}

describe("dashboard in headless Chromium", { timeout: 120_000 }, () => {
  let browser: Browser;
  let served: ServedDashboard;
  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium package (.ci/run does)`);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
  });
  after(async () => {
    await browser?.close();
    await served?.close();
  });

  it("shows every boundary live, and the values of snapshot() once still; saves a screenshot", async () => {
    const work = startWorkload();
    served = await serveDashboard({ intervalMs: 250, title: "sluice dashboard: order service" });
    assert.match(served.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const offsite: string[] = [];
    page.on("request", (r) => {
      if (!r.url().startsWith(served.url)) offsite.push(r.url());
    });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(served.url);

    // Live: every boundary gets a card, and frames keep coming.
    for (const [kind, name] of [["channel", NAMES.orders], ["pool", NAMES.db], ["circuit-breaker", NAMES.payments], ["rate-limiter", NAMES.api]]) {
      await page.waitForSelector(`section[data-boundary="${kind}/${name}"]`, { timeout: 20_000 });
    }
    const first = await seq(page);
    await waitForSeq(page, first + 8, 30_000);
    assert.ok((await page.$$(`section[data-boundary="channel/${NAMES.orders}"] canvas`)).length >= 2, "two uPlot charts drawn");

    const shotPath = process.env.SLUICE_UPDATE_SCREENSHOT === "1"
      ? path.join(ROOT, "docs", "dashboard.png")
      : path.join(os.tmpdir(), `sluice-dashboard-${process.pid}.png`);
    mkdirSync(path.dirname(shotPath), { recursive: true });
    await page.screenshot({ path: shotPath, fullPage: true });
    const png = readFileSync(shotPath);
    assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47], "a PNG file");
    assert.ok(png.length > 20_000, `a real picture (${png.length} bytes)`);

    // Still: the values shown are snapshot()'s.
    await work.stop();
    const stillAt = served.dashboard.sample().seq; // a frame of the still state, sent now
    await waitForSeq(page, stillAt, 20_000);
    const snap = snapshot();
    const entry = (kind: string, name: string): Record<string, unknown> => {
      const e = snap.find((x) => x.kind === kind && x.name === name);
      assert.ok(e !== undefined, `${kind} ${name} in snapshot()`);
      return e;
    };
    const ch = entry("channel", NAMES.orders);
    const chShown = await shown(page, `channel/${NAMES.orders}`);
    assert.equal(Number(chShown.depth), ch.length);
    assert.equal(Number(chShown.capacity), 32);
    assert.equal(Number(chShown.sent), ch.sent);
    assert.ok(Number(chShown.sent) > 0, "the workload sent something");

    const pool = entry("pool", NAMES.db);
    const poolShown = await shown(page, `pool/${NAMES.db}`);
    assert.equal(Number(poolShown.inFlight), pool.running);
    assert.equal(Number(poolShown.inFlight), 2);
    assert.equal(Number(poolShown.limit), 4);
    assert.equal(Number(poolShown.depth), pool.queued);
    assert.equal(Number(poolShown.rejected), pool.rejected);
    assert.equal(Number(poolShown.sent), (pool.completed as number) + (pool.failed as number));

    const br = entry("circuit-breaker", NAMES.payments);
    const brShown = await shown(page, `circuit-breaker/${NAMES.payments}`);
    assert.equal(brShown.state, br.state);
    assert.equal(Number(brShown.sent), br.calls);
    assert.equal(Number(brShown.rejected), br.rejected);

    // One more frame while still: every rate is zero.
    const next = served.dashboard.sample().seq;
    await waitForSeq(page, next, 20_000);
    const rates = await shown(page, `channel/${NAMES.orders}`);
    assert.equal(Number(rates.sentRate), 0);

    assert.deepEqual(offsite, [], "nothing fetched from anywhere else (works offline)");
    assert.deepEqual(errors, [], "no script error on the page");
    work.release();
    await Promise.all(work.held);
    await page.close();
  });
});
