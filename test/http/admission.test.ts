import { test } from "node:test";
import assert from "node:assert/strict";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Admission, ADMISSION_REJECT_CHANNEL, type AdmissionRejectMessage } from "../../src/http/index.js";
import { AdaptiveLimit, KeyedRateLimiter } from "../../src/flow/index.js";
import { observed } from "../../src/core/registry.js";
import { Counter, RawClient, deferred, listen, problemOf, waitUntil } from "./helpers.js";

const T = { timeout: 20_000 };

/** A server whose handler waits for the test to release it; `started` counts handler calls, in order. */
async function heldServer(admission: Admission) {
  const started = new Counter();
  const order: string[] = [];
  const gates: ReturnType<typeof deferred<void>>[] = [];
  const signals: AbortSignal[] = [];
  const entered = new Counter();
  const s = await listen(
    admission.handler(async (req, res, signal) => {
      order.push(req.url ?? "");
      signals.push(signal);
      const gate = deferred<void>();
      gates.push(gate);
      started.hit();
      await gate.promise;
      if (!res.writableEnded && !res.destroyed) res.end(`done ${req.url}`);
    }),
  );
  s.server.on("request", () => entered.hit());
  return { ...s, started, order, gates, signals, entered };
}

test("options: bad values throw RangeError/TypeError naming the option", () => {
  assert.throws(() => new Admission({ concurrency: 0 }), { name: "RangeError", message: /options\.concurrency.*got 0/ });
  assert.throws(() => new Admission({ concurrency: -1 }), /options\.concurrency/);
  assert.throws(() => new Admission({ concurrency: 1.5 }), RangeError);
  assert.throws(() => new Admission({ concurrency: Infinity }), { name: "RangeError", message: /options\.concurrency/ });
  assert.throws(() => new Admission({ concurrency: "8" as unknown as number }), { name: "TypeError", message: /options\.concurrency/ });
  assert.throws(() => new Admission({ concurrency: 1, queue: -1 }), { name: "RangeError", message: /options\.queue.*-1/ });
  assert.throws(() => new Admission({ concurrency: 1, queue: Infinity }), { name: "RangeError", message: /options\.queue/ });
  assert.throws(() => new Admission({ concurrency: 1, order: "random" as "fifo" }), { name: "TypeError", message: /options\.order/ });
  assert.throws(() => new Admission({ concurrency: 1, queueTimeoutMs: -5 }), { name: "RangeError", message: /options\.queueTimeoutMs/ });
  assert.throws(() => new Admission({ concurrency: 1, deadlineMs: NaN }), { name: "RangeError", message: /options\.deadlineMs/ });
  assert.throws(() => new Admission({ concurrency: 1, retryAfter: 0 }), { name: "RangeError", message: /options\.retryAfter/ });
  assert.throws(() => new Admission({ concurrency: 1, retryAfterJitter: -1 }), { name: "RangeError", message: /options\.retryAfterJitter/ });
  assert.throws(() => new Admission({ concurrency: 1, quota: { limiter: {} as KeyedRateLimiter, key: () => "" } }), { name: "TypeError", message: /options\.quota\.limiter/ });
  assert.throws(() => new Admission({ concurrency: 1, quota: { limiter: new KeyedRateLimiter({ rate: 1, burst: 1, maxKeys: 1 }), key: 3 as unknown as () => string } }), { name: "TypeError", message: /options\.quota\.key/ });
  assert.throws(() => new Admission(undefined as unknown as { concurrency: number }), TypeError);
  assert.throws(() => new Admission({ concurrency: 1 }).handler(3 as unknown as () => void), { name: "TypeError", message: /listener/ });
});

test("a request past concurrency + queue gets 503, Retry-After, a problem body; the handler is never called", T, async () => {
  const admission = new Admission({ concurrency: 2, name: "api" });
  const s = await heldServer(admission);
  try {
    const a = new RawClient(s.port);
    const b = new RawClient(s.port);
    a.request("GET", "/a");
    b.request("GET", "/b");
    await s.started.reached(2);
    const c = new RawClient(s.port);
    c.request("GET", "/c");
    const r = await c.response();
    assert.equal(r.status, 503);
    assert.match(r.headers["retry-after"]!, /^[1-9]\d*$/);
    assert.equal(r.headers["content-type"], "application/problem+json");
    const p = problemOf(r.body);
    assert.equal(p.status, 503);
    assert.equal(p.type, "urn:sluice:problem:queue-full");
    assert.equal(typeof p.title, "string");
    assert.match(p.detail, /"api"/);
    assert.equal(p.reason, "queueFull");
    assert.equal(s.started.count, 2);
    assert.deepEqual(s.order, ["/a", "/b"]);
    const st = admission.stats;
    assert.equal(st.admitted, 2);
    assert.equal(st.inFlight, 2);
    assert.equal(st.rejected.queueFull, 1);
    assert.equal(st.received, 3);
    for (const g of s.gates) g.resolve();
    assert.equal((await a.response()).body, "done /a");
    assert.equal((await b.response()).status, 200);
    a.close(); b.close(); c.close();
  } finally {
    await s.close();
  }
});

test("a refusal is answered before the body is read; a small body keeps the connection usable, a large one closes it", T, async () => {
  const admission = new Admission({ concurrency: 1, maxDrainBytes: 1024 });
  const s = await heldServer(admission);
  try {
    const holder = new RawClient(s.port);
    holder.request("GET", "/hold");
    await s.started.reached(1);

    // Headers only, a declared 10 MB body never sent: the answer comes anyway, with Connection: close.
    const big = new RawClient(s.port);
    big.request("POST", "/upload", { "content-length": 10_000_000 });
    const r1 = await big.response();
    assert.equal(r1.status, 503);
    assert.equal(r1.headers["connection"], "close");
    await big.closedPromise; // the server closed it: no half-read body left on a kept-alive socket

    // Chunked: unknown length, closed too.
    const chunked = new RawClient(s.port);
    chunked.request("POST", "/upload", { "transfer-encoding": "chunked" });
    const r2 = await chunked.response();
    assert.equal(r2.status, 503);
    assert.equal(r2.headers["connection"], "close");
    await chunked.closedPromise;

    // A small body: answered before it is sent, then discarded; the same socket serves again.
    const small = new RawClient(s.port);
    small.request("POST", "/small", { "content-length": 11 });
    const r3 = await small.response();
    assert.equal(r3.status, 503);
    assert.notEqual(r3.headers["connection"], "close");
    small.send("hello world");
    small.request("GET", "/again");
    const r4 = await small.response();
    assert.equal(r4.status, 503); // still full, but the connection parsed a second request
    assert.equal(small.closed, false);
    assert.equal(s.started.count, 1);

    s.gates[0]!.resolve();
    assert.equal((await holder.response()).status, 200);
    holder.close(); small.close();
  } finally {
    await s.close();
  }
});

test("keep-alive: after a reject the same connection is admitted once a slot is free", T, async () => {
  const admission = new Admission({ concurrency: 1 });
  const s = await heldServer(admission);
  try {
    const holder = new RawClient(s.port);
    holder.request("GET", "/hold");
    await s.started.reached(1);
    const c = new RawClient(s.port);
    c.request("GET", "/x");
    assert.equal((await c.response()).status, 503);
    s.gates[0]!.resolve();
    await holder.response();
    await waitUntil(() => admission.inFlight === 0);
    c.request("GET", "/y");
    await s.started.reached(2);
    s.gates[1]!.resolve();
    const r = await c.response();
    assert.equal(r.status, 200);
    assert.equal(r.body, "done /y");
    holder.close(); c.close();
  } finally {
    await s.close();
  }
});


test("a client that disconnects aborts the handler's signal; the slot stays held until the handler settles", T, async () => {
  const admission = new Admission({ concurrency: 1 });
  const aborted = deferred<unknown>();
  const release = deferred<void>();
  const started = new Counter();
  const s = await listen(
    admission.handler(async (_req, _res, signal) => {
      started.hit();
      signal.addEventListener("abort", () => aborted.resolve(signal.reason));
      await release.promise;
    }),
  );
  try {
    const c = new RawClient(s.port);
    c.request("GET", "/slow");
    await started.reached(1);
    c.close();
    const reason = (await aborted.promise) as DOMException;
    assert.equal(reason.name, "AbortError");
    assert.equal(admission.stats.clientAborted, 1);
    assert.equal(admission.inFlight, 1, "the slot is held while the handler runs");
    const d = new RawClient(s.port);
    d.request("GET", "/other");
    assert.equal((await d.response()).status, 503);
    release.resolve();
    await waitUntil(() => admission.inFlight === 0);
    assert.equal(admission.stats.completed, 1);
    d.close();
  } finally {
    await s.close();
  }
});

test("the signal never fires after a normal response", T, async () => {
  const admission = new Admission({ concurrency: 4, deadlineMs: 60_000 });
  const checked = new Counter();
  const seen: boolean[] = [];
  const s = await listen(
    admission.handler((_req, res, signal) => {
      res.on("close", () => {
        seen.push(signal.aborted);
        checked.hit();
      });
      res.end("ok");
    }),
  );
  try {
    const c = new RawClient(s.port);
    for (let i = 0; i < 3; i++) {
      c.request("GET", `/${i}`);
      assert.equal((await c.response()).status, 200);
    }
    await checked.reached(3);
    await waitUntil(() => admission.inFlight === 0);
    c.close();
    await c.closedPromise;
    assert.deepEqual(seen, [false, false, false]);
    assert.equal(admission.stats.clientAborted, 0);
    assert.equal(admission.stats.completed, 3);
  } finally {
    await s.close();
  }
});

for (const order of ["fifo", "lifo"] as const) {
  test(`${order}: queued requests are admitted ${order === "fifo" ? "oldest" : "freshest"} first`, T, async () => {
    const admission = new Admission({ concurrency: 1, queue: 3, order });
    const s = await heldServer(admission);
    try {
      const clients = ["/0", "/a", "/b", "/c"].map((path, i) => ({ path, c: new RawClient(s.port), i }));
      clients[0]!.c.request("GET", "/0");
      await s.started.reached(1);
      for (const { path, c, i } of clients.slice(1)) {
        c.request("GET", path);
        await s.entered.reached(i + 1);
      }
      assert.equal(admission.queued, 3);
      for (let k = 0; k < 4; k++) {
        await s.started.reached(k + 1);
        s.gates[k]!.resolve();
      }
      for (const { c } of clients) assert.equal((await c.response()).status, 200);
      assert.deepEqual(s.order, order === "fifo" ? ["/0", "/a", "/b", "/c"] : ["/0", "/c", "/b", "/a"]);
      assert.ok(admission.stats.queueWait.count === 4);
      for (const { c } of clients) c.close();
    } finally {
      await s.close();
    }
  });
}

test("queue timeout: a request that waited queueTimeoutMs gets 503 (queueTimeout) and never runs", T, async () => {
  const admission = new Admission({ concurrency: 1, queue: 2, queueTimeoutMs: 30, retryAfter: 3, retryAfterJitter: 0 });
  const s = await heldServer(admission);
  try {
    const a = new RawClient(s.port);
    a.request("GET", "/a");
    await s.started.reached(1);
    const b = new RawClient(s.port);
    b.request("GET", "/b");
    const r = await b.response();
    assert.equal(r.status, 503);
    assert.equal(r.headers["retry-after"], "3");
    assert.equal(problemOf(r.body).type, "urn:sluice:problem:queue-timeout");
    assert.equal(admission.stats.rejected.queueTimeout, 1);
    assert.equal(admission.queued, 0);
    s.gates[0]!.resolve();
    await a.response();
    assert.deepEqual(s.order, ["/a"]);
    a.close(); b.close();
  } finally {
    await s.close();
  }
});

test("a client that leaves while queued is withdrawn: counted abandoned, never admitted", T, async () => {
  const admission = new Admission({ concurrency: 1, queue: 2 });
  const s = await heldServer(admission);
  try {
    const a = new RawClient(s.port);
    a.request("GET", "/a");
    await s.started.reached(1);
    const b = new RawClient(s.port);
    b.request("GET", "/b");
    await s.entered.reached(2);
    assert.equal(admission.queued, 1);
    b.close();
    await waitUntil(() => admission.queued === 0);
    s.gates[0]!.resolve();
    await a.response();
    await waitUntil(() => admission.inFlight === 0);
    const st = admission.stats;
    assert.equal(st.abandoned, 1);
    assert.equal(st.clientAborted, 1);
    assert.equal(st.admitted, 1);
    assert.deepEqual(s.order, ["/a"]);
    a.close();
  } finally {
    await s.close();
  }
});

test("quota: over its KeyedRateLimiter a client gets 429 with the limiter's delay; others are not affected", T, async () => {
  const limiter = new KeyedRateLimiter({ rate: 0.5, burst: 2, maxKeys: 100 });
  const admission = new Admission({ concurrency: 8, quota: { limiter, key: (req) => String(req.headers["x-client"]) } });
  const s = await listen(admission.handler((_req, res) => void res.end("ok")));
  try {
    const c = new RawClient(s.port);
    const statuses: number[] = [];
    let last;
    for (let i = 0; i < 3; i++) {
      c.request("GET", "/", { "x-client": "alice" });
      last = await c.response();
      statuses.push(last.status);
    }
    assert.deepEqual(statuses, [200, 200, 429]);
    assert.equal(last!.headers["retry-after"], "2"); // one token at 0.5/s: 2 s
    assert.equal(problemOf(last!.body).type, "urn:sluice:problem:quota-exceeded");
    assert.equal(problemOf(last!.body).status, 429);
    assert.equal(last!.headers["ratelimit-limit"], undefined, "RateLimit headers are off by default");
    c.request("GET", "/", { "x-client": "bob" });
    assert.equal((await c.response()).status, 200);
    assert.equal(admission.stats.rejected.quota, 1);
    c.close();
  } finally {
    await s.close();
  }
});

test("quota: the IETF RateLimit headers when enabled", T, async () => {
  const limiter = new KeyedRateLimiter({ rate: 1, burst: 3, maxKeys: 10 });
  const admission = new Admission({ concurrency: 8, rateLimitHeaders: true, quota: { limiter, key: () => "k" } });
  const s = await listen(admission.handler((_req, res) => void res.end("ok")));
  try {
    const c = new RawClient(s.port);
    c.request("GET", "/");
    const r = await c.response();
    assert.equal(r.status, 200);
    assert.equal(r.headers["ratelimit-limit"], "3");
    assert.equal(r.headers["ratelimit-remaining"], "2");
    assert.match(r.headers["ratelimit-reset"]!, /^[0-9]+$/);
    c.close();
  } finally {
    await s.close();
  }
});

test("close(): new requests get 503 (closed); admitted and queued ones finish; it resolves when all are done", T, async () => {
  const admission = new Admission({ concurrency: 1, queue: 1 });
  const s = await heldServer(admission);
  try {
    const a = new RawClient(s.port);
    const b = new RawClient(s.port);
    a.request("GET", "/a");
    await s.started.reached(1);
    b.request("GET", "/b");
    await s.entered.reached(2);
    let closed = false;
    const closing = admission.close().then(() => {
      closed = true;
    });
    const c = new RawClient(s.port);
    c.request("GET", "/c");
    const r = await c.response();
    assert.equal(r.status, 503);
    assert.equal(problemOf(r.body).reason, "closed");
    assert.equal(admission.stats.rejected.closed, 1);
    s.gates[0]!.resolve();
    await s.started.reached(2);
    assert.equal(closed, false);
    s.gates[1]!.resolve();
    await closing;
    assert.equal((await a.response()).status, 200);
    assert.equal((await b.response()).status, 200);
    assert.equal(admission.close(), admission.close(), "the same promise");
    a.close(); b.close(); c.close();
  } finally {
    await s.close();
  }
});

test("close({ signal }): at the abort, running handlers' signals fire with its reason and queued requests get 503", T, async () => {
  const admission = new Admission({ concurrency: 1, queue: 1 });
  const reasons: unknown[] = [];
  const started = new Counter();
  const entered = new Counter();
  const s = await listen(
    admission.handler(async (_req, res, signal) => {
      started.hit();
      await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve()));
      reasons.push(signal.reason);
      res.statusCode = 503;
      res.end("stopped");
    }),
  );
  s.server.on("request", () => entered.hit());
  try {
    const a = new RawClient(s.port);
    const b = new RawClient(s.port);
    a.request("GET", "/a");
    await started.reached(1);
    b.request("GET", "/b");
    await entered.reached(2);
    const ac = new AbortController();
    const closing = admission.close({ signal: ac.signal });
    const reason = new Error("shutdown deadline");
    ac.abort(reason);
    await closing;
    assert.deepEqual(reasons, [reason]);
    assert.equal((await a.response()).body, "stopped");
    const rb = await b.response();
    assert.equal(rb.status, 503);
    assert.equal(problemOf(rb.body).reason, "closed");
    assert.equal(started.count, 1);
    a.close(); b.close();
  } finally {
    await s.close();
  }
});

test("deadlineMs: the signal fires with a TimeoutError; a handler that then returns unanswered gets 503", T, async () => {
  const admission = new Admission({ concurrency: 2, deadlineMs: 30 });
  const s = await listen(
    admission.handler(async (_req, _res, signal) => {
      await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve()));
      assert.equal((signal.reason as DOMException).name, "TimeoutError");
    }),
  );
  try {
    const c = new RawClient(s.port);
    c.request("GET", "/");
    const r = await c.response();
    assert.equal(r.status, 503);
    assert.equal(problemOf(r.body).type, "urn:sluice:problem:deadline-exceeded");
    await waitUntil(() => admission.inFlight === 0);
    assert.equal(admission.stats.timedOut, 1);
    c.close();
  } finally {
    await s.close();
  }
});

test("a handler that throws is answered 500 with a problem body, reported to onError, and frees its slot", T, async () => {
  const errors: unknown[] = [];
  const admission = new Admission({ concurrency: 1, onError: (e) => errors.push(e) });
  const boom = new Error("boom");
  const s = await listen(admission.handler(async () => { throw boom; }));
  try {
    const c = new RawClient(s.port);
    c.request("GET", "/");
    const r = await c.response();
    assert.equal(r.status, 500);
    assert.equal(problemOf(r.body).status, 500);
    await waitUntil(() => admission.inFlight === 0);
    assert.deepEqual(errors, [boom]);
    assert.equal(admission.stats.failed, 1);
    c.request("GET", "/again");
    assert.equal((await c.response()).status, 500);
    c.close();
  } finally {
    await s.close();
  }
});

test("each refusal is published on diagnostics_channel sluice:admission-reject; a named admission is registered", T, async () => {
  const admission = new Admission({ concurrency: 1, name: "diag-test", retryAfter: 2, retryAfterJitter: 0 });
  assert.ok([...observed()].some((e) => e.kind === "admission" && e.boundary === admission));
  const messages: AdmissionRejectMessage[] = [];
  const onMessage = (m: unknown): void => void messages.push(m as AdmissionRejectMessage);
  subscribe(ADMISSION_REJECT_CHANNEL, onMessage);
  const s = await heldServer(admission);
  try {
    const a = new RawClient(s.port);
    a.request("GET", "/a");
    await s.started.reached(1);
    const b = new RawClient(s.port);
    b.request("GET", "/b");
    assert.equal((await b.response()).status, 503);
    assert.deepEqual(messages, [{ name: "diag-test", reason: "queueFull", status: 503, retryAfterSeconds: 2 }]);
    s.gates[0]!.resolve();
    await a.response();
    a.close(); b.close();
  } finally {
    unsubscribe(ADMISSION_REJECT_CHANNEL, onMessage);
    await s.close();
  }
});

test("Retry-After: a function of the state, jittered upward, whole seconds >= 1", T, async () => {
  const states: unknown[] = [];
  const draws = [0, 0.99];
  const admission = new Admission({
    concurrency: 1,
    retryAfter: (st) => { states.push(st); return 4; },
    retryAfterJitter: 0.5,
    random: () => draws.shift() ?? 0,
  });
  const s = await heldServer(admission);
  try {
    const a = new RawClient(s.port);
    a.request("GET", "/a");
    await s.started.reached(1);
    const b = new RawClient(s.port);
    b.request("GET", "/1");
    assert.equal((await b.response()).headers["retry-after"], "4");
    b.request("GET", "/2");
    assert.equal((await b.response()).headers["retry-after"], "6"); // 4 + floor(0.99 * 3)
    assert.deepEqual(states[0], { reason: "queueFull", concurrency: 1, inFlight: 1, queued: 0, queueSize: 0, meanServiceMs: 0 });
    s.gates[0]!.resolve();
    await a.response();
    a.close(); b.close();
  } finally {
    await s.close();
  }
});

test("AdaptiveLimit: 5xx answers shrink the limit, fast successes under load grow it back", T, async () => {
  const limit = new AdaptiveLimit({ algorithm: "aimd", initialLimit: 8, minLimit: 1, maxLimit: 16 });
  const admission = new Admission({ concurrency: limit, queue: 64 });
  let fail = true;
  const s = await listen(
    admission.handler((_req: IncomingMessage, res: ServerResponse) => {
      res.statusCode = fail ? 503 : 200;
      res.end();
    }),
  );
  try {
    const c = new RawClient(s.port);
    for (let i = 0; i < 10; i++) {
      c.request("GET", "/");
      await c.response();
    }
    await waitUntil(() => admission.inFlight === 0);
    const low = admission.concurrency;
    assert.ok(low < 8, `the limit went down (${low})`);
    fail = false;
    // Concurrent load: 8 connections, each sending requests back to back.
    const clients = Array.from({ length: 8 }, () => new RawClient(s.port));
    for (let round = 0; round < 10; round++) {
      for (const k of clients) k.request("GET", "/");
      for (const k of clients) assert.equal((await k.response()).status, 200);
    }
    await waitUntil(() => admission.inFlight === 0);
    assert.ok(admission.concurrency > low, `the limit went up again (${low} -> ${admission.concurrency})`);
    c.close();
    for (const k of clients) k.close();
  } finally {
    await s.close();
  }
});

test("a listener that declares no signal parameter gets none; disconnects are still counted and slots freed", T, async () => {
  const admission = new Admission({ concurrency: 1 });
  const args: number[] = [];
  const started = new Counter();
  const release = deferred<void>();
  const s = await listen(
    admission.handler(async function (this: unknown, _req: IncomingMessage, res: ServerResponse) {
      // eslint-disable-next-line prefer-rest-params
      args.push(arguments[2] === undefined ? 0 : 1);
      started.hit();
      await release.promise;
      res.end("late");
    }),
  );
  try {
    const c = new RawClient(s.port);
    c.request("GET", "/");
    await started.reached(1);
    c.close();
    await waitUntil(() => admission.stats.clientAborted === 1);
    assert.equal(admission.inFlight, 1);
    release.resolve();
    await waitUntil(() => admission.inFlight === 0);
    assert.deepEqual(args, [0]);
  } finally {
    await s.close();
  }
});
