/**
 * The Express 5 front door (internal): `admission.express()` sets `req.signal` on each admitted
 * request and calls `next()`. Express does not tell middleware when a route's handler settled,
 * so the slot follows the response alone (released when it ended or the client left).
 */
import { drainLimit, signalOf, type Door, type Visit } from "./admission.js";
import { writeProblem } from "./problem.js";

/** The Express door: sets `req.signal` and calls `next()`. */
/**
 * @internal Defines `target.signal` as a getter of the visit's signal (created on first read;
 * writable, so code that sets its own keeps working).
 */
export function defineSignal(target: object, visit: Visit): void {
  Object.defineProperty(target, "signal", {
    configurable: true,
    enumerable: false,
    get: () => signalOf(visit),
    set(value: unknown) {
      Object.defineProperty(target, "signal", { value, configurable: true, enumerable: false, writable: true });
    },
  });
}

export const EXPRESS_DOOR: Door = {
  tracksHandler: false,
  begin(visit) {
    defineSignal(visit.req, visit);
    (visit.context as (error?: unknown) => void)();
  },
  refuse(visit, problem, headers) {
    writeProblem(visit.req, visit.res, problem, drainLimit(visit.admission), headers);
  },
};
