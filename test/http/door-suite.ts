/**
 * The behaviour every framework door must show, run over real sockets for Express and Fastify
 * (the node:http door has its own, longer file). `makeServer` builds an app with the admission
 * in front of three routes: `/hold/:id` (waits until the test releases it), `/ok`, and
 * `/signal` (waits for its signal, then answers with the reason's name).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Server } from "node:http";
import { Admission } from "../../src/http/index.js";
import { KeyedRateLimiter } from "../../src/flow/index.js";
import { Counter, RawClient, closeServer, deferred, problemOf, waitUntil } from "./helpers.js";

export interface DoorApp {
  server: Server;
  port: number;
  close(): Promise<void>;
}

/** What a door's route handlers share with the test. */
export class Routes {
  readonly started = new Counter();
  readonly entered = new Counter();
  readonly order: string[] = [];
  readonly gates = new Map<string, ReturnType<typeof deferred<void>>>();
  readonly signals: AbortSignal[] = [];
  readonly closedChecks: boolean[] = [];
  readonly checked = new Counter();

  /** Called by `/hold/:id` with the request's signal; resolves when the test releases `id`. */
  hold(id: string, signal: AbortSignal): Promise<void> {
    this.order.push(id);
    this.signals.push(signal);
    const gate = this.gate(id);
    this.started.hit();
    return gate.promise;
  }

  gate(id: string): ReturnType<typeof deferred<void>> {
    let g = this.gates.get(id);
    if (g === undefined) {
      g = deferred<void>();
      this.gates.set(id, g);
    }
    return g;
  }

  release(id: string): void {
    this.gate(id).resolve();
  }
}

export type MakeServer = (admission: Admission, routes: Routes) => Promise<DoorApp>;

const T = { timeout: 20_000 };

export function doorSuite(door: string, makeServer: MakeServer): void {
  async function setup(admission: Admission) {
    const routes = new Routes();
    const app = await makeServer(admission, routes);
    app.server.prependListener("request", () => routes.entered.hit());
    const clients: RawClient[] = [];
    const client = (): RawClient => {
      const c = new RawClient(app.port);
      clients.push(c);
      return c;
    };
    const done = async (): Promise<void> => {
      for (const c of clients) c.close();
      for (const g of routes.gates.values()) g.resolve();
      await app.close();
      await closeServer(app.server).catch(() => {});
    };
    return { routes, app, client, done };
  }

  test(`${door}: past concurrency + queue, 503 with Retry-After and a problem body; the route never runs`, T, async () => {
    const admission = new Admission({ concurrency: 1, name: `${door}-503` });
    const { routes, client, done } = await setup(admission);
    try {
      const a = client();
      a.request("GET", "/hold/a");
      await routes.started.reached(1);
      const b = client();
      b.request("GET", "/hold/b");
      const r = await b.response();
      assert.equal(r.status, 503);
      assert.match(r.headers["retry-after"]!, /^[1-9]\d*$/);
      assert.match(r.headers["content-type"]!, /^application\/problem\+json/);
      const p = problemOf(r.body);
      assert.equal(p.status, 503);
      assert.equal(p.type, "urn:sluice:problem:queue-full");
      assert.ok(p.title.length > 0 && p.detail.length > 0);
      assert.deepEqual(routes.order, ["a"]);
      routes.release("a");
      assert.equal((await a.response()).status, 200);
      assert.equal(admission.stats.rejected.queueFull, 1);
    } finally {
      await done();
    }
  });

  test(`${door}: a refusal comes before the body is read; keep-alive stays usable`, T, async () => {
    const admission = new Admission({ concurrency: 1, maxDrainBytes: 1024 });
    const { routes, client, done } = await setup(admission);
    try {
      const a = client();
      a.request("GET", "/hold/a");
      await routes.started.reached(1);
      const big = client();
      big.request("POST", "/ok", { "content-type": "application/json", "content-length": 5_000_000 });
      const r1 = await big.response();
      assert.equal(r1.status, 503);
      assert.equal(r1.headers["connection"], "close");
      await big.closedPromise;

      const small = client();
      small.request("POST", "/ok", { "content-type": "application/json", "content-length": 2 });
      const r2 = await small.response();
      assert.equal(r2.status, 503);
      assert.notEqual(r2.headers["connection"], "close");
      small.send("{}");
      routes.release("a");
      await a.response();
      await waitUntil(() => admission.inFlight === 0);
      small.request("GET", "/ok");
      const r3 = await small.response();
      assert.equal(r3.status, 200);
      assert.equal(r3.body, "ok");
      assert.equal(small.closed, false);
    } finally {
      await done();
    }
  });

  test(`${door}: a client that disconnects fires the request's signal; a normal response never does`, T, async () => {
    const admission = new Admission({ concurrency: 4 });
    const { routes, client, done } = await setup(admission);
    try {
      const a = client();
      a.request("GET", "/hold/a");
      await routes.started.reached(1);
      const signal = routes.signals[0]!;
      const aborted = new Promise<unknown>((resolve) => signal.addEventListener("abort", () => resolve(signal.reason)));
      a.close();
      assert.equal(((await aborted) as DOMException).name, "AbortError");
      routes.release("a"); // the handler settles (a strict slot is held until it does)
      await waitUntil(() => admission.inFlight === 0);
      assert.equal(admission.stats.clientAborted, 1);

      const b = client();
      b.request("GET", "/hold/b");
      await routes.started.reached(2);
      routes.release("b");
      assert.equal((await b.response()).status, 200);
      await waitUntil(() => admission.inFlight === 0);
      b.close();
      await b.closedPromise;
      assert.equal(routes.signals[1]!.aborted, false);
      assert.equal(admission.stats.clientAborted, 1);
    } finally {
      await done();
    }
  });

  for (const order of ["fifo", "lifo"] as const) {
    test(`${door}: ${order} order of the queue`, T, async () => {
      const admission = new Admission({ concurrency: 1, queue: 3, order });
      const { routes, client, done } = await setup(admission);
      try {
        const ids = ["0", "a", "b", "c"];
        const cs = ids.map(() => client());
        cs[0]!.request("GET", "/hold/0");
        await routes.started.reached(1);
        for (let i = 1; i < ids.length; i++) {
          cs[i]!.request("GET", `/hold/${ids[i]}`);
          await routes.entered.reached(i + 1);
        }
        await waitUntil(() => admission.queued === 3);
        for (let k = 0; k < ids.length; k++) {
          await routes.started.reached(k + 1);
          routes.release(routes.order[k]!);
        }
        for (const c of cs) assert.equal((await c.response()).status, 200);
        assert.deepEqual(routes.order, order === "fifo" ? ["0", "a", "b", "c"] : ["0", "c", "b", "a"]);
      } finally {
        await done();
      }
    });
  }

  test(`${door}: queue timeout answers 503 and the route never runs`, T, async () => {
    const admission = new Admission({ concurrency: 1, queue: 1, queueTimeoutMs: 25 });
    const { routes, client, done } = await setup(admission);
    try {
      const a = client();
      a.request("GET", "/hold/a");
      await routes.started.reached(1);
      const b = client();
      b.request("GET", "/hold/b");
      const r = await b.response();
      assert.equal(r.status, 503);
      assert.equal(problemOf(r.body).reason, "queueTimeout");
      routes.release("a");
      await a.response();
      assert.deepEqual(routes.order, ["a"]);
    } finally {
      await done();
    }
  });

  test(`${door}: quota over a KeyedRateLimiter answers 429 with the limiter's Retry-After`, T, async () => {
    const limiter = new KeyedRateLimiter({ rate: 0.25, burst: 1, maxKeys: 10 });
    const admission = new Admission({ concurrency: 4, quota: { limiter, key: (req) => String(req.headers["x-key"]) } });
    const { client, done } = await setup(admission);
    try {
      const c = client();
      c.request("GET", "/ok", { "x-key": "k1" });
      assert.equal((await c.response()).status, 200);
      c.request("GET", "/ok", { "x-key": "k1" });
      const r = await c.response();
      assert.equal(r.status, 429);
      assert.equal(r.headers["retry-after"], "4");
      assert.equal(problemOf(r.body).status, 429);
      c.request("GET", "/ok", { "x-key": "k2" });
      assert.equal((await c.response()).status, 200);
    } finally {
      await done();
    }
  });

  test(`${door}: deadlineMs fires the request's signal with a TimeoutError`, T, async () => {
    const admission = new Admission({ concurrency: 2, deadlineMs: 20 });
    const { client, done } = await setup(admission);
    try {
      const c = client();
      c.request("GET", "/signal");
      const r = await c.response();
      assert.equal(r.body, "TimeoutError");
      await waitUntil(() => admission.inFlight === 0);
      assert.equal(admission.stats.timedOut, 1);
    } finally {
      await done();
    }
  });

  test(`${door}: close() refuses new requests with 503, lets admitted ones finish; its signal aborts the rest`, T, async () => {
    const admission = new Admission({ concurrency: 2 });
    const { routes, client, done } = await setup(admission);
    try {
      const a = client();
      const b = client();
      a.request("GET", "/hold/a");
      b.request("GET", "/signal");
      await routes.started.reached(1);
      await waitUntil(() => admission.inFlight === 2);
      const ac = new AbortController();
      const closing = admission.close({ signal: ac.signal });
      const c = client();
      c.request("GET", "/ok");
      const rc = await c.response();
      assert.equal(rc.status, 503);
      assert.equal(problemOf(rc.body).reason, "closed");
      assert.equal(rc.headers["connection"], "close");
      routes.release("a");
      assert.equal((await a.response()).status, 200);
      ac.abort(new Error("deadline"));
      assert.equal((await b.response()).body, "Error");
      await closing;
      assert.equal(admission.stats.inFlight, 0);
    } finally {
      await done();
    }
  });
}

/** A route's signal read only after the client left is already aborted (it is created on first read). */
export function lateSignalTest(door: string, makeServer: MakeServer): void {
  test(`${door}: a signal first read after the client left is already aborted`, T, async () => {
    const admission = new Admission({ concurrency: 2 });
    const routes = new Routes();
    const app = await makeServer(admission, routes);
    try {
      const c = new RawClient(app.port);
      c.request("GET", "/late");
      await routes.started.reached(1);
      c.close();
      await waitUntil(() => admission.stats.clientAborted === 1);
      routes.release("late");
      await routes.checked.reached(1);
      assert.deepEqual(routes.closedChecks, [true]);
    } finally {
      for (const g of routes.gates.values()) g.resolve();
      await app.close();
      await closeServer(app.server).catch(() => {});
    }
  });
}
