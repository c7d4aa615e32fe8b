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
 * Fastify does not tell an `onRequest` hook when the route's handler settles: the slot follows
 * the response (given back when it ended or the client left), as in the Express door.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from "fastify";
import { Admission, enter, Visit, type Door } from "./admission.js";
import { mustCloseFor, problemHeaders } from "./problem.js";
import { drainLimit } from "./admission.js";
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

const FASTIFY_DOOR: Door = {
  tracksHandler: false,
  begin(visit) {
    const { request, done } = visit.context as FastifyContext;
    defineSignal(request, visit); // in place of Fastify's own getter (on the prototype)
    done();
  },
  refuse(visit, problem, extra) {
    const { reply } = visit.context as FastifyContext;
    const close = mustCloseFor(visit.req, drainLimit(visit.admission));
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
