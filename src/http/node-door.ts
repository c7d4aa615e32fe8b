/**
 * The node:http front door (internal): `admission.handler(listener)` calls
 * `listener(req, res, signal)` for each admitted request and follows the promise it returns,
 * so the slot is held until the listener settled (and the response ended or the client left).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { drainLimit, handlerSettled, type Door } from "./admission.js";
import { writeProblem } from "./problem.js";

/** The node:http door: calls `listener(req, res, signal)` and follows its promise. */
export const NODE_DOOR: Door = {
  tracksHandler: true,
  begin(visit, signal) {
    const listener = visit.context as (req: IncomingMessage, res: ServerResponse, signal: AbortSignal) => unknown;
    let result: unknown;
    try {
      result = listener(visit.req, visit.res, signal);
    } catch (e) {
      handlerSettled(visit, true, e);
      return;
    }
    if (result !== null && typeof result === "object" && typeof (result as PromiseLike<unknown>).then === "function") {
      (result as PromiseLike<unknown>).then(
        () => handlerSettled(visit, false, undefined),
        (e: unknown) => handlerSettled(visit, true, e),
      );
    } else {
      handlerSettled(visit, false, undefined);
    }
  },
  refuse(visit, problem, headers) {
    writeProblem(visit.req, visit.res, problem, drainLimit(visit.admission), headers);
  },
};

