/**
 * The node:http front door (internal): `admission.handler(listener)` calls
 * `listener(req, res, signal)` for each admitted request and follows the promise it returns,
 * so the slot is held until the listener settled (and the response ended or the client left).
 * The signal is created only for a listener that declares it (`listener.length >= 3`): an
 * AbortSignal costs more to create than the rest of admission per request.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { drainLimit, handlerSettled, signalOf, type Door } from "./admission.js";
import { writeProblem } from "./problem.js";

/** The node:http door: calls `listener(req, res, signal)` and follows its promise. */
/** What a listener that declares no signal parameter gets in its place (it never reads it). */
const UNUSED = undefined as unknown as AbortSignal;

export const NODE_DOOR: Door = {
  tracksHandler: true,
  begin(visit) {
    const listener = visit.context as (req: IncomingMessage, res: ServerResponse, signal: AbortSignal) => unknown;
    let result: unknown;
    try {
      // A listener that declares no third parameter gets no signal (creating one is not free).
      result = listener.length >= 3 ? listener(visit.req, visit.res, signalOf(visit)) : listener(visit.req, visit.res, UNUSED);
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

