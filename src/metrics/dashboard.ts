/**
 * The live dashboard: `createDashboard()` (a request handler to mount in an existing server)
 * and `serveDashboard()` (its own `node:http` server on loopback).
 *
 * Invariants (everything bounded):
 *  - One frame is sampled every `intervalMs` from `source()` (default `snapshot()`) by an
 *    unref'd timer (it never keeps the process alive), and kept in a `History` of at most
 *    `historySeconds` worth of frames, each of at most `maxBoundaries` boundaries.
 *  - At most `maxViewers` event streams are open at once; one more gets `503` with
 *    `Retry-After`. A viewer whose socket is not draining (its buffer above the high-water
 *    mark) skips frames rather than buffering them: a slow viewer costs at most the one event
 *    being written, and sees the next frame once it caught up.
 *  - `close()` stops the sampling and ends every event stream; the handler answers `503` after.
 */
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { snapshot, type SnapshotEntry } from "./snapshot.js";
import { History, type Frame } from "./history.js";
import { dashboardPage } from "./dashboard-page.js";
import { given } from "../core/validate.js";

/** Options of `createDashboard` and `serveDashboard`. */
export interface DashboardOptions {
  /** Sampling interval in ms (an integer >= 50; default 1000). */
  intervalMs?: number;
  /** How much history is kept and sent to a new viewer, in seconds (default 300: 5 minutes). */
  historySeconds?: number;
  /** Event streams open at once (a positive safe integer; default 8). Past it: 503. */
  maxViewers?: number;
  /** Boundaries per frame (a positive safe integer; default 32): the first ones of `source()`. */
  maxBoundaries?: number;
  /** Where frames come from (default `snapshot()`); e.g. entries relayed from other processes. */
  source?: () => readonly SnapshotEntry[];
  /** The page's title (default "sluice dashboard"). */
  title?: string;
}

/** Options of `serveDashboard`. */
export interface ServeDashboardOptions extends DashboardOptions {
  /** The port (default 0: any free port). */
  port?: number;
  /** The interface (default "127.0.0.1": loopback only). */
  host?: string;
}

/** A dashboard to mount: its request handler, its history, and `close()`. */
export interface Dashboard {
  /**
   * A `node:http` request listener serving the page (`/`), `uplot.js`, `uplot.css`, the event
   * stream (`/events`) and the latest frame as JSON (`/frame.json`), relative to where it is
   * mounted. Unknown paths: `next()` when given (Express/Connect), else 404.
   */
  readonly handler: (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => void;
  /** The frames kept, oldest first. */
  readonly frames: readonly Frame[];
  /** Event streams open now. */
  readonly viewers: number;
  /** Frames skipped for slow viewers, all viewers together. */
  readonly skippedFrames: number;
  /** Takes a frame now (the timer does it every `intervalMs`) and sends it to every viewer. */
  sample(): Frame;
  /** Stops sampling and ends every event stream. Idempotent. */
  close(): void;
}

/** What `serveDashboard` resolves with. */
export interface ServedDashboard {
  /** The page's URL, e.g. `http://127.0.0.1:43117/`. */
  readonly url: string;
  readonly dashboard: Dashboard;
  /** Closes the dashboard and the server. */
  close(): Promise<void>;
}

function positive(v: unknown, name: string, fallback: number, min = 1): number {
  if (v === undefined) return fallback;
  if (typeof v !== "number") throw new TypeError(`options.${name} must be a number, got ${typeof v}`);
  if (!Number.isSafeInteger(v) || v < min) {
    throw new RangeError(`options.${name} must be a safe integer >= ${min}, got ${v}`);
  }
  return v;
}

const require = createRequire(import.meta.url);
let assets: { js: string; css: string } | undefined;
function uplotAssets(): { js: string; css: string } {
  if (assets === undefined) {
    try {
      assets = {
        js: readFileSync(require.resolve("uplot/dist/uPlot.iife.min.js"), "utf8"),
        css: readFileSync(require.resolve("uplot/dist/uPlot.min.css"), "utf8"),
      };
    } catch (e) {
      throw new Error('sluice/metrics: the dashboard needs the "uplot" package (npm install uplot)', { cause: e });
    }
  }
  return assets;
}

interface Viewer {
  readonly res: ServerResponse;
  skipped: number;
}

/**
 * Creates a dashboard: samples `source()` every `intervalMs` into a bounded history and
 * serves it. Throws `TypeError`/`RangeError` naming the option for a bad option, and if uPlot
 * is not installed.
 *
 * @example
 * const dashboard = createDashboard();
 * app.use("/sluice", dashboard.handler); // Express; or call it from a node:http listener
 */
export function createDashboard(options: DashboardOptions = {}): Dashboard {
  if (options === null || typeof options !== "object") throw new TypeError("options must be an object");
  const intervalMs = positive(options.intervalMs, "intervalMs", 1000, 50);
  const historySeconds = positive(options.historySeconds, "historySeconds", 300);
  const maxViewers = positive(options.maxViewers, "maxViewers", 8);
  const maxBoundaries = positive(options.maxBoundaries, "maxBoundaries", 32);
  if (options.source !== undefined && typeof options.source !== "function") {
    throw new TypeError("options.source must be a function");
  }
  const source = given(options.source, snapshot);
  const title = given(options.title, "sluice dashboard");
  if (typeof title !== "string") throw new TypeError("options.title must be a string");
  const maxFrames = Math.max(2, Math.ceil((historySeconds * 1000) / intervalMs));
  const { js, css } = uplotAssets();
  const page = dashboardPage(title, maxFrames);
  const history = new History(maxFrames, maxBoundaries);
  const viewers = new Set<Viewer>();
  let skippedFrames = 0;
  let closed = false;

  const send = (v: Viewer, event: string, data: unknown): void => {
    v.res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };

  const sample = (): Frame => {
    let entries: readonly SnapshotEntry[];
    try {
      entries = source();
    } catch {
      entries = [];
    }
    const frame = history.add(entries, Date.now());
    for (const v of viewers) {
      if (v.res.writableNeedDrain) {
        v.skipped++;
        skippedFrames++;
        continue;
      }
      send(v, "frame", frame);
    }
    return frame;
  };

  const timer = setInterval(sample, intervalMs);
  timer.unref();
  sample();

  const handler = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): void => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (closed) {
      res.writeHead(503, { "content-type": "text/plain", "retry-after": "1" }).end("dashboard closed\n");
      return;
    }
    switch (path) {
      case "/":
      case "/index.html":
        res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" }).end(page);
        return;
      case "/uplot.js":
        res.writeHead(200, { "content-type": "text/javascript; charset=utf-8", "cache-control": "max-age=3600" }).end(js);
        return;
      case "/uplot.css":
        res.writeHead(200, { "content-type": "text/css; charset=utf-8", "cache-control": "max-age=3600" }).end(css);
        return;
      case "/frame.json":
        res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" }).end(JSON.stringify(history.last ?? null));
        return;
      case "/events": {
        if (viewers.size >= maxViewers) {
          res.writeHead(503, { "content-type": "text/plain", "retry-after": "5" }).end(`at most ${maxViewers} viewers\n`);
          return;
        }
        res.writeHead(200, {
          "content-type": "text/event-stream",
          "cache-control": "no-store",
          connection: "keep-alive",
          "x-accel-buffering": "no",
        });
        const v: Viewer = { res, skipped: 0 };
        viewers.add(v);
        res.write(`retry: ${Math.max(1000, intervalMs)}\n\n`);
        send(v, "history", { frames: history.frames });
        const leave = (): void => {
          viewers.delete(v);
        };
        req.on("close", leave);
        res.on("close", leave);
        return;
      }
      default:
        if (next !== undefined) next();
        else res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
    }
  };

  return {
    handler,
    get frames() {
      return history.frames;
    },
    get viewers() {
      return viewers.size;
    },
    get skippedFrames() {
      return skippedFrames;
    },
    sample,
    close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      for (const v of viewers) v.res.end();
      viewers.clear();
    },
  };
}

/**
 * Serves a dashboard on its own HTTP server (default `127.0.0.1`, any free port) and resolves
 * once it listens. `close()` ends the viewers' streams and closes the server.
 *
 * @example
 * const { url, close } = await serveDashboard({ port: 9465 });
 * console.log(`dashboard: ${url}`);
 */
export async function serveDashboard(options: ServeDashboardOptions = {}): Promise<ServedDashboard> {
  if (options === null || typeof options !== "object") throw new TypeError("options must be an object");
  const port = given(options.port, 0);
  if (typeof port !== "number" || !Number.isSafeInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`options.port must be an integer from 0 to 65535, got ${String(port)}`);
  }
  const host = given(options.host, "127.0.0.1");
  if (typeof host !== "string") throw new TypeError("options.host must be a string");
  const dashboard = createDashboard(options);
  const server = http.createServer((req, res) => dashboard.handler(req, res));
  server.on("clientError", (_e, socket) => socket.destroy());
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (e) {
    dashboard.close();
    throw e;
  }
  const address = server.address() as AddressInfo;
  const shown = address.family === "IPv6" ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${shown}:${address.port}/`,
    dashboard,
    close() {
      closing ??= new Promise<void>((resolve) => {
        dashboard.close();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
