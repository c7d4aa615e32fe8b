import express from "express";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { doorSuite } from "./door-suite.js";

doorSuite("express", async (admission, routes) => {
  const app = express();
  app.use(admission.express());
  app.get("/hold/:id", async (req, res) => {
    await routes.hold(req.params.id, (req as unknown as { signal: AbortSignal }).signal);
    if (!res.writableEnded && !res.destroyed) res.send("done");
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
});
