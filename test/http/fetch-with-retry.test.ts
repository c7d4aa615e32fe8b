import { test } from "node:test";
import assert from "node:assert/strict";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Admission, fetchWithRetry, RetryableResponseError } from "../../src/http/index.js";
import { RetryBudget } from "../../src/flow/index.js";
import { deferred, listen } from "./helpers.js";

const T = { timeout: 20_000 };

/** A server that answers each request with the next scripted step: a status + Retry-After, or a dropped connection. */
async function scripted(steps: ({ status: number; retryAfter?: string } | "drop")[]) {
  const seen: { method: string; at: number }[] = [];
  const s = await listen((req: IncomingMessage, res: ServerResponse) => {
    seen.push({ method: req.method ?? "", at: performance.now() });
    const step = steps.shift() ?? { status: 200 };
    if (step === "drop") {
      req.socket.destroy();
      return;
    }
    if (step.retryAfter !== undefined) res.setHeader("retry-after", step.retryAfter);
    res.statusCode = step.status;
    res.end(`status ${step.status}`);
  });
  return { ...s, seen, url: `http://127.0.0.1:${s.port}/` };
}

test("a 503 with Retry-After: 0 and a 429 are retried; the final response is returned", T, async () => {
  const s = await scripted([{ status: 503, retryAfter: "0" }, { status: 429, retryAfter: "0" }, { status: 200 }]);
  try {
    const events: number[] = [];
    const res = await fetchWithRetry(s.url, undefined, { attempts: 5, baseMs: 1, onRetry: (e) => events.push(e.attempt) });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "status 200");
    assert.equal(s.seen.length, 3);
    assert.deepEqual(events, [1, 2]);
  } finally {
    await s.close();
  }
});

test("out of attempts, the last 503 is returned (with its body), not thrown", T, async () => {
  const s = await scripted([{ status: 503, retryAfter: "0" }, { status: 503, retryAfter: "0" }]);
  try {
    const res = await fetchWithRetry(s.url, undefined, { attempts: 2, baseMs: 1 });
    assert.equal(res.status, 503);
    assert.equal(await res.text(), "status 503");
    assert.equal(s.seen.length, 2);
  } finally {
    await s.close();
  }
});

test("a Retry-After longer than maxMs is not waited out: the 503 comes back at once", T, async () => {
  const s = await scripted([{ status: 503, retryAfter: "120" }]);
  try {
    const res = await fetchWithRetry(s.url, undefined, { attempts: 5, maxMs: 5_000 });
    assert.equal(res.status, 503);
    assert.equal(s.seen.length, 1);
  } finally {
    await s.close();
  }
});

test("an empty RetryBudget stops retries", T, async () => {
  const s = await scripted([{ status: 503, retryAfter: "0" }, { status: 200 }]);
  try {
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 0 });
    const res = await fetchWithRetry(s.url, undefined, { attempts: 5, baseMs: 1, budget });
    assert.equal(res.status, 503);
    assert.equal(s.seen.length, 1);
    assert.equal(budget.stats.refused, 1);
  } finally {
    await s.close();
  }
});

test("network failures are retried for GET, not for POST", T, async () => {
  const s = await scripted(["drop", { status: 200 }, "drop", { status: 200 }]);
  try {
    const ok = await fetchWithRetry(s.url, undefined, { attempts: 3, baseMs: 1 });
    assert.equal(ok.status, 200);
    await ok.text();
    await assert.rejects(fetchWithRetry(s.url, { method: "POST", body: "x" }, { attempts: 3, baseMs: 1 }), TypeError);
    assert.deepEqual(s.seen.map((x) => x.method), ["GET", "GET", "POST"]);
  } finally {
    await s.close();
  }
});

test("an abort rejects with the signal's reason, during a wait too", T, async () => {
  const s = await scripted([{ status: 503, retryAfter: "5" }]);
  try {
    const ac = new AbortController();
    const reason = new Error("caller gave up");
    const p = fetchWithRetry(s.url, { signal: ac.signal }, { attempts: 3, onRetry: () => ac.abort(reason) });
    await assert.rejects(p, (e) => e === reason);
    const already = AbortSignal.abort(reason);
    await assert.rejects(fetchWithRetry(s.url, { signal: already }), (e) => e === reason);
    assert.equal(s.seen.length, 1);
  } finally {
    await s.close();
  }
});

test("against a sluice Admission: the client waits the server's Retry-After before trying again", T, async () => {
  const admission = new Admission({ concurrency: 1, retryAfter: 1, retryAfterJitter: 0 });
  const gate = deferred<void>();
  const arrivals: number[] = [];
  let first = true;
  const s = await listen(
    admission.handler(async (_req, res) => {
      if (first) {
        first = false;
        await gate.promise;
      }
      res.end("served");
    }),
  );
  s.server.prependListener("request", () => arrivals.push(performance.now()));
  try {
    const url = `http://127.0.0.1:${s.port}/`;
    const holder = fetch(url);
    while (admission.inFlight === 0) await new Promise<void>((r) => setImmediate(r));
    const retried: unknown[] = [];
    const client = fetchWithRetry(url, undefined, {
      attempts: 3,
      retryAfterJitter: 0,
      onRetry: (e) => {
        retried.push(e.error);
        gate.resolve();
      },
    });
    const res = await client;
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "served");
    await (await holder).text();
    assert.equal(retried.length, 1);
    assert.ok(retried[0] instanceof RetryableResponseError);
    assert.equal((retried[0] as RetryableResponseError).retryAfterMs, 1000);
    assert.equal(arrivals.length, 3);
    assert.ok(arrivals[2]! - arrivals[1]! >= 990, `waited ${arrivals[2]! - arrivals[1]!} ms, at least the Retry-After`);
  } finally {
    await s.close();
  }
});
