/**
 * `sluice/metrics`: every observed boundary, visible. `snapshot()` and `diagnostics()` read the
 * registry of live boundaries (named ones, or all with `observeAll()`); `registerPrometheus`
 * and `registerOpenTelemetry` export them (values read when scraped, never per operation);
 * `serveDashboard` shows them live; `writeReport` draws a run as a self-contained HTML file.
 */
export { snapshot, diagnostics, observeAll } from "./snapshot.js";
export type { SnapshotEntry, Diagnostics, BoundaryKind } from "./snapshot.js";
export { registerPrometheus } from "./prometheus.js";
export type { PrometheusOptions, PrometheusHandle } from "./prometheus.js";
export { registerOpenTelemetry } from "./opentelemetry.js";
export type { OpenTelemetryOptions, OpenTelemetryHandle } from "./opentelemetry.js";
export { EVENT_CHANNELS } from "../core/events.js";
export type {
  BoundaryEvent, RejectEvent, DropEvent, ParkedWarningEvent, BreakerStateEvent, LimitChangeEvent, AdmissionRejectEvent,
} from "../core/events.js";
export { createDashboard, serveDashboard } from "./dashboard.js";
export type { Dashboard, DashboardOptions, ServeDashboardOptions, ServedDashboard } from "./dashboard.js";
export type { Frame, FrameBoundary } from "./history.js";
export type { BoundaryView, ViewCounters } from "./view.js";
export { renderReport, writeReport } from "./report.js";
export type { Report, ReportSection, ReportChart, ReportLineChart, ReportBarChart, ReportSeries, ReportBar } from "./report.js";
