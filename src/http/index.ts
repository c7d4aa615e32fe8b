/**
 * `sluice/http`: admission control for HTTP servers. One engine (`Admission`: a concurrency
 * limit or an adaptive one, a bounded FIFO/LIFO queue, queue timeouts, deadlines, per-client
 * quotas) and three front doors: `admission.handler(listener)` for `node:http`,
 * `admission.express()` for Express 5, and the `fastifyAdmission` plugin for Fastify 5. A
 * request that cannot be admitted is answered at once, before its body is read: `503` (or `429`
 * over quota) with a jittered `Retry-After` and an `application/problem+json` body.
 * `fetchWithRetry` is the client side: it honours those answers.
 */
export { Admission, ADMISSION_REJECT_CHANNEL } from "./admission.js";
export type {
  AdmissionOptions,
  AdmissionStats,
  AdmissionRejections,
  AdmissionState,
  AdmissionQuota,
  AdmissionOrder,
  AdmissionRejectMessage,
  RejectReason,
} from "./admission.js";
export type { Problem } from "./problem.js";
export { fastifyAdmission } from "./fastify.js";
export type { FastifyAdmissionOptions } from "./fastify.js";
export { fetchWithRetry, RetryableResponseError } from "./fetch-with-retry.js";
export type { FetchWithRetryOptions } from "./fetch-with-retry.js";
