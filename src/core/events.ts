/**
 * sluice's `node:diagnostics_channel` events: the moments that matter at a boundary, for APM
 * tools and `sluice/metrics` to subscribe to.
 *
 * | channel                   | published when                                        | message            |
 * |---------------------------|-------------------------------------------------------|--------------------|
 * | `sluice:reject`           | a boundary refuses work (BusyError, closed pool, ...) | `RejectEvent`      |
 * | `sluice:drop`             | a boundary drops accepted work (drop-oldest, ...)     | `DropEvent`        |
 * | `sluice:parked-warning`   | a wait queue passes its warning threshold (once)      | `ParkedWarningEvent` |
 * | `sluice:breaker-state`    | a circuit breaker changes state                       | `BreakerStateEvent` |
 * | `sluice:limit-change`     | an adaptive limit changes its limit                   | `LimitChangeEvent` |
 * | `sluice:admission-reject` | `sluice/http` refuses a request (published there)     | `AdmissionRejectEvent` |
 *
 * Invariants:
 *  - Nothing is built or published unless the channel `hasSubscribers`: every call site tests
 *    that first (one property read), so events cost nothing when nobody listens.
 *  - Every message is a fresh plain object, published synchronously at the moment it describes
 *    (after the boundary's state and counters were updated). A subscriber that throws does not
 *    affect the boundary (diagnostics_channel reports it on `process.nextTick`).
 *
 * @example
 * import diagnostics_channel from "node:diagnostics_channel";
 * diagnostics_channel.subscribe("sluice:reject", (e) => console.log(e.kind, e.name, e.reason));
 */
import diagnostics_channel from "node:diagnostics_channel";

/** Every event names its boundary: its kind ("pool", "channel", ...), its name, and the object. */
export interface BoundaryEvent {
  readonly kind: string;
  /**
   * The boundary's name as its `name` getter gives it: undefined when it has none, except a
   * channel (`#<n>`) and a pool ("pool"), which always have one.
   */
  readonly name: string | undefined;
  /** The boundary itself (read its `stats` for more). */
  readonly boundary: object;
}

/** `sluice:reject`: work refused at once, never started. */
export interface RejectEvent extends BoundaryEvent {
  /**
   * Why: `"maxParkedSends"`, `"maxParkedRecvs"` (channel), `"maxWaiters"` (semaphore, rate
   * limiters), `"queueFull"`, `"maxWaiting"`, `"closed"`, `"try"` (pool; `"try"`: `trySubmit`
   * returned false), `"maxDelay"`, `"noRate"` (rate limiters' `wait`), `"open"`, `"halfOpen"`
   * (circuit breaker), `"exhausted"` (retry budget).
   */
  readonly reason: string;
}

/** `sluice:drop`: work accepted earlier and then dropped without running. */
export interface DropEvent extends BoundaryEvent {
  /** `"drop-oldest"` (pool), or a subscriber policy for a broadcast. */
  readonly reason: string;
}

/** `sluice:parked-warning`: a wait queue passed its warning threshold (published once per queue). */
export interface ParkedWarningEvent {
  /** The boundary described, e.g. `channel "jobs" (capacity 4)`. */
  readonly description: string;
  readonly name: string | undefined;
  readonly boundary: object;
  /** What the parked operations wait to do: "send", "recv", "acquire", "submit", ... */
  readonly role: string;
  /** Parked now. */
  readonly parked: number;
  readonly threshold: number;
  /** The warning's code, e.g. `SLUICE_PARKED_SENDS`. */
  readonly code: string;
}

/** `sluice:breaker-state`: a circuit breaker moved from one state to another. */
export interface BreakerStateEvent extends BoundaryEvent {
  readonly from: string;
  readonly to: string;
  /** The breaker's clock at the change (ms). */
  readonly at: number;
}

/** `sluice:limit-change`: an adaptive limit took a new value. */
export interface LimitChangeEvent extends BoundaryEvent {
  readonly from: number;
  readonly to: number;
}

/** `sluice:admission-reject` (published by `sluice/http`): a request refused with 503 or 429. */
export interface AdmissionRejectEvent {
  readonly name: string | undefined;
  readonly reason: string;
  readonly status: number;
  readonly retryAfterSeconds: number;
}

/** @internal */ export const rejectChannel = diagnostics_channel.channel("sluice:reject");
/** @internal */ export const dropChannel = diagnostics_channel.channel("sluice:drop");
/** @internal */ export const parkedWarningChannel = diagnostics_channel.channel("sluice:parked-warning");
/** @internal */ export const breakerStateChannel = diagnostics_channel.channel("sluice:breaker-state");
/** @internal */ export const limitChangeChannel = diagnostics_channel.channel("sluice:limit-change");
/** @internal */ export const admissionRejectChannel = diagnostics_channel.channel("sluice:admission-reject");

/** The names of sluice's diagnostics channels. */
export const EVENT_CHANNELS = Object.freeze({
  reject: "sluice:reject",
  drop: "sluice:drop",
  parkedWarning: "sluice:parked-warning",
  breakerState: "sluice:breaker-state",
  limitChange: "sluice:limit-change",
  admissionReject: "sluice:admission-reject",
} as const);

/**
 * @internal Publishes a `sluice:reject` event. Call only when `rejectChannel.hasSubscribers`
 * (the test stays at the call site, so that nothing is called when nobody listens).
 */
export function publishReject(kind: string, boundary: { readonly name: string | undefined }, reason: string): void {
  const e: RejectEvent = { kind, name: boundary.name, boundary, reason };
  rejectChannel.publish(e);
}

/** @internal Publishes a `sluice:drop` event (call only when `dropChannel.hasSubscribers`). */
export function publishDrop(kind: string, boundary: { readonly name: string | undefined }, reason: string): void {
  const e: DropEvent = { kind, name: boundary.name, boundary, reason };
  dropChannel.publish(e);
}
