import { test } from "node:test";
import assert from "node:assert/strict";
import express from "express";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { Admission } from "../../src/http/index.js";
import { doorSuite, lateSignalTest, type MakeServer } from "./door-suite.js";
import { closeServer, deferred, RawClient, waitUntil } from "./helpers.js";

const makeServer: MakeServer = async (admission, routes) => {
  const app = express();
  app.use(admission.express());
  app.get("/hold/:id", async (req, res) => {
    await routes.hold(req.params.id, (req as unknown as { signal: AbortSignal }).signal);
    if (!res.writableEnded && !res.destroyed) res.send("done");
  });
  app.get("/late", async (req, res) => {
    routes.started.hit();
    await routes.gate("late").promise;
    routes.closedChecks.push((req as unknown as { signal: AbortSignal }).signal.aborted);
    routes.checked.hit();
    if (!res.writableEnded && !res.destroyed) res.send("late");
  });
  app.all("/ok", (_req, res) => {
    res.send("ok");
  });
  app.get("/signal", async (req, res) => {
    const signal = (req as unknown as { signal: AbortSignal }).signal;
    await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
    res.send((signal.reason as Error).name);
  });
  const server = app.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { server, port: (server.address() as AddressInfo).port, close: async () => {} };
};
doorSuite("express", makeServer);
lateSignalTest("express", makeServer);

test("express: the slot is held until the handlers settle, even after they answered; routers, routes added later, error handlers and 404s", { timeout: 20_000 }, async () => {
  const admission = new Admission({ concurrency: 1, queue: 4 });
  const app = express();
  app.use(admission.express());
  const gate = deferred();
  let running = 0;
  let max = 0;
  const enter = (): void => {
    max = Math.max(max, ++running);
  };
  app.get("/early", async (_req, res) => {
    enter();
    res.send("early"); // answered; the handler goes on working
    await gate.promise;
    running--;
  });
  // A router mounted with app.use, and a route of it in two steps (app.route style).
  const api = express.Router();
  api.route("/item").get((_req, res) => {
    enter();
    running--;
    res.send("item");
  });
  app.use("/api", api);
  // A failing async handler: Express's router forwards the rejection to the four-parameter
  // error handler, which the wrapping must keep recognisable as one (by its arity).
  app.get("/fail", async () => {
    throw new Error("boom");
  });
  app.use((error: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(500).send(`handled ${error.message}`);
  });
  const server = app.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  const clients: RawClient[] = [];
  const client = (): RawClient => {
    const c = new RawClient(port);
    clients.push(c);
    return c;
  };
  try {
    const a = client();
    a.request("GET", "/early");
    assert.equal((await a.response()).body, "early");
    const b = client();
    b.request("GET", "/api/item");
    await waitUntil(() => admission.stats.queued === 1);
    assert.equal(admission.inFlight, 1, "the first handler still holds the slot after its answer");
    gate.resolve();
    assert.equal((await b.response()).body, "item");
    assert.equal(max, 1, `handlers running at once: ${max}`);
    await waitUntil(() => admission.inFlight === 0);

    // A route registered after requests were served is tracked too.
    const late = deferred();
    app.get("/added", async (_req, res) => {
      enter();
      res.send("added");
      await late.promise;
      running--;
    });
    const c = client();
    c.request("GET", "/added");
    assert.equal((await c.response()).body, "added");
    const d = client();
    d.request("GET", "/api/item");
    await waitUntil(() => admission.stats.queued === 1);
    assert.equal(admission.inFlight, 1, "the route added later holds the slot after its answer");
    late.resolve();
    assert.equal((await d.response()).body, "item");
    assert.equal(max, 1, `handlers running at once: ${max}`);

    const e = client();
    e.request("GET", "/fail");
    const failed = await e.response();
    assert.equal(failed.status, 500);
    assert.equal(failed.body, "handled boom");
    const f = client();
    f.request("GET", "/nowhere"); // no handler: Express answers 404
    assert.equal((await f.response()).status, 404);
    await waitUntil(() => admission.inFlight === 0);
    assert.equal(admission.stats.admitted, 6);
    assert.equal(admission.stats.queued, 0);
  } finally {
    gate.resolve();
    for (const c of clients) c.close();
    await closeServer(server);
  }
});
