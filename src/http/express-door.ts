/**
 * The Express 5 front door (internal): `admission.express()` sets `req.signal` on each admitted
 * request and calls `next()`. Express does not tell middleware when a route's handler settled,
 * so the slot follows the response alone (released when it ended or the client left).
 */
import type { IncomingMessage } from "node:http";
import { drainLimit, type Door } from "./admission.js";
import { writeProblem } from "./problem.js";

/** The Express door: sets `req.signal` and calls `next()`. */
export const EXPRESS_DOOR: Door = {
  tracksHandler: false,
  begin(visit, signal) {
    (visit.req as IncomingMessage & { signal?: AbortSignal }).signal = signal;
    (visit.context as (error?: unknown) => void)();
  },
  refuse(visit, problem, headers) {
    writeProblem(visit.req, visit.res, problem, drainLimit(visit.admission), headers);
  },
};
