/**
 * The Express 5 front door (internal): `admission.express()` sets `req.signal` on each admitted
 * request and calls `next()`.
 *
 * Express does not tell a middleware when the handlers after it settled: the router calls each
 * handler, keeps its returned promise to itself, and forwards a rejection to `next(error)`. So
 * that the slot is held until the handlers settle (the contract: never more than the
 * concurrency run at once, even for a handler that answered early and goes on working), the
 * door wraps the handlers of the app's router tree the first time it sees them: every layer's
 * function in `req.app.router` and in the routers and routes under it (an `app.use(router)`, an
 * `app.route(path)`). A wrapped handler called for an admitted request counts as running until
 * it returns, or until its returned promise settles; the slot is given back when none runs and
 * the response has ended (or the client left).
 *
 * Invariants:
 * - A wrapper has its original's arity (`fn.length`): Express tells error handlers (four
 *   parameters) from request handlers by it.
 * - A function is wrapped at most once (`WRAPPED` marks wrappers). A router's or route's stack
 *   is walked once (`SEEN` marks it) and its `push`, which Express's router and routes add
 *   layers with, is replaced on that array by one that takes each new layer in first; so a
 *   request pays one property read, and routes registered at run time are wrapped too.
 * - A handler called for a request that is not admitted (before the admission's middleware, or
 *   after its slot was given back) runs unwrapped in effect: `running` counts only calls made
 *   while the visit runs.
 *
 * What it cannot see: the handlers of a mounted sub-application (`app.use(subApp)`: its router
 * is not reachable from the parent's stack) and of a router used outside an Express app (no
 * `req.app`). For those the slot follows the response alone, released when it ended or the
 * client left.
 */
import { drainLimit, handlerEnded, isRunning, signalOf, type Door, type Visit } from "./admission.js";
import { writeProblem } from "./problem.js";

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

type Handler = ((...args: unknown[]) => unknown) & { [WRAPPED]?: true; stack?: unknown };
interface Layer {
  handle: Handler;
  route?: { stack: Layer[] } | undefined;
}
type Stack = Layer[] & { [SEEN]?: true };

const WRAPPED = Symbol("sluice.admission.wrapped");
const SEEN = Symbol("sluice.admission.seen");
/** Nesting of routers walked at most (a cycle of routers would otherwise never end). */
const MAX_DEPTH = 32;

/** The admitted requests whose handlers are tracked: the visit and how many of its handlers run now. */
const tracked = new WeakMap<object, { readonly visit: Visit; running: number }>();

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === "object" || typeof v === "function") && typeof (v as PromiseLike<unknown>).then === "function";
}

/** Calls a handler for `req`, counting it as running (if `req` is admitted) until it returns or its promise settles. */
function run(req: unknown, fn: Handler, self: unknown, args: unknown[]): unknown {
  const entry = typeof req === "object" && req !== null ? tracked.get(req) : undefined;
  if (entry === undefined || !isRunning(entry.visit)) return fn.apply(self, args);
  entry.running++;
  entry.visit.handlerDone = false;
  let result: unknown;
  try {
    result = fn.apply(self, args);
  } catch (e) {
    settled(entry);
    throw e;
  }
  if (isThenable(result)) result.then(() => settled(entry), () => settled(entry));
  else settled(entry);
  return result;
}

function settled(entry: { readonly visit: Visit; running: number }): void {
  if (--entry.running === 0) handlerEnded(entry.visit);
}

function wrap(fn: Handler): Handler {
  // Express reads the arity: four parameters make an error handler.
  const wrapped: Handler =
    fn.length > 3
      ? function (this: unknown, error: unknown, req: unknown, res: unknown, next: unknown) {
          return run(req, fn, this, [error, req, res, next]);
        }
      : function (this: unknown, req: unknown, res: unknown, next: unknown) {
          return run(req, fn, this, [req, res, next]);
        };
  wrapped[WRAPPED] = true;
  return wrapped;
}

/** Takes a layer in: wraps its handler, or watches the stack of its route or router. */
function adopt(layer: Layer, depth: number): void {
  const route = layer.route;
  if (route !== undefined && route !== null && Array.isArray(route.stack)) {
    watch(route.stack, depth + 1);
    return;
  }
  const handle = layer.handle;
  if (typeof handle !== "function") return;
  if (Array.isArray(handle.stack)) {
    // A router: its handlers are wrapped, not itself.
    if (depth < MAX_DEPTH) watch(handle.stack as Stack, depth + 1);
    return;
  }
  if (handle[WRAPPED] !== true) layer.handle = wrap(handle);
}

/**
 * Takes in the layers of `stack` and, through its own `push` (the method Express's router and
 * routes add layers with), every layer added to it later.
 */
function watch(stack: Stack, depth: number): void {
  if (stack[SEEN] === true) return;
  stack[SEEN] = true;
  for (const layer of stack) adopt(layer, depth);
  const push = stack.push;
  Object.defineProperty(stack, "push", {
    configurable: true,
    enumerable: false,
    writable: true,
    value(this: Stack, ...layers: Layer[]): number {
      for (const layer of layers) adopt(layer, depth);
      return push.apply(this, layers);
    },
  });
}

/** The stack of the Express app's router `req` runs in, or undefined outside an Express app. */
function appStack(req: unknown): Stack | undefined {
  const app = (req as { app?: { router?: { stack?: unknown } } }).app;
  if (typeof app !== "function" && (typeof app !== "object" || app === null)) return undefined;
  const stack = app.router?.stack;
  return Array.isArray(stack) ? (stack as Stack) : undefined;
}

export const EXPRESS_DOOR: Door = {
  tracksHandler: false,
  begin(visit) {
    defineSignal(visit.req, visit);
    const stack = appStack(visit.req);
    if (stack !== undefined) {
      watch(stack, 0);
      tracked.set(visit.req, { visit, running: 0 });
    }
    (visit.context as (error?: unknown) => void)();
  },
  refuse(visit, problem, headers) {
    writeProblem(visit.req, visit.res, problem, drainLimit(visit.admission), headers);
  },
};
