/**
 * The Fastify 5 front door: `app.register(fastifyAdmission, { admission })`. An `onRequest`
 * hook (so nothing of the request, its body included, is read before the decision) admits each
 * request, queues it, or answers it at once with the problem reply (through Fastify's `reply`,
 * so its `onSend`/`onResponse` hooks and logging see it). An admitted request's
 * `request.signal` is the admission's signal, which replaces Fastify's own: that one fires
 * after every normal response too and knows no deadline.
 *
 * The plugin is wrapped with `fastify-plugin` (when it is installed; otherwise it is marked the
 * same way by hand), so its hook applies to the routes of the instance it is registered on and
 * to all their children, not to a private encapsulated context.
 *
 * The slot is held until the route's handler settles and the response ended (or the client
 * left): the plugin's `onRoute` hook wraps the handler of every route registered after it, and
 * the wrapper reports when the handler's promise settles. A request whose handler never runs (a
 * hook or the body's validation answered first) is done when its response is. (As with every
 * Fastify hook, register the plugin before the routes it guards.)
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from "fastify";
import { Admission, drainLimit, enter, handlerEnded, Visit, type Door } from "./admission.js";
import { closeAfter, problemHeaders } from "./problem.js";
import { defineSignal } from "./express-door.js";

/** Options of the `fastifyAdmission` plugin. */
export interface FastifyAdmissionOptions {
  /** The admission that guards every route of the instance the plugin is registered on. */
  admission: Admission;
}

interface FastifyContext {
  readonly request: FastifyRequest;
  readonly reply: FastifyReply;
  readonly done: HookHandlerDoneFunction;
}

/** Handlers wrapped by the plugin's `onRoute` hook (they report their end). */
const wrappedHandlers = new WeakSet<object>();
/** In the config of a route whose handler the plugin wrapped. */
const WRAPPED = Symbol("sluice.admission.wrapped");
/** The admitted requests of wrapped routes whose handler has not ended: their visit, and whether the handler started. */
const tracked = new WeakMap<object, { readonly visit: Visit; started: boolean }>();

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === "object" || typeof v === "function") && typeof (v as PromiseLike<unknown>).then === "function";
}

/** The handler of `request` ended (settled, threw, or will never run): release its part of the slot. */
function ended(request: object): void {
  const entry = tracked.get(request);
  if (entry === undefined) return;
  tracked.delete(request);
  handlerEnded(entry.visit);
}

const FASTIFY_DOOR: Door = {
  tracksHandler: false,
  begin(visit) {
    const { request, done } = visit.context as FastifyContext;
    defineSignal(request, visit); // in place of Fastify's own getter (on the prototype)
    // Fastify hands the route's handler on bound (a new function): its config says it was wrapped.
    const config = (request.routeOptions as unknown as { config?: Record<symbol, unknown> }).config;
    if (config !== undefined && config !== null && config[WRAPPED] === true) {
      visit.handlerDone = false; // the wrapper reports the handler's end
      const entry = { visit, started: false };
      tracked.set(request, entry);
      // A handler that never ran by the time the response closed never will.
      visit.res.once("close", () => {
        if (!entry.started) ended(request);
      });
    }
    done();
  },
  refuse(visit, problem, extra) {
    const { reply } = visit.context as FastifyContext;
    const close = closeAfter(visit.req, problem, drainLimit(visit.admission));
    for (const [k, v] of extra) void reply.header(k, v);
    void reply.code(problem.status).headers(problemHeaders(problem, close)).send(JSON.stringify(problem));
  },
};

function plugin(app: FastifyInstance, options: FastifyAdmissionOptions, done: (error?: Error) => void): void {
  const admission = (options as Partial<FastifyAdmissionOptions> | undefined)?.admission;
  if (!(admission instanceof Admission)) {
    done(new TypeError("fastifyAdmission: options.admission must be an Admission"));
    return;
  }
  app.addHook("onRoute", (route) => {
    const original = route.handler as unknown;
    if (typeof original !== "function" || wrappedHandlers.has(original)) return;
    const handler = original as (this: unknown, request: FastifyRequest, reply: FastifyReply) => unknown;
    const wrapped = function (this: unknown, request: FastifyRequest, reply: FastifyReply): unknown {
      const entry = tracked.get(request);
      if (entry === undefined) return handler.call(this, request, reply);
      entry.started = true;
      let result: unknown;
      try {
        result = handler.call(this, request, reply);
      } catch (e) {
        ended(request);
        throw e;
      }
      if (isThenable(result)) result.then(() => ended(request), () => ended(request));
      else ended(request);
      return result;
    };
    wrappedHandlers.add(wrapped);
    route.handler = wrapped as typeof route.handler;
    route.config = { ...(route.config as object | undefined), [WRAPPED]: true } as typeof route.config;
  });
  app.addHook("onRequest", (request, reply, next) => {
    const context: FastifyContext = { request, reply, done: next };
    enter(admission, new Visit(admission, FASTIFY_DOOR, request.raw, reply.raw, context));
  });
  done();
}

type FastifyPluginFn = typeof plugin;
const fp = await import("fastify-plugin").then(
  (m) => m.default as unknown as (fn: FastifyPluginFn, meta: { fastify: string; name: string }) => FastifyPluginFn,
  () => undefined,
);

/** Marks a plugin as `fastify-plugin` does when that package is not installed (no encapsulation, a display name). */
function markByHand(fn: FastifyPluginFn): FastifyPluginFn {
  const marked = fn as FastifyPluginFn & Record<symbol, unknown>;
  marked[Symbol.for("skip-override")] = true;
  marked[Symbol.for("fastify.display-name")] = "sluice-admission";
  marked[Symbol.for("plugin-meta")] = { fastify: "5.x", name: "sluice-admission" };
  return marked;
}

/**
 * A Fastify 5 plugin that puts an `Admission` in front of every route of the instance it is
 * registered on. Refused requests are answered from the `onRequest` hook (503/429, Retry-After,
 * problem+json) before their body is read; admitted ones get the admission's signal as
 * `request.signal` (it fires on client disconnect, at `deadlineMs`, at `close()`'s deadline,
 * never after a normal response).
 *
 * @example
 * const app = Fastify();
 * const admission = new Admission({ concurrency: 32, queue: 64, queueTimeoutMs: 200 });
 * await app.register(fastifyAdmission, { admission });
 * app.get("/search", (request) => search(request.query, { signal: request.signal }));
 */
export const fastifyAdmission: FastifyPluginFn =
  fp !== undefined ? fp(plugin, { fastify: "5.x", name: "sluice-admission" }) : markByHand(plugin);
