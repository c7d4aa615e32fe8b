/**
 * The metric catalog (internal): which stat of which kind of boundary becomes which metric,
 * shared by the Prometheus and the OpenTelemetry exporters, and the grouping that bounds label
 * cardinality.
 *
 * Invariants:
 *  - Every metric is defined here once, statically (exporters register them all up front);
 *    values are read from a `snapshot()` taken when the exporter is asked, never per operation.
 *  - Per kind, at most `maxSeriesPerKind` names get series of their own (the first ones, in
 *    registration order); the named boundaries past that are summed into one series named
 *    `_other`, and boundaries observed without a name into one named `_unnamed`. So the series
 *    of one metric number at most `maxSeriesPerKind + 2` (times its extra label's values).
 *  - Numeric stats of a kind that has no catalog entry for them go to one shared gauge,
 *    `sluice_boundary_stat{kind, name, stat}`, under the same bound.
 */
import type { SnapshotEntry } from "./snapshot.js";

export type MetricType = "gauge" | "counter";

/** One value of a metric: extra labels (beyond `name`, and `kind` for shared metrics) and the value. */
export interface Sample {
  readonly labels?: Readonly<Record<string, string>>;
  readonly value: number;
}

/** One metric. */
export interface MetricSpec {
  readonly kind: string;
  /** The stat it reads (a field of the boundary's stats). */
  readonly stat: string;
  readonly type: MetricType;
  readonly help: string;
  /** The Prometheus name (`sluice_...`, counters end in `_total`). */
  readonly prom: string;
  /** The OpenTelemetry name (`sluice.<kind>.<stat>`). */
  readonly otel: string;
  /** The OpenTelemetry unit ("s", "{call}", ...). */
  readonly unit: string;
  /** Extra label names (e.g. `reason`, `quantile`, `state`). */
  readonly labels: readonly string[];
  /** Its values for one boundary; nothing when the field is missing or not a number. */
  values(entry: SnapshotEntry): Sample[];
}

export const DEFAULT_MAX_SERIES_PER_KIND = 100;
export const OTHER = "_other";
export const UNNAMED = "_unnamed";

const snake = (s: string): string => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`).replace(/-/g, "_");

function num(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "boolean") return v ? 1 : 0;
  return undefined;
}

function plain(entry: SnapshotEntry, stat: string, scale = 1): Sample[] {
  const v = num(entry[stat]);
  return v === undefined ? [] : [{ value: v * scale }];
}

type Def = readonly [stat: string, type: MetricType, help: string, unit?: string];

/** A plain stat: `sluice_<kind>_<stat>` (`_total` for counters); `ms` stats are exported in seconds. */
function define(kind: string, [stat, type, help, unit = "1"]: Def): MetricSpec {
  const ms = stat.endsWith("Ms");
  const base = ms ? `${snake(stat.slice(0, -2))}_seconds` : snake(stat);
  return {
    kind,
    stat,
    type,
    help,
    prom: `sluice_${snake(kind)}_${base}${type === "counter" ? "_total" : ""}`,
    otel: `sluice.${kind}.${ms ? stat.slice(0, -2) : stat}`,
    unit: ms ? "s" : unit,
    labels: [],
    values: (e) => plain(e, stat, ms ? 1 / 1000 : 1),
  };
}

/** A `SummarySnapshot` stat (ms): a gauge of its recent p50 / p99 / max, in seconds, by `quantile`. */
function quantiles(kind: string, stat: string, help: string): MetricSpec {
  const base = snake(stat.replace(/Time$/, ""));
  return {
    kind,
    stat,
    type: "gauge",
    help: `${help} (recent window, seconds; quantile "1" is the max)`,
    prom: `sluice_${snake(kind)}_${base}_seconds`,
    otel: `sluice.${kind}.${stat}`,
    unit: "s",
    labels: ["quantile"],
    values(e) {
      const s = e[stat] as { p50?: unknown; p99?: unknown; max?: unknown } | undefined;
      if (s === null || typeof s !== "object") return [];
      const out: Sample[] = [];
      for (const [q, v] of [["0.5", s.p50], ["0.99", s.p99], ["1", s.max]] as const) {
        if (typeof v === "number") out.push({ labels: { quantile: q }, value: v / 1000 });
      }
      return out;
    },
  };
}

/** A stat that is an object of counts by reason (admission's `rejected`). */
function byReason(kind: string, stat: string, help: string): MetricSpec {
  return {
    kind,
    stat,
    type: "counter",
    help,
    prom: `sluice_${snake(kind)}_${snake(stat)}_total`,
    otel: `sluice.${kind}.${stat}`,
    unit: "1",
    labels: ["reason"],
    values(e) {
      const v = e[stat];
      if (typeof v === "number") return [{ labels: { reason: "all" }, value: v }];
      if (v === null || typeof v !== "object") return [];
      const out: Sample[] = [];
      for (const [reason, n] of Object.entries(v)) if (typeof n === "number") out.push({ labels: { reason }, value: n });
      return out;
    },
  };
}

const BREAKER_STATES = ["closed", "open", "half-open"] as const;

const breakerState: MetricSpec = {
  kind: "circuit-breaker",
  stat: "state",
  type: "gauge",
  help: "1 for the breaker's current state, 0 for the others",
  prom: "sluice_circuit_breaker_state",
  otel: "sluice.circuit-breaker.state",
  unit: "1",
  labels: ["state"],
  values: (e) => BREAKER_STATES.map((s) => ({ labels: { state: s }, value: e.state === s ? 1 : 0 })),
};

const RATE: Def[] = [
  ["rate", "gauge", "tokens added per second"],
  ["burst", "gauge", "bucket size"],
  ["tokens", "gauge", "tokens in the bucket now (negative while reservations are outstanding)"],
  ["allowed", "counter", "allow() calls that took tokens"],
  ["refused", "counter", "allow()/reserve() calls refused"],
  ["reserved", "counter", "reservations made"],
  ["cancelled", "counter", "reservations cancelled"],
  ["passed", "counter", "wait() calls that went through"],
  ["waited", "counter", "wait() calls that had to wait"],
  ["rejected", "counter", "wait() calls rejected with BusyError"],
  ["aborted", "counter", "wait() calls aborted while waiting"],
  ["waiting", "gauge", "wait() calls waiting now"],
];

const DEFS: Record<string, Def[]> = {
  channel: [
    ["capacity", "gauge", "buffer size"],
    ["length", "gauge", "values in the buffer now"],
    ["closed", "gauge", "1 once closed"],
    ["sent", "counter", "values accepted (buffered or handed off)"],
    ["received", "counter", "values taken by receivers"],
    ["sendsWaited", "counter", "sends that had to park"],
    ["recvsWaited", "counter", "receives that had to park"],
    ["parkedSenders", "gauge", "senders parked now"],
    ["parkedReceivers", "gauge", "receivers parked now"],
    ["peakParkedSenders", "gauge", "most senders ever parked at once"],
    ["peakParkedReceivers", "gauge", "most receivers ever parked at once"],
    ["rejectedSends", "counter", "sends refused at maxParkedSends"],
    ["rejectedRecvs", "counter", "receives refused at maxParkedRecvs"],
  ],
  semaphore: [
    ["size", "gauge", "units"],
    ["held", "gauge", "units held now"],
    ["waiting", "gauge", "callers waiting now"],
    ["waited", "counter", "acquires that had to wait"],
    ["peakWaiting", "gauge", "most callers ever waiting at once"],
    ["rejected", "counter", "acquires refused at maxWaiters"],
  ],
  errgroup: [
    ["limit", "gauge", "most tasks running at once (+Inf: no limit)"],
    ["running", "gauge", "tasks running now"],
    ["waiting", "gauge", "go() calls waiting for a slot now"],
    ["accepted", "counter", "tasks accepted"],
    ["settled", "counter", "tasks settled"],
    ["failed", "counter", "tasks that failed"],
    ["aborted", "counter", "waiting go() calls withdrawn by their signal"],
    ["waited", "counter", "go() calls that had to wait for a slot"],
  ],
  pool: [
    ["concurrency", "gauge", "the concurrency now"],
    ["queued", "gauge", "tasks accepted and not started"],
    ["running", "gauge", "tasks running now"],
    ["waiting", "gauge", "submitters blocked now"],
    ["completed", "counter", "tasks that fulfilled"],
    ["failed", "counter", "tasks that threw or rejected"],
    ["dropped", "counter", "queued tasks dropped (drop-oldest)"],
    ["aborted", "counter", "tasks withdrawn before running"],
    ["waited", "counter", "submissions that had to block"],
    ["aboveHighWater", "gauge", "1 while the queue is above its high-water mark"],
  ],
  "rate-limiter": RATE,
  "keyed-rate-limiter": [
    ...RATE,
    ["keys", "gauge", "buckets held now"],
    ["maxKeys", "gauge", "most buckets kept"],
    ["evicted", "counter", "buckets evicted (least recently used)"],
  ],
  "adaptive-limit": [
    ["limit", "gauge", "the current limit"],
    ["minLimit", "gauge", "lowest limit"],
    ["maxLimit", "gauge", "highest limit"],
    ["inflight", "gauge", "units in flight now"],
    ["started", "counter", "units started"],
    ["successes", "counter", "units that succeeded"],
    ["drops", "counter", "units dropped (backed off)"],
    ["increases", "counter", "samples that raised the limit"],
    ["decreases", "counter", "samples that lowered the limit"],
    ["lastRttMs", "gauge", "RTT of the latest success"],
  ],
  "circuit-breaker": [
    ["calls", "counter", "calls that ran"],
    ["successes", "counter", "calls that succeeded"],
    ["failures", "counter", "calls that failed"],
    ["aborted", "counter", "calls whose caller aborted"],
    ["running", "gauge", "calls running now"],
    ["rejected", "counter", "calls refused with BreakerOpenError"],
    ["transitions", "counter", "state changes"],
  ],
  "retry-budget": [
    ["available", "gauge", "retries available now"],
    ["deposits", "counter", "successes deposited"],
    ["withdrawals", "counter", "retries granted"],
    ["refused", "counter", "retries refused"],
  ],
  "pipeline-stage": [
    ["in", "counter", "items taken in"],
    ["out", "counter", "items passed on"],
    ["dropped", "counter", "items dropped"],
    ["errors", "counter", "items that failed"],
    ["busyMs", "counter", "time spent working"],
    ["blockedMs", "counter", "time waiting for room downstream"],
  ],
  broadcast: [
    ["subscribers", "gauge", "subscribers now"],
    ["published", "counter", "values published"],
    ["dropped", "counter", "values dropped for slow subscribers"],
    ["disconnected", "counter", "subscribers disconnected for lagging"],
  ],
  admission: [
    ["concurrency", "gauge", "requests allowed to run at once"],
    ["queueSize", "gauge", "requests allowed to wait"],
    ["received", "counter", "requests received"],
    ["completed", "counter", "admitted requests whose handler finished"],
    ["abandoned", "counter", "queued requests whose client left"],
    ["admitted", "counter", "requests admitted"],
    ["queued", "gauge", "requests waiting now"],
    ["inFlight", "gauge", "requests running now"],
    ["timedOut", "counter", "requests past their deadline"],
    ["clientAborted", "counter", "requests whose client left"],
  ],
  "jetstream-source": [
    ["received", "counter", "messages received"],
    ["acked", "counter", "messages acked"],
    ["naked", "counter", "messages nak'ed for redelivery"],
    ["termed", "counter", "messages terminated"],
    ["deadLettered", "counter", "messages sent to the dead-letter subject"],
    ["deadLetterErrors", "counter", "dead-letter publishes that failed"],
    ["failed", "counter", "handler failures"],
    ["inFlight", "gauge", "messages held now (received, not settled)"],
    ["requested", "gauge", "messages asked for by open fetches and not yet received"],
    ["fetches", "counter", "fetch requests"],
    ["fetchErrors", "counter", "fetches that failed (retried after a backoff)"],
    ["working", "counter", "working() signals sent for long tasks"],
    ["replyErrors", "counter", "acks, naks, terms or working() that could not be sent"],
    ["maxInFlight", "gauge", "most messages held at once"],
  ],
  "jetstream-sink": [
    ["maxInFlight", "gauge", "publishes allowed in flight"],
    ["inFlight", "gauge", "publishes in flight now"],
    ["waiting", "gauge", "publishes waiting for room now"],
    ["published", "counter", "messages published"],
    ["duplicates", "counter", "publishes the server saw as duplicates"],
    ["busy", "counter", "publishes refused with BusyError"],
    ["failed", "counter", "publishes that failed"],
    ["aborted", "counter", "publishes withdrawn before sending"],
    ["abandoned", "counter", "callers that gave up after sending"],
  ],
  "redis-stream-source": [
    ["read", "counter", "new entries read"],
    ["recovered", "counter", "own pending entries read again at start"],
    ["claimed", "counter", "entries claimed from idle consumers"],
    ["completed", "counter", "handlers that succeeded (entry acked and deleted)"],
    ["duplicates", "counter", "completed entries another consumer had already finished"],
    ["failed", "counter", "handlers that failed"],
    ["deadLettered", "counter", "entries moved to the dead-letter stream"],
    ["ackErrors", "counter", "acks that could not reach Redis"],
    ["errors", "counter", "Redis errors while reading or claiming (retried)"],
    ["pruned", "counter", "dead consumers deleted from the group"],
    ["inFlight", "gauge", "entries handed to the pool and not settled"],
  ],
  "redis-stream-sink": [
    ["maxLength", "gauge", "entries allowed in the stream"],
    ["added", "counter", "entries added"],
    ["refused", "counter", "adds refused at maxLength (BusyError)"],
    ["unavailable", "counter", "adds refused while Redis was unavailable"],
    ["failed", "counter", "adds that failed"],
    ["inFlight", "gauge", "adds in flight now"],
  ],
};

function buildCatalog(): MetricSpec[] {
  const out: MetricSpec[] = [];
  for (const [kind, defs] of Object.entries(DEFS)) for (const d of defs) out.push(define(kind, d));
  out.push(quantiles("pool", "waitTime", "time from submission to start"));
  out.push(quantiles("pool", "runTime", "time from start to settle"));
  out.push(breakerState);
  out.push(byReason("admission", "rejected", "requests refused, by reason"));
  out.push({ ...byReason("pool", "rejectedByReason", "tasks refused admission, by reason (queueFull, maxWaiting, closed)"), stat: "rejected", prom: "sluice_pool_rejected_total", otel: "sluice.pool.rejected" });
  return out;
}

/** Every metric of the catalog. */
export const CATALOG: readonly MetricSpec[] = buildCatalog();

/** The stats each kind exports through the catalog (the rest go to the shared gauge). */
const COVERED = new Map<string, Set<string>>();
for (const m of CATALOG) {
  let s = COVERED.get(m.kind);
  if (s === undefined) COVERED.set(m.kind, (s = new Set()));
  s.add(m.stat);
}

/** The shared gauge for numeric stats the catalog does not name. */
export const OTHER_STAT = {
  prom: "sluice_boundary_stat",
  otel: "sluice.boundary.stat",
  help: "numeric stats of boundaries that have no metric of their own, by kind and stat",
};

/** Not exported as a stat of its own: identity and flags the entry carries. */
const NOT_STATS = new Set(["kind", "name", "named"]);

/** The numeric stats of `entry` that no catalog metric reads, as `[stat, value]`. */
export function uncovered(entry: SnapshotEntry): [string, number][] {
  const covered = COVERED.get(entry.kind);
  const out: [string, number][] = [];
  for (const [k, v] of Object.entries(entry)) {
    if (NOT_STATS.has(k) || covered?.has(k) === true) continue;
    const n = num(v);
    if (n !== undefined) out.push([k, n]);
  }
  return out;
}

/** The series name every boundary of `entries` is exported under, per kind (see the invariants). */
export function seriesNames(entries: readonly SnapshotEntry[], maxSeriesPerKind: number): string[] {
  const seen = new Map<string, Set<string>>();
  return entries.map((e) => {
    if (!e.named) return UNNAMED;
    let names = seen.get(e.kind);
    if (names === undefined) seen.set(e.kind, (names = new Set()));
    if (names.has(e.name)) return e.name;
    if (names.size >= maxSeriesPerKind) return OTHER;
    names.add(e.name);
    return e.name;
  });
}

/** Checks the `maxSeriesPerKind` option. */
export function checkMaxSeries(v: unknown): number {
  if (v === undefined) return DEFAULT_MAX_SERIES_PER_KIND;
  if (typeof v !== "number") throw new TypeError(`options.maxSeriesPerKind must be a number, got ${typeof v}`);
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new RangeError(`options.maxSeriesPerKind must be a non-negative safe integer, got ${v}`);
  }
  return v;
}

/**
 * The values of every metric for `entries`, summed by series: for each metric, a map from the
 * label key (`name` and the extra labels) to the labels and the sum.
 */
export function collect(entries: readonly SnapshotEntry[], maxSeriesPerKind: number): {
  byMetric: Map<MetricSpec, Map<string, { labels: Record<string, string>; value: number }>>;
  other: Map<string, { labels: Record<string, string>; value: number }>;
} {
  const names = seriesNames(entries, maxSeriesPerKind);
  const byKind = new Map<string, MetricSpec[]>();
  for (const m of CATALOG) {
    let l = byKind.get(m.kind);
    if (l === undefined) byKind.set(m.kind, (l = []));
    l.push(m);
  }
  const byMetric = new Map<MetricSpec, Map<string, { labels: Record<string, string>; value: number }>>();
  const other = new Map<string, { labels: Record<string, string>; value: number }>();
  const add = (
    into: Map<string, { labels: Record<string, string>; value: number }>,
    labels: Record<string, string>,
    value: number,
  ): void => {
    const key = JSON.stringify(labels);
    const was = into.get(key);
    if (was === undefined) into.set(key, { labels, value });
    else was.value += value;
  };
  entries.forEach((e, i) => {
    const name = names[i]!;
    for (const m of byKind.get(e.kind) ?? []) {
      let series = byMetric.get(m);
      if (series === undefined) byMetric.set(m, (series = new Map()));
      for (const s of m.values(e)) add(series, { name, ...s.labels }, s.value);
    }
    for (const [stat, value] of uncovered(e)) add(other, { kind: e.kind, name, stat }, value);
  });
  return { byMetric, other };
}
