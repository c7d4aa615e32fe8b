/**
 * Flags of `npm run demo` and the messages its two child runs send to the parent over IPC.
 * Shared by the parent (`oom.ts`) and the children (`oom-run.ts`).
 */
import { parseArgs as parseNodeArgs } from "node:util";
import type { ChannelStats } from "../src/index.js";

/** What one run of the demo is given. */
export interface DemoOptions {
  /** How long each run lasts, in seconds. */
  readonly duration: number;
  /** Messages per second the broker publishes. */
  readonly rate: number;
  /** Bytes of payload per message. */
  readonly payload: number;
  /** Milliseconds the handler spends per message. */
  readonly workMs: number;
  /** Safety cap of the bug run: it stops once more than this many messages are pending. */
  readonly cap: number;
  /**
   * Safety cap of the bug run: it stops once its heap passes this many MB (or once its pending
   * payloads alone would).
   */
  readonly heapCapMb: number;
  /** Capacity of the fix run's channel. */
  readonly capacity: number;
}

export const DEFAULTS: DemoOptions = {
  duration: 12,
  rate: 1000,
  payload: 10 * 1024,
  workMs: 3,
  cap: 5000,
  heapCapMb: 512,
  capacity: 256,
};

export const USAGE = `Usage: npm run demo -- [flags]

Reproduces the seed's OOM in Node: a broker delivers messages faster than a slow handler
processes them. Two child processes run side by side, each with its own heap:
  bug  one un-awaited ch.send(msg) per message into an unbuffered channel: parked senders
       pile up, each holding its message, until the safety cap stops the run;
  fix  one producer loop that awaits select([send(ch, msg), recv(done(signal))]) into a
       channel of capacity ${DEFAULTS.capacity}: the broker is pulled only as fast as the handler goes.

Flags:
  --duration <s>     seconds each run lasts            (default ${DEFAULTS.duration})
  --rate <n>         messages/s the broker publishes   (default ${DEFAULTS.rate})
  --payload <bytes>  payload size per message          (default ${DEFAULTS.payload}, at most 1 MB)
  --work-ms <ms>     handler time per message          (default ${DEFAULTS.workMs}, i.e. ~${Math.round(1000 / DEFAULTS.workMs)}/s)
  --cap <n>          bug run's safety cap on pending   (default ${DEFAULTS.cap})
  --heap-cap <MB>    bug run's safety cap on heap MB   (default ${DEFAULTS.heapCapMb})
  --capacity <n>     fix run's channel capacity        (default ${DEFAULTS.capacity})
  --help             print this and exit
`;

/** A bad command line: the parent prints the message and the usage, and exits with code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

interface FlagSpec {
  key: keyof DemoOptions;
  integer: boolean;
  min: number;
  max: number;
}

const FLAGS: Record<string, FlagSpec> = {
  duration: { key: "duration", integer: false, min: 0.5, max: 3600 },
  rate: { key: "rate", integer: false, min: 1, max: 100_000 },
  payload: { key: "payload", integer: true, min: 0, max: 1024 * 1024 },
  "work-ms": { key: "workMs", integer: false, min: 0.01, max: 60_000 },
  cap: { key: "cap", integer: true, min: 1, max: 10_000_000 },
  "heap-cap": { key: "heapCapMb", integer: true, min: 16, max: 16 * 1024 },
  capacity: { key: "capacity", integer: true, min: 1, max: 1_000_000 },
};

/**
 * Parses the flags with `node:util`'s `parseArgs` (`--name value` or `--name=value`). Returns
 * `"help"` for `--help`/`-h`.
 *
 * @throws UsageError for an unknown flag, a missing value, or a value out of range.
 */
export function parseArgs(argv: readonly string[]): DemoOptions | "help" {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseNodeArgs({
      args: [...argv],
      options: {
        ...Object.fromEntries(Object.keys(FLAGS).map((k) => [k, { type: "string" as const }])),
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify a positional argument.*$/s, ""));
  }
  if (values.help === true) return "help";
  const out: Record<string, number> = { ...DEFAULTS };
  for (const [flag, spec] of Object.entries(FLAGS)) {
    const text = values[flag];
    if (text === undefined) continue;
    const name = `--${flag}`;
    if (typeof text !== "string" || text === "") throw new UsageError(`${name} needs a value`);
    const n = Number(text);
    if (!Number.isFinite(n) || (spec.integer && !Number.isSafeInteger(n)) || n < spec.min || n > spec.max) {
      const what = spec.integer ? "an integer" : "a number";
      throw new UsageError(`${name} must be ${what} from ${spec.min} to ${spec.max}, got ${JSON.stringify(text)}`);
    }
    out[spec.key] = n;
  }
  const options = out as unknown as DemoOptions;
  // The fix run holds up to capacity + 2 messages: that must fit under the memory cap too.
  const fixMb = (options.payload * (options.capacity + 2)) / (1024 * 1024);
  if (fixMb > options.heapCapMb / 2) {
    throw new UsageError(
      `--payload ${options.payload} x (--capacity ${options.capacity} + 2) is ${fixMb.toFixed(0)} MB held by the fix run: ` +
        `keep it under half of --heap-cap (${options.heapCapMb} MB)`,
    );
  }
  return options;
}

/** The two runs. */
export type RunName = "bug" | "fix";

/** One row of the table: a run's counters at `elapsed` seconds. */
export interface Sample {
  /** Seconds since the run started. */
  readonly elapsed: number;
  /** Messages the process took from the broker. */
  readonly accepted: number;
  /** Messages the handler finished. */
  readonly processed: number;
  /** `accepted - processed`: messages held in this process. */
  readonly pending: number;
  /** Senders parked on the channel now (`ch.stats.parkedSenders`). */
  readonly parked: number;
  /** Messages published on the broker and not yet taken by this process (broker-side lag). */
  readonly lag: number;
  /** Live memory after a full GC: V8 heap used + Buffer memory, in MB. */
  readonly heapMb: number;
}

/** Why a run ended. */
export type StopReason = "duration" | "pending-cap" | "heap-cap";

/** Messages from a child run to the parent. */
export type ChildMessage =
  | { readonly type: "ready" }
  | { readonly type: "sample"; readonly sample: Sample; readonly channel?: ChannelStats }
  | { readonly type: "warning"; readonly elapsed: number; readonly code: string; readonly name: string; readonly message: string }
  | { readonly type: "stopped"; readonly sample: Sample; readonly reason: StopReason }
  | {
      readonly type: "shutdown";
      /** Messages the handler finished after the stop (the fix drains its buffer). */
      readonly drained: number;
      /** Parked sends rejected by `close()` (never processed). */
      readonly rejected: number;
      /** Seconds the shutdown took. */
      readonly seconds: number;
    };

/** Messages from the parent to a child run. */
export type ParentMessage = { readonly type: "start" };
