import { test } from "node:test";
import assert from "node:assert/strict";
import Fastify from "fastify";
import type { AddressInfo } from "node:net";
import { Admission, fastifyAdmission } from "../../src/http/index.js";
import { doorSuite, lateSignalTest, type MakeServer } from "./door-suite.js";
import { RawClient, waitUntil } from "./helpers.js";

const makeServer: MakeServer = async (admission, routes) => {
  const app = Fastify();
  await app.register(fastifyAdmission, { admission });
  app.get<{ Params: { id: string } }>("/hold/:id", async (request) => {
    await routes.hold(request.params.id, request.signal);
    return "done";
  });
  app.get("/late", async (request) => {
    routes.started.hit();
    await routes.gate("late").promise;
    routes.closedChecks.push(request.signal.aborted);
    routes.checked.hit();
    return "late";
  });
  app.all("/ok", async () => "ok");
  app.get("/signal", async (request) => {
    const signal = request.signal;
    await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
    return (signal.reason as Error).name;
  });
  await app.listen({ port: 0, host: "127.0.0.1" });
  return {
    server: app.server,
    port: (app.server.address() as AddressInfo).port,
    close: async () => {
      app.server.closeAllConnections();
      await app.close();
    },
  };
};
doorSuite("fastify", makeServer);
lateSignalTest("fastify", makeServer);

test("fastify: the plugin is not encapsulated (it guards routes of the parent and of sibling plugins)", { timeout: 20_000 }, async () => {
  const admission = new Admission({ concurrency: 1 });
  const app = Fastify();
  await app.register(fastifyAdmission, { admission });
  let seen: AbortSignal | undefined;
  await app.register(async (child) => {
    child.get("/child", async (request) => {
      seen = request.signal;
      return "child";
    });
  });
  await app.listen({ port: 0, host: "127.0.0.1" });
  try {
    const c = new RawClient((app.server.address() as AddressInfo).port);
    c.request("GET", "/child");
    assert.equal((await c.response()).body, "child");
    await waitUntil(() => admission.inFlight === 0);
    assert.equal(admission.stats.admitted, 1);
    assert.equal(seen!.aborted, false, "the admission's signal replaced Fastify's (which fires after every response)");
    c.close();
  } finally {
    app.server.closeAllConnections();
    await app.close();
  }
});

test("fastify: registering without an Admission fails with a TypeError", async () => {
  const app = Fastify();
  await assert.rejects(async () => {
    await app.register(fastifyAdmission, {} as { admission: Admission });
    await app.ready();
  }, { name: "TypeError", message: /options\.admission/ });
  await app.close();
});

test("fastify: the slot is held until the route's handler settles, even after it replied; a handler that never runs frees it with its response", { timeout: 20_000 }, async () => {
  const admission = new Admission({ concurrency: 1, queue: 4 });
  const app = Fastify();
  await app.register(fastifyAdmission, { admission });
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let running = 0;
  let max = 0;
  app.get("/early", async (_request, reply) => {
    max = Math.max(max, ++running);
    await reply.send("early"); // answered; the handler goes on working
    await gate;
    running--;
  });
  app.get("/quick", async () => {
    max = Math.max(max, ++running);
    running--;
    return "quick";
  });
  // Answered by a hook before the handler: the handler never runs.
  app.get("/hooked", { preHandler: async (_request, reply) => reply.code(401).send("no") }, async () => "unreachable");
  // Answered by validation before the handler.
  app.get("/checked", { schema: { querystring: { type: "object", required: ["n"], properties: { n: { type: "integer" } } } } }, async () => "checked");
  await app.listen({ port: 0, host: "127.0.0.1" });
  const port = (app.server.address() as AddressInfo).port;
  try {
    const a = new RawClient(port);
    a.request("GET", "/early");
    assert.equal((await a.response()).body, "early");
    const b = new RawClient(port);
    b.request("GET", "/quick");
    await waitUntil(() => admission.stats.queued === 1);
    assert.equal(admission.inFlight, 1, "the first handler still holds the slot after its reply");
    release();
    assert.equal((await b.response()).body, "quick");
    assert.equal(max, 1, `handlers running at once: ${max}`);
    for (const path of ["/hooked", "/checked"]) {
      const c = new RawClient(port);
      c.request("GET", path);
      const r = await c.response();
      assert.ok(r.status === 401 || r.status === 400, `${path}: ${r.status}`);
      await waitUntil(() => admission.inFlight === 0);
      c.close();
    }
    assert.equal(admission.stats.admitted, 4);
    a.close();
    b.close();
  } finally {
    release();
    app.server.closeAllConnections();
    await app.close();
  }
});
