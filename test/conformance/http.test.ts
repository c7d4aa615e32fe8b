/**
 * Conformance: DESIGN.md "sluice/http: settled details" (issue 14), over real sockets on
 * loopback, for the three front doors (node:http, Express 5, Fastify 5).
 */
import assert from "node:assert/strict";
import { Agent, createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, describe, test } from "node:test";
import express from "express";
import Fastify from "fastify";
import { AdaptiveLimit, KeyedRateLimiter } from "../../src/flow/index.js";
import { VirtualClock } from "../../src/testing/index.js";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { Admission, fastifyAdmission, fetchWithRetry } from "../../src/http/index.js";
import { assertRefusal, closeServer, fetchReply, headOnly, listenOn } from "./http-client.js";
import { assertBadOption, deferred, settle, until } from "./helpers.js";

const T = { timeout: 30_000 };

/** What a route does, whichever door: it gets the door's signal and a way to answer. */
type Route = (ctx: { signal: AbortSignal; url: string; end(body: string): void }) => unknown;

interface Door {
  name: string;
  start(admission: Admission, route: Route): Promise<{ port: number; close(): Promise<void> }>;
}

const doors: Door[] = [
  {
    name: "node:http handler(listener)",
    async start(admission, route) {
      const server = createServer(admission.handler((req, res, signal) => route({ signal, url: req.url ?? "/", end: (b) => res.end(b) })));
      const port = await listenOn(server);
      return { port, close: () => closeServer(server) };
    },
  },
  {
    name: "express() middleware (req.signal)",
    async start(admission, route) {
      const app = express();
      app.use(admission.express());
      // An Express 5 handler returns its promise (the router forwards a rejection to next(error)).
      app.use((req, res) => route({ signal: (req as unknown as { signal: AbortSignal }).signal, url: req.url, end: (b) => res.end(b) }));
      const server: Server = createServer(app);
      const port = await listenOn(server);
      return { port, close: () => closeServer(server) };
    },
  },
  {
    name: "fastifyAdmission plugin (request.signal)",
    async start(admission, route) {
      const app = Fastify();
      await app.register(fastifyAdmission, { admission });
      app.route({
        method: ["GET", "POST"],
        url: "/*",
        handler: async (request, reply) => {
          await route({ signal: request.signal, url: request.url, end: (b) => void reply.send(b) });
          return reply;
        },
      });
      await app.listen({ port: 0, host: "127.0.0.1" });
      return {
        port: (app.server.address() as AddressInfo).port,
        close: async () => {
          app.server.closeAllConnections();
          await app.close();
        },
      };
    },
  },
];

const toClose: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of toClose) await c();
});

/** A route that holds each request until released, answering "ok" then. */
function holdingRoute(): { route: Route; started: AbortSignal[]; release(): void; calls: () => number } {
  const started: AbortSignal[] = [];
  let gate = deferred();
  return {
    started,
    calls: () => started.length,
    release: () => {
      gate.resolve();
      gate = deferred();
    },
    route: async ({ signal, end }) => {
      started.push(signal);
      const g = gate.promise;
      await Promise.race([g, new Promise<void>((r) => signal.addEventListener("abort", () => r(), { once: true }))]);
      end(signal.aborted ? "aborted" : "ok");
    },
  };
}

for (const door of doors) {
  describe(`front door: ${door.name}`, () => {
    test("an admitted request reaches the handler with an AbortSignal", T, async () => {
      const admission = new Admission({ concurrency: 2 });
      let seen: unknown;
      const s = await door.start(admission, ({ signal, end }) => {
        seen = signal;
        end("hello");
      });
      try {
        const r = await fetchReply(s.port, { path: "/x" });
        assert.equal(r.status, 200);
        assert.equal(r.body, "hello");
        assert.ok(seen instanceof AbortSignal, "the handler got an AbortSignal");
        assert.equal(admission.stats.admitted, 1);
      } finally {
        await s.close();
      }
    });

    test("refused (queue full, queue = 0 by default): 503, Retry-After >= 1 whole seconds, problem+json; handler never called", T, async () => {
      const admission = new Admission({ concurrency: 1 });
      const h = holdingRoute();
      const s = await door.start(admission, h.route);
      try {
        const first = fetchReply(s.port, { path: "/hold" });
        await until(() => h.calls() === 1, "the first request admitted");
        const r = await fetchReply(s.port, { path: "/refused" });
        assertRefusal(r, 503);
        assert.equal(h.calls(), 1, "the handler was not called for the refused request");
        assert.equal(admission.stats.rejected.queueFull, 1);
        h.release();
        assert.equal((await first).status, 200);
      } finally {
        await s.close();
      }
    });

    test("refused before the body is read: the 503 comes although the declared body is never sent", T, async () => {
      const admission = new Admission({ concurrency: 1 });
      const h = holdingRoute();
      const s = await door.start(admission, h.route);
      try {
        const first = fetchReply(s.port, { path: "/hold" });
        await until(() => h.calls() === 1, "the first request admitted");
        const r = await headOnly(s.port, 10_000_000, "/upload");
        assert.equal(r.status, 503);
        assert.match(r.headers["content-type"] ?? "", /^application\/problem\+json/);
        assert.match(r.headers["retry-after"] ?? "", /^[1-9][0-9]*$/);
        assert.equal(h.calls(), 1);
        h.release();
        await first;
      } finally {
        await s.close();
      }
    });

    test("a keep-alive connection is still usable after a refusal", T, async () => {
      const admission = new Admission({ concurrency: 1 });
      const h = holdingRoute();
      const s = await door.start(admission, h.route);
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const first = fetchReply(s.port, { path: "/hold" });
        await until(() => h.calls() === 1, "the first request admitted");
        const r = await fetchReply(s.port, { path: "/refused", agent, method: "POST", body: "small body", headers: { "content-type": "text/plain" } });
        assertRefusal(r, 503);
        h.release();
        await first;
        await until(() => admission.inFlight === 0, "the slot given back");
        const again = fetchReply(s.port, { path: "/again", agent });
        await until(() => h.calls() === 2, "the second request admitted");
        h.release();
        const r2 = await again;
        assert.equal(r2.status, 200);
        assert.equal(r2.reusedSocket, true, "the same connection was reused");
      } finally {
        agent.destroy();
        await s.close();
      }
    });

    test("the signal fires when the client disconnects before the response ends", T, async () => {
      const admission = new Admission({ concurrency: 2 });
      const h = holdingRoute();
      const s = await door.start(admission, h.route);
      try {
        const ac = new AbortController();
        const r = fetchReply(s.port, { path: "/leave", signal: ac.signal });
        await until(() => h.calls() === 1, "admitted");
        ac.abort();
        await assert.rejects(r);
        await until(() => h.started[0]!.aborted, "the handler's signal fired");
        await until(() => admission.inFlight === 0, "the slot given back");
        assert.equal(admission.stats.clientAborted, 1);
      } finally {
        await s.close();
      }
    });

    test("the signal fires at deadlineMs", T, async () => {
      const admission = new Admission({ concurrency: 2, deadlineMs: 50 });
      const h = holdingRoute();
      const s = await door.start(admission, h.route);
      try {
        const r = await fetchReply(s.port, { path: "/slow" });
        assert.ok(h.started[0]!.aborted, "the signal fired at the deadline");
        assert.equal(r.body.length > 0 || r.status >= 500, true);
        await until(() => admission.inFlight === 0, "the slot given back");
        assert.equal(admission.stats.timedOut, 1);
      } finally {
        await s.close();
      }
    });

    test("the signal never fires after a normal response (not at the deadline, not when the connection closes)", T, async () => {
      const clock = new VirtualClock();
      const admission = new Admission({ concurrency: 2, deadlineMs: 1000, clock });
      let seen: AbortSignal | undefined;
      const s = await door.start(admission, ({ signal, end }) => {
        seen = signal;
        end("fast");
      });
      try {
        const r = await fetchReply(s.port, { path: "/fast" }); // agent: false, the connection closes after
        assert.equal(r.status, 200);
        await until(() => admission.inFlight === 0, "the slot given back");
        await settle(20);
        clock.advance(5000);
        await settle(20);
        assert.ok(seen !== undefined);
        assert.equal(seen.aborted, false, "the signal did not fire after a normal response");
        assert.equal(admission.stats.timedOut, 0);
        assert.equal(admission.stats.clientAborted, 0);
      } finally {
        await s.close();
      }
    });

    test("never more than the concurrency run at once", T, async () => {
      const admission = new Admission({ concurrency: 2, queue: 20 });
      let running = 0;
      let max = 0;
      const s = await door.start(admission, async ({ end }) => {
        max = Math.max(max, ++running);
        await new Promise<void>((r) => setTimeout(r, 3));
        running--;
        end("ok");
      });
      try {
        const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => fetchReply(s.port, { path: `/${i}` })));
        assert.ok(replies.every((r) => r.status === 200), replies.map((r) => r.status).join(","));
        assert.equal(max, 2);
      } finally {
        await s.close();
      }
    });

    test("a queued client that leaves is never handled and is counted in clientAborted", T, async () => {
      const admission = new Admission({ concurrency: 1, queue: 2 });
      const h = holdingRoute();
      const s = await door.start(admission, h.route);
      try {
        const a = fetchReply(s.port, { path: "/a" });
        await until(() => h.calls() === 1, "a admitted");
        const ac = new AbortController();
        const b = fetchReply(s.port, { path: "/b", signal: ac.signal });
        await until(() => admission.stats.queued === 1, "b queued");
        ac.abort();
        await assert.rejects(b);
        await until(() => admission.stats.queued === 0, "b left the queue");
        h.release();
        await a;
        await settle(10);
        assert.equal(h.calls(), 1, "b was never handled");
        assert.equal(admission.stats.clientAborted, 1);
        assert.equal(admission.stats.admitted, 1);
      } finally {
        await s.close();
      }
    });

    test("a slot is held until the handler settles, even after its response ended (never more than the concurrency run at once)", T, async () => {
      const admission = new Admission({ concurrency: 1, queue: 1 });
      const gate = deferred();
      let calls = 0;
      let running = 0;
      let max = 0;
      const s = await door.start(admission, async ({ end }) => {
        calls++;
        max = Math.max(max, ++running);
        end("early");
        if (calls === 1) await gate.promise;
        running--;
      });
      try {
        assert.equal((await fetchReply(s.port, { path: "/a" })).body, "early");
        const b = fetchReply(s.port, { path: "/b" });
        await settle(30);
        assert.equal(calls, 1, "b waits: a's handler is still running");
        gate.resolve();
        await b;
        assert.equal(max, 1, `handlers running at once: ${max}`);
      } finally {
        gate.resolve();
        await s.close();
      }
    });

    test("close({ signal }): new requests 503 at once; admitted and queued go on; at the abort the handlers' signals fire", T, async () => {
      const admission = new Admission({ concurrency: 1, queue: 2 });
      const h = holdingRoute();
      const s = await door.start(admission, h.route);
      try {
        const a = fetchReply(s.port, { path: "/a" });
        await until(() => h.calls() === 1, "a admitted");
        const b = fetchReply(s.port, { path: "/b" });
        await until(() => admission.stats.queued === 1, "b queued");
        const ac = new AbortController();
        const closing = admission.close({ signal: ac.signal });
        assert.ok(closing instanceof Promise);
        const refused = await fetchReply(s.port, { path: "/c" });
        assertRefusal(refused, 503);
        assert.equal(admission.stats.rejected.closed, 1);
        h.release(); // a finishes normally; b is admitted
        assert.equal((await a).body, "ok");
        await until(() => h.calls() === 2, "the queued request went on after close()");
        const reason = new Error("deadline of close()");
        ac.abort(reason);
        await until(() => h.started[1]!.aborted, "the remaining handler's signal fired");
        assert.equal((await b).body, "aborted");
        await closing;
      } finally {
        await s.close();
      }
    });
  });
}

describe("Admission: options", () => {
  test("bad options throw RangeError/TypeError naming the option", T, () => {
    for (const c of [0, -1, 1.5, Infinity, NaN]) assertBadOption(() => new Admission({ concurrency: c }), RangeError, "concurrency");
    assertBadOption(() => new Admission({ concurrency: "4" as never }), TypeError, "concurrency");
    assert.throws(() => new Admission({} as never), (e) => (e instanceof TypeError || e instanceof RangeError) && /concurrency/.test((e as Error).message));
    for (const q of [-1, 1.5, Infinity, NaN]) assertBadOption(() => new Admission({ concurrency: 1, queue: q }), RangeError, "queue");
    assert.throws(() => new Admission({ concurrency: 1, order: "random" as never }), (e) => (e instanceof TypeError || e instanceof RangeError) && /order/.test((e as Error).message));
    for (const v of [-1, NaN]) assertBadOption(() => new Admission({ concurrency: 1, queueTimeoutMs: v }), RangeError, "queueTimeoutMs");
    for (const v of [-1, NaN]) assertBadOption(() => new Admission({ concurrency: 1, deadlineMs: v }), RangeError, "deadlineMs");
    for (const v of [0, -1, NaN]) assertBadOption(() => new Admission({ concurrency: 1, retryAfter: v }), RangeError, "retryAfter");
    assert.throws(() => new Admission({ concurrency: 1, quota: { limiter: {} as never, key: () => "" } }), (e) => e instanceof TypeError && /quota/.test((e as Error).message));
    const limiter = new KeyedRateLimiter({ rate: 1, burst: 1, maxKeys: 10 });
    assert.throws(() => new Admission({ concurrency: 1, quota: { limiter, key: "ip" as never } }), (e) => e instanceof TypeError && /quota|key/.test((e as Error).message));
    assert.throws(() => new Admission({ concurrency: 1, name: 42 as never }), (e) => e instanceof TypeError && /name/.test((e as Error).message));
  });

  test("handler(listener) refuses a non-function listener", T, () => {
    const a = new Admission({ concurrency: 1 });
    assert.throws(() => a.handler(42 as never), TypeError);
  });

  test("stats: admitted, queued, inFlight, rejected { queueFull, queueTimeout, quota, closed }, timedOut, clientAborted", T, () => {
    const s = new Admission({ concurrency: 3 }).stats;
    for (const k of ["admitted", "queued", "inFlight", "timedOut", "clientAborted"]) assert.equal((s as unknown as Record<string, unknown>)[k], 0, k);
    assert.deepEqual(Object.keys(s.rejected).sort(), ["closed", "queueFull", "queueTimeout", "quota"]);
    for (const v of Object.values(s.rejected)) assert.equal(v, 0);
  });
});

describe("Admission: the engine (node:http door)", () => {
  async function serve(admission: Admission, route: Route): Promise<number> {
    const server = createServer(admission.handler((req, res, signal) => route({ signal, url: req.url ?? "/", end: (b) => res.end(b) })));
    const port = await listenOn(server);
    toClose.push(() => closeServer(server));
    return port;
  }

  test("never more than the concurrency run at once (and it is reached)", T, async () => {
    const admission = new Admission({ concurrency: 3, queue: 20 });
    let running = 0;
    let max = 0;
    const port = await serve(admission, async ({ end }) => {
      max = Math.max(max, ++running);
      await new Promise<void>((r) => setTimeout(r, 5));
      running--;
      end("ok");
    });
    const replies = await Promise.all(Array.from({ length: 15 }, (_, i) => fetchReply(port, { path: `/${i}` })));
    assert.ok(replies.every((r) => r.status === 200));
    assert.equal(max, 3);
    assert.equal(admission.stats.admitted, 15);
  });

  test("order \"fifo\" (the default) admits the oldest queued first; \"lifo\" the freshest", T, async () => {
    for (const order of [undefined, "lifo"] as const) {
      const admission = new Admission({ concurrency: 1, queue: 3, ...(order === undefined ? {} : { order }) });
      const h = holdingRoute();
      const urls: string[] = [];
      const port = await serve(admission, (ctx) => {
        urls.push(ctx.url);
        return h.route(ctx);
      });
      const replies = [fetchReply(port, { path: "/hold" })];
      await until(() => h.calls() === 1, "first admitted");
      for (const [i, p] of ["/q1", "/q2", "/q3"].entries()) {
        replies.push(fetchReply(port, { path: p }));
        await until(() => admission.stats.queued === i + 1, `${p} queued`);
      }
      for (let i = 0; i < 4; i++) {
        await until(() => h.calls() === i + 1, `request ${i} started`);
        h.release();
      }
      await Promise.all(replies);
      assert.deepEqual(urls, order === "lifo" ? ["/hold", "/q3", "/q2", "/q1"] : ["/hold", "/q1", "/q2", "/q3"], String(order));
    }
  });

  test("a request queued past queueTimeoutMs gets 503 (rejected.queueTimeout)", T, async () => {
    const admission = new Admission({ concurrency: 1, queue: 1, queueTimeoutMs: 30 });
    const h = holdingRoute();
    const port = await serve(admission, h.route);
    const first = fetchReply(port, { path: "/hold" });
    await until(() => h.calls() === 1, "first admitted");
    const r = await fetchReply(port, { path: "/waits" });
    assertRefusal(r, 503);
    assert.equal(admission.stats.rejected.queueTimeout, 1);
    assert.equal(h.calls(), 1, "the timed-out request never reached the handler");
    h.release();
    await first;
  });

  test("over the quota: 429 with Retry-After >= 1 whole seconds, problem+json (rejected.quota)", T, async () => {
    const limiter = new KeyedRateLimiter<string>({ rate: 0.5, burst: 1, maxKeys: 100 });
    const admission = new Admission({ concurrency: 4, quota: { limiter, key: (req) => String(req.headers["x-client"] ?? "anon") } });
    let calls = 0;
    const port = await serve(admission, ({ end }) => {
      calls++;
      end("ok");
    });
    assert.equal((await fetchReply(port, { headers: { "x-client": "alice" } })).status, 200);
    const r = await fetchReply(port, { headers: { "x-client": "alice" } });
    assertRefusal(r, 429);
    assert.equal(r.headers["retry-after"], "2", "Retry-After from the limiter's own delay (one token in 2 s at 0.5/s)");
    assert.equal((await fetchReply(port, { headers: { "x-client": "bob" } })).status, 200, "another key has its own quota");
    assert.equal(calls, 2);
    assert.equal(admission.stats.rejected.quota, 1);
  });

  test("Retry-After is whole seconds >= 1 even when retryAfter computes less", T, async () => {
    const admission = new Admission({ concurrency: 1, retryAfter: () => 0.01 });
    const h = holdingRoute();
    const port = await serve(admission, h.route);
    const first = fetchReply(port);
    await until(() => h.calls() === 1, "first admitted");
    assertRefusal(await fetchReply(port), 503);
    h.release();
    await first;
  });

  test("503 Retry-After is jittered so refused clients do not come back in a herd", T, async () => {
    const admission = new Admission({ concurrency: 1, retryAfter: 10 });
    const h = holdingRoute();
    const port = await serve(admission, h.route);
    const first = fetchReply(port);
    await until(() => h.calls() === 1, "first admitted");
    const values = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const r = await fetchReply(port);
      assertRefusal(r, 503);
      assert.ok(Number(r.headers["retry-after"]) >= 10, "at least the retryAfter given");
      values.add(String(r.headers["retry-after"]));
    }
    assert.ok(values.size > 1, `20 refusals, Retry-After values ${[...values].join(",")}`);
    h.release();
    await first;
  });

  test("concurrency may be a ConcurrencyLimit (an AdaptiveLimit): never more than its limit run at once", T, async () => {
    const limit = new AdaptiveLimit({ algorithm: "aimd", initialLimit: 2, minLimit: 1, maxLimit: 2 });
    const admission = new Admission({ concurrency: limit, queue: 20 });
    let running = 0;
    let max = 0;
    const port = await serve(admission, async ({ end }) => {
      max = Math.max(max, ++running);
      await new Promise<void>((r) => setTimeout(r, 3));
      running--;
      end("ok");
    });
    const replies = await Promise.all(Array.from({ length: 10 }, () => fetchReply(port)));
    assert.ok(replies.every((r) => r.status === 200));
    assert.ok(max <= 2 && max >= 1, `max in flight ${max}`);
  });

  test("a handler that ignores its signal past deadlineMs still holds its slot until it settles (strict)", T, async () => {
    const admission = new Admission({ concurrency: 1, queue: 1, deadlineMs: 30 });
    const gate = deferred();
    let calls = 0;
    let firstSignal: AbortSignal | undefined;
    const port = await serve(admission, async ({ signal, end }) => {
      calls++;
      if (calls === 1) {
        firstSignal = signal;
        await gate.promise; // ignores its signal
      }
      end("ok");
    });
    const a = fetchReply(port, { path: "/a" });
    await until(() => calls === 1, "a admitted");
    const b = fetchReply(port, { path: "/b" });
    await until(() => firstSignal?.aborted === true, "a's deadline fired");
    await settle(20);
    assert.equal(calls, 1, "b waits: a has not settled");
    assert.equal(admission.stats.inFlight, 1);
    gate.resolve();
    await a;
    assert.equal((await b).status, 200);
    assert.equal(admission.stats.timedOut, 1);
  });

  test("a slot is held until the handler's promise settles, even after the response ended", T, async () => {
    const admission = new Admission({ concurrency: 1, queue: 1 });
    const gate = deferred();
    let calls = 0;
    const port = await serve(admission, async ({ end }) => {
      calls++;
      end("early");
      if (calls === 1) await gate.promise;
    });
    assert.equal((await fetchReply(port, { path: "/a" })).body, "early");
    const b = fetchReply(port, { path: "/b" });
    await until(() => admission.stats.queued === 1, "b queued behind a settled response");
    await settle(10);
    assert.equal(calls, 1, "b waits: a's handler has not settled");
    assert.equal(admission.stats.inFlight, 1);
    gate.resolve();
    assert.equal((await b).body, "early");
    assert.equal(calls, 2);
  });

  test("a slot is held until the response has ended, even after the handler's promise settled", T, async () => {
    const admission = new Admission({ concurrency: 1, queue: 1 });
    const later = deferred();
    let calls = 0;
    const port = await serve(admission, ({ end }) => {
      calls++;
      if (calls === 1) void later.promise.then(() => end("late"));
      else end("second");
    });
    const a = fetchReply(port, { path: "/a" });
    await until(() => calls === 1, "a admitted");
    const b = fetchReply(port, { path: "/b" });
    await until(() => admission.stats.queued === 1, "b queued");
    await settle(10);
    assert.equal(calls, 1, "b waits: a's response has not ended");
    later.resolve();
    assert.equal((await a).body, "late");
    assert.equal((await b).body, "second");
  });

  test("stats count each outcome once", T, async () => {
    const admission = new Admission({ concurrency: 1, queue: 1 });
    const h = holdingRoute();
    const port = await serve(admission, h.route);
    const a = fetchReply(port, { path: "/a" });
    await until(() => h.calls() === 1, "a admitted");
    const b = fetchReply(port, { path: "/b" });
    await until(() => admission.stats.queued === 1, "b queued");
    assertRefusal(await fetchReply(port, { path: "/c" }), 503);
    let s = admission.stats;
    assert.equal(s.admitted, 1);
    assert.equal(s.queued, 1);
    assert.equal(s.inFlight, 1);
    assert.equal(s.rejected.queueFull, 1);
    h.release();
    await a;
    await until(() => h.calls() === 2, "b admitted");
    h.release();
    await b;
    await until(() => admission.inFlight === 0, "all done");
    s = admission.stats;
    assert.equal(s.admitted, 2);
    assert.equal(s.queued, 0);
    assert.equal(s.inFlight, 0);
  });

  test("close() with an already-aborted signal fires the running handlers' signals at once", T, async () => {
    const admission = new Admission({ concurrency: 2 });
    const h = holdingRoute();
    const port = await serve(admission, h.route);
    const a = fetchReply(port);
    await until(() => h.calls() === 1, "admitted");
    const reason = new Error("now");
    const closing = admission.close({ signal: AbortSignal.abort(reason) });
    await until(() => h.started[0]!.aborted, "the handler's signal fired");
    assert.equal(h.started[0]!.reason, reason, "with the close signal's reason");
    await a;
    await closing;
    assertRefusal(await fetchReply(port), 503);
  });

  test("close() with a bad signal rejects with a TypeError naming it", T, async () => {
    const admission = new Admission({ concurrency: 1 });
    await assert.rejects(admission.close({ signal: "soon" as never }), (e) => e instanceof TypeError && /signal/.test((e as Error).message));
  });
});

describe("issue 14: what the issue promises beyond DESIGN's lines", () => {
  async function serve(admission: Admission, route: Route): Promise<number> {
    const server = createServer(admission.handler((req, res, signal) => route({ signal, url: req.url ?? "/", end: (b) => res.end(b) })));
    const port = await listenOn(server);
    toClose.push(() => closeServer(server));
    return port;
  }

  test("a refusal is published on node:diagnostics_channel (sluice:admission-reject)", T, async () => {
    const admission = new Admission({ concurrency: 1, name: "conf-dc" });
    const h = holdingRoute();
    const port = await serve(admission, h.route);
    const seen: unknown[] = [];
    const onMessage = (m: unknown): void => void seen.push(m);
    subscribe("sluice:admission-reject", onMessage);
    try {
      const first = fetchReply(port);
      await until(() => h.calls() === 1, "admitted");
      assertRefusal(await fetchReply(port), 503);
      assert.equal(seen.length, 1);
      assert.equal((seen[0] as { reason?: string }).reason, "queueFull");
      h.release();
      await first;
    } finally {
      unsubscribe("sluice:admission-reject", onMessage);
    }
  });

  test("the IETF RateLimit headers are off by default", T, async () => {
    const limiter = new KeyedRateLimiter<string>({ rate: 1, burst: 1, maxKeys: 10 });
    const admission = new Admission({ concurrency: 2, quota: { limiter, key: () => "k" } });
    const port = await serve(admission, ({ end }) => end("ok"));
    const ok = await fetchReply(port);
    const refused = await fetchReply(port);
    assertRefusal(refused, 429);
    for (const r of [ok, refused]) for (const h of Object.keys(r.headers)) assert.doesNotMatch(h, /^ratelimit/i, `header ${h}`);
  });

  test("a 429 is answered before the body is read, too", T, async () => {
    const limiter = new KeyedRateLimiter<string>({ rate: 0.1, burst: 1, maxKeys: 10 });
    const admission = new Admission({ concurrency: 2, quota: { limiter, key: () => "k" } });
    const port = await serve(admission, ({ end }) => end("ok"));
    assert.equal((await fetchReply(port)).status, 200);
    const r = await headOnly(port, 5_000_000);
    assert.equal(r.status, 429);
    assert.match(r.headers["retry-after"] ?? "", /^[1-9][0-9]*$/);
  });

  test("fetchWithRetry honours a 503's Retry-After (waits at least that long) and gets through", T, async () => {
    const admission = new Admission({ concurrency: 1, retryAfter: 1, retryAfterJitter: 0 });
    const h = holdingRoute();
    const port = await serve(admission, h.route);
    const first = fetchReply(port, { path: "/hold" });
    await until(() => h.calls() === 1, "admitted");
    const clock = new VirtualClock();
    const waits: number[] = [];
    const res = fetchWithRetry(`http://127.0.0.1:${port}/retry`, {}, {
      attempts: 3, clock, retryAfterJitter: 0,
      onRetry: (e) => void waits.push(e.delayMs),
    });
    await until(() => waits.length === 1, "the first attempt refused");
    assert.ok(waits[0]! >= 1000, `waited ${waits[0]} ms for Retry-After: 1`);
    h.release(); // the slot frees before the retry
    await first;
    await until(() => admission.inFlight === 0, "slot free");
    const sent = h.calls();
    await clock.advanceAsync(waits[0]!);
    await until(() => h.calls() === sent + 1, "retried after the wait");
    h.release();
    const r = await res;
    assert.equal(r.status, 200);
  });
});
