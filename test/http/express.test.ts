import express from "express";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { doorSuite, lateSignalTest, type MakeServer } from "./door-suite.js";

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
