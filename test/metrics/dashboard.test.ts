/**
 * The dashboard's bounds and protocol over plain HTTP (no browser): the page and uPlot are
 * served from the process, the event stream sends the history then one frame per sample, rates
 * are computed per second, viewers are bounded (503 past `maxViewers`), a viewer that does not
 * read skips frames instead of buffering them, history is bounded, and bad options throw.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import fc from "fast-check";
import { Channel } from "../../src/index.js";
import { History } from "../../src/metrics/history.js";
import { createDashboard, serveDashboard, type Frame, type SnapshotEntry } from "../../src/metrics/index.js";

/** Reads server-sent events from `url` until `count` events arrived (bounded by the test timeout). */
async function readEvents(url: string, count: number): Promise<{ event: string; data: unknown }[]> {
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /text\/event-stream/);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const out: { event: string; data: unknown }[] = [];
  let buf = "";
  while (out.length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let i: number;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event !== undefined && data !== undefined) out.push({ event, data: JSON.parse(data) });
    }
  }
  await reader.cancel();
  return out;
}

describe("dashboard over HTTP", () => {
  it("serves the page, uPlot from node_modules, and a stream: history, then frames with rates", { timeout: 20_000 }, async () => {
    let sent = 0;
    const source = (): SnapshotEntry[] => [{ kind: "channel", name: "fake", named: true, length: 3, capacity: 8, sent, sendsWaited: 0, rejectedSends: 0 }];
    const served = await serveDashboard({ intervalMs: 60_000, source, title: "test <board>" });
    try {
      const page = await (await fetch(served.url)).text();
      assert.match(page, /<title>test &lt;board&gt;<\/title>/);
      assert.doesNotMatch(page, /https?:\/\/(?!127)/, "no absolute URL to fetch from elsewhere");
      const js = await fetch(new URL("uplot.js", served.url));
      assert.equal(js.status, 200);
      assert.match(await js.text(), /uPlot/);
      assert.equal((await fetch(new URL("uplot.css", served.url))).status, 200);
      assert.equal((await fetch(new URL("nope", served.url))).status, 404);

      const events = readEvents(new URL("events", served.url).href, 3);
      while (served.dashboard.viewers === 0) await new Promise((r) => setImmediate(r));
      sent = 10;
      const a = served.dashboard.sample();
      sent = 30;
      const b = served.dashboard.sample();
      const got = await events;
      assert.equal(got[0]!.event, "history");
      assert.equal(got[1]!.event, "frame");
      assert.equal((got[1]!.data as Frame).seq, a.seq);
      const fb = (got[2]!.data as Frame).boundaries[0]!;
      assert.equal(fb.id, "channel/fake");
      assert.equal(fb.depth, 3);
      assert.equal(fb.capacity, 8);
      assert.equal(fb.sent, 30);
      const seconds = (b.t - a.t) / 1000;
      if (seconds > 0) assert.equal(fb.sentRate, 20 / seconds);
      const frame = (await (await fetch(new URL("frame.json", served.url))).json()) as Frame;
      assert.equal(frame.seq, b.seq);
    } finally {
      await served.close();
    }
  });

  it("refuses viewers past maxViewers with 503 and Retry-After", { timeout: 20_000 }, async () => {
    const served = await serveDashboard({ maxViewers: 1, intervalMs: 60_000, source: () => [] });
    try {
      const first = await fetch(new URL("events", served.url));
      assert.equal(first.status, 200);
      const second = await fetch(new URL("events", served.url));
      assert.equal(second.status, 503);
      assert.equal(second.headers.get("retry-after"), "5");
      await first.body!.cancel();
    } finally {
      await served.close();
    }
  });

  it("a viewer that does not read skips frames: the server buffers at most what the socket takes", { timeout: 30_000 }, async () => {
    // Big frames: 32 boundaries with long names.
    const entries: SnapshotEntry[] = Array.from({ length: 32 }, (_, i) => ({
      kind: "channel", name: `${"x".repeat(70)}-${i}`, named: true, length: i, capacity: 64, sent: i,
    }));
    const served = await serveDashboard({ intervalMs: 60_000, source: () => entries });
    const url = new URL(served.url);
    const socket = net.connect(Number(url.port), url.hostname);
    try {
      await new Promise<void>((r) => socket.once("connect", () => r()));
      socket.write(`GET /events HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`);
      socket.pause(); // never reads
      while (served.dashboard.viewers === 0) await new Promise((r) => setTimeout(r, 5));
      for (let i = 0; i < 400; i++) served.dashboard.sample();
      assert.ok(served.dashboard.skippedFrames > 0, "frames were skipped for the stalled viewer");
      const frames = served.dashboard.frames;
      assert.ok(frames.length <= 300, `history bounded (${frames.length})`);
    } finally {
      socket.destroy();
      await served.close();
    }
  });

  it("keeps at most historySeconds of frames and maxBoundaries per frame (names cut)", () => {
    const entries: SnapshotEntry[] = Array.from({ length: 10 }, (_, i) => ({ kind: "semaphore", name: "n".repeat(200) + i, named: true, held: i, size: 10 }));
    const d = createDashboard({ intervalMs: 1000, historySeconds: 5, maxBoundaries: 4, source: () => entries });
    try {
      for (let i = 0; i < 20; i++) d.sample();
      assert.equal(d.frames.length, 5);
      const last = d.frames.at(-1)!;
      assert.equal(last.boundaries.length, 4);
      assert.equal(last.omitted, 6);
      assert.ok(last.boundaries.every((b) => b.name.length <= 80));
      assert.equal(last.boundaries[2]!.inFlight, 2);
      assert.equal(last.boundaries[2]!.limit, 10);
    } finally {
      d.close();
    }
  });

  it("mounts in an existing server and answers 503 once closed; rejects bad options", { timeout: 20_000 }, async () => {
    const ch = new Channel<number>(2, { name: "mounted" });
    ch.trySend(1);
    const d = createDashboard({ intervalMs: 60_000 });
    const server = http.createServer((req, res) => {
      if (req.url?.startsWith("/sluice/")) {
        req.url = req.url.slice("/sluice".length);
        d.handler(req, res);
      } else res.writeHead(418).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/sluice/`;
    try {
      d.sample();
      const frame = (await (await fetch(base + "frame.json")).json()) as Frame;
      const b = frame.boundaries.find((x) => x.id === "channel/mounted");
      assert.equal(b?.depth, 1);
      d.close();
      assert.equal((await fetch(base)).status, 503);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
    assert.throws(() => createDashboard({ intervalMs: 10 }), /intervalMs/);
    assert.throws(() => createDashboard({ maxViewers: 0 }), RangeError);
    assert.throws(() => createDashboard({ source: 1 as never }), TypeError);
    await assert.rejects(serveDashboard({ port: -1 }), RangeError);
  });

  it("history: each rate is the counter's growth over the seconds between frames; null at first and when it went back (randomized)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ dt: fc.integer({ min: 1, max: 5000 }), sent: fc.integer({ min: 0, max: 1000 }), present: fc.boolean() }), { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 1, max: 10 }),
        (steps, maxFrames) => {
          const h = new History(maxFrames, 8);
          let t = 1_000_000;
          let prev: { t: number; sent: number } | undefined;
          for (const step of steps) {
            t += step.dt;
            const entries: SnapshotEntry[] = step.present ? [{ kind: "channel", name: "c", named: true, sent: step.sent, length: 0, capacity: 1 }] : [];
            const frame = h.add(entries, t);
            assert.ok(h.frames.length <= maxFrames);
            if (!step.present) {
              assert.equal(frame.boundaries.length, 0);
              prev = undefined;
              continue;
            }
            const b = frame.boundaries[0]!;
            const expected = prev === undefined || step.sent < prev.sent ? null : (step.sent - prev.sent) / ((t - prev.t) / 1000);
            assert.equal(b.sentRate, expected);
            assert.equal(b.droppedRate, null, "a channel drops nothing: no rate at all, not a false zero");
            prev = { t, sent: step.sent };
          }
        },
      ),
      { numRuns: 200, seed: 16 },
    );
  });
});
