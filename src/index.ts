/**
 * sluice: Go-style channels and end-to-end backpressure for TypeScript on Node.js.
 *
 * The core: channels, select, timers as channels, signal helpers, WaitGroup, ErrGroup and a
 * weighted Semaphore. Every buffer and queue here is bounded or warns; every operation that
 * can wait takes `{ signal }`.
 */
export { Channel } from "./core/channel.js";
export type { ChannelOptions, ChannelStats, RecvResult, WaitOptions } from "./core/channel.js";
export { select, trySelect, recv, send, SelectCase } from "./core/select.js";
export type { SelectResult } from "./core/select.js";
export { after, tick, timer, Timer, Ticker } from "./core/timers.js";
export type { TimerOptions } from "./core/timers.js";
export { done, timeoutSignal } from "./core/signals.js";
export type { TimeoutSignalOptions } from "./core/signals.js";
export { WaitGroup } from "./core/waitgroup.js";
export { ErrGroup } from "./core/errgroup.js";
export type { ErrGroupOptions, ErrGroupStats, GroupTask } from "./core/errgroup.js";
export { Semaphore } from "./core/semaphore.js";
export type { SemaphoreOptions, SemaphoreStats } from "./core/semaphore.js";
export { ChannelClosedError, BusyError } from "./core/errors.js";
export { systemClock } from "./core/clock.js";
export type { Clock } from "./core/clock.js";
export { configureDiagnostics, parkedWork } from "./core/diagnostics.js";
export type { DiagnosticsOptions, ParkedEntry } from "./core/diagnostics.js";
export { EVENT_CHANNELS } from "./core/events.js";
export type {
  BoundaryEvent, RejectEvent, DropEvent, ParkedWarningEvent, BreakerStateEvent, LimitChangeEvent, AdmissionRejectEvent,
} from "./core/events.js";
