/**
 * The answer to a refused request (internal): an RFC 9457 problem (`application/problem+json`)
 * with a `Retry-After` header, written before the request's body is read.
 *
 * What happens to a body the client is sending (the documented choice): a declared body of at
 * most `maxDrainBytes` (`content-length`) is left to Node, which discards it after the response
 * so the keep-alive connection stays usable; a larger one, or one of unknown length (chunked),
 * gets `Connection: close`, so no half-read body is ever left on a kept-alive socket and the
 * server never reads more than `maxDrainBytes` of a refused request.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

/** Why a request was not admitted. */
export type RejectReason = "queueFull" | "queueTimeout" | "quota" | "closed";

/** An RFC 9457 problem body, as sluice sends it. */
export interface Problem {
  /** A URI naming the kind of problem (`urn:sluice:problem:<kind>`). */
  readonly type: string;
  /** A short summary of the kind of problem. */
  readonly title: string;
  /** The HTTP status code. */
  readonly status: number;
  /** What happened to this request, in words. */
  readonly detail: string;
  /** Extension member: the seconds sent in `Retry-After`, if any. */
  readonly retryAfter?: number;
  /** Extension member: why the request was refused (`queueFull`, `queueTimeout`, `quota`, `closed`). */
  readonly reason?: string;
}

const KINDS: Readonly<Record<RejectReason, { slug: string; title: string; status: number }>> = {
  queueFull: { slug: "queue-full", title: "Server at capacity", status: 503 },
  queueTimeout: { slug: "queue-timeout", title: "Waited too long for capacity", status: 503 },
  closed: { slug: "shutting-down", title: "Server shutting down", status: 503 },
  quota: { slug: "quota-exceeded", title: "Too many requests", status: 429 },
};

/** The problem for a refusal. */
export function rejectProblem(reason: RejectReason, retryAfter: number, detail: string): Problem {
  const k = KINDS[reason];
  return { type: `urn:sluice:problem:${k.slug}`, title: k.title, status: k.status, detail, retryAfter, reason };
}

/** A problem that is not a refusal (a handler failed, or passed its deadline without answering). */
export function failureProblem(status: 500 | 503, slug: string, title: string, detail: string): Problem {
  return { type: `urn:sluice:problem:${slug}`, title, status, detail };
}

/** Whether the request has a body that must not be left half-read on a kept-alive socket. */
export function mustCloseFor(req: IncomingMessage, maxDrainBytes: number): boolean {
  if (req.complete) return false;
  const te = req.headers["transfer-encoding"];
  if (te !== undefined && te !== "") return true;
  const cl = req.headers["content-length"];
  if (cl === undefined) return false;
  const n = Number(cl);
  return !(Number.isSafeInteger(n) && n <= maxDrainBytes);
}

/** The headers of a problem reply (without `content-length`). */
export function problemHeaders(problem: Problem, close: boolean): Record<string, string> {
  const h: Record<string, string> = {
    "content-type": "application/problem+json",
    "cache-control": "no-store",
  };
  if (problem.retryAfter !== undefined) h["retry-after"] = String(problem.retryAfter);
  if (close) h["connection"] = "close";
  return h;
}

/**
 * Writes `problem` on a plain `node:http` response (extra headers, e.g. RateLimit ones, first).
 * Does nothing if the response has already sent its headers or the client left.
 */
export function writeProblem(
  req: IncomingMessage,
  res: ServerResponse,
  problem: Problem,
  maxDrainBytes: number,
  extra?: readonly (readonly [string, string])[],
): void {
  if (res.headersSent || res.writableEnded || res.destroyed) return;
  const body = JSON.stringify(problem);
  if (extra !== undefined) for (const [k, v] of extra) res.setHeader(k, v);
  const headers = problemHeaders(problem, mustCloseFor(req, maxDrainBytes));
  for (const k of Object.keys(headers)) res.setHeader(k, headers[k]!);
  res.setHeader("content-length", Buffer.byteLength(body));
  res.statusCode = problem.status;
  res.end(body);
}
