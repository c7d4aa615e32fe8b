/**
 * The `sluice` command (`bin/sluice.js` runs it compiled, from `dist/cli/`, or from the sources
 * through tsx in a clone that has not been built):
 *
 *   sluice demo <oom|agent|orders|broker> [--report FILE] [--json] [--dashboard] [--port N] [demo flags]
 *   sluice bench [bench flags]
 *
 * Flags are parsed with `node:util`'s `parseArgs`; the CLI takes its own flags out of a demo's
 * arguments and hands the rest to the demo, which parses them itself. Exit codes: 0 done and
 * the demo's checks held, 1 failed, 2 bad usage, 130 interrupted.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import type { DemoMain, DemoResult } from "./demo.js";
import { sibling } from "./sibling.js";
import { serveDashboard, writeReport, type ServedDashboard } from "../src/metrics/index.js";

/** The demos and the module of each, without its extension (loaded when asked for: they land with their layers). */
export const DEMOS: Readonly<Record<string, { readonly file: string; readonly what: string }>> = {
  oom: { file: "./oom", what: "seed 000's OOM (parked senders) and its fix, side by side" },
  agent: { file: "./agent", what: "an HTTP agent behind sluice/http admission control" },
  orders: { file: "../examples/order-service/demo", what: "the order service, end to end" },
  broker: { file: "./broker", what: "backpressure across NATS JetStream" },
};

const USAGE = `usage: sluice <command> [options]

commands:
  demo <name>   run a demo: ${Object.keys(DEMOS).join(", ")}
  bench         run the benchmarks (flags go to bench/run.ts; sluice bench --help)

sluice demo <name> --help    a demo's flags
`;

const DEMO_USAGE = `usage: sluice demo <${Object.keys(DEMOS).join("|")}> [options] [demo flags]

${Object.entries(DEMOS).map(([k, d]) => `  ${k.padEnd(8)}${d.what}`).join("\n")}

options:
  --report FILE   write the run as a self-contained HTML report (charts, no network)
  --json          print the run's final figures as one JSON object, the last line of stdout
  --dashboard     serve a live dashboard of the run (its URL is printed on stderr)
  --port N        the dashboard's port (default: any free port)
  -h, --help      this text, and the demo's own flags

Other flags are the demo's own (e.g. sluice demo oom --duration 5).
`;

/** A bad command line: printed with the usage, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** What the CLI takes out of a demo's arguments. */
export interface DemoFlags {
  readonly report: string | undefined;
  readonly json: boolean;
  readonly dashboard: boolean;
  readonly port: number | undefined;
  readonly help: boolean;
  /** The rest, in order: the demo's own arguments. */
  readonly rest: string[];
}

/**
 * Splits a demo's arguments into the CLI's flags and the demo's own, with `parseArgs`' tokens
 * (so `--report=FILE` and `--report FILE` both work, and everything else passes through as it
 * was written).
 */
export function splitDemoArgs(args: readonly string[]): DemoFlags {
  const own = new Set(["report", "json", "dashboard", "port", "help"]);
  const { tokens } = parseArgs({
    args: [...args],
    options: {
      report: { type: "string" },
      json: { type: "boolean" },
      dashboard: { type: "boolean" },
      port: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const taken = new Set<number>();
  let report: string | undefined;
  let port: number | undefined;
  let json = false;
  let dashboard = false;
  let help = false;
  for (const t of tokens) {
    if (t.kind === "option-terminator") break; // after "--": all the demo's
    if (t.kind !== "option" || !own.has(t.name)) continue;
    taken.add(t.index);
    const needsValue = t.name === "report" || t.name === "port";
    let value = t.value;
    if (needsValue && t.inlineValue !== true) {
      if (value === undefined) throw new UsageError(`--${t.name} needs a value`);
      taken.add(t.index + 1);
    }
    switch (t.name) {
      case "report":
        if (value === undefined || value === "") throw new UsageError("--report needs a file name");
        report = value;
        break;
      case "port": {
        value ??= "";
        const n = Number(value);
        if (value === "" || !Number.isSafeInteger(n) || n < 0 || n > 65535) {
          throw new UsageError(`--port must be an integer from 0 to 65535, got ${JSON.stringify(value)}`);
        }
        port = n;
        break;
      }
      case "json":
        json = true;
        break;
      case "dashboard":
        dashboard = true;
        break;
      case "help":
        help = true;
        break;
    }
  }
  const rest = args.filter((_, i) => !taken.has(i));
  return { report, json, dashboard, port, help, rest };
}

interface DemoModule {
  readonly main?: DemoMain;
  readonly usage?: string;
}

/** Loads a demo's module; a clear error when it is not there (yet). */
export async function loadDemo(name: string): Promise<{ main: DemoMain; usage: string | undefined }> {
  const spec = DEMOS[name];
  if (spec === undefined) throw new UsageError(`unknown demo ${JSON.stringify(name)}: the demos are ${Object.keys(DEMOS).join(", ")}`);
  const url = pathToFileURL(sibling(spec.file, import.meta.url));
  let mod: DemoModule;
  try {
    mod = (await import(url.href)) as DemoModule;
  } catch (e) {
    const code = (e as { code?: string }).code;
    const message = String((e as Error).message);
    if ((code === "ERR_MODULE_NOT_FOUND" || code === "ENOENT") && message.includes(fileURLToPath(url))) {
      throw new Error(`sluice demo ${name}: ${fileURLToPath(url)} is not there (yet): this demo comes with its layer`);
    }
    const peer = /Cannot find package '([^']+)'/.exec(message)?.[1];
    if (code === "ERR_MODULE_NOT_FOUND" && peer !== undefined) {
      throw new Error(`sluice demo ${name} needs the package ${JSON.stringify(peer)}, an optional peer dependency of sluice: npm install ${peer}`);
    }
    throw e;
  }
  if (typeof mod.main !== "function") throw new Error(`sluice demo ${name}: ${fileURLToPath(url)} exports no main (see demo/demo.ts)`);
  return { main: mod.main, usage: typeof mod.usage === "string" ? mod.usage : undefined };
}

/** Prints a progress line on stderr while a run lasts longer than a few seconds. */
function progress(label: string): () => void {
  const t0 = Date.now();
  const tty = process.stderr.isTTY === true;
  let shown = false;
  const timer = setInterval(() => {
    const s = Math.round((Date.now() - t0) / 1000);
    if (s < 3) return;
    if (tty) {
      process.stderr.write(`\r\x1b[2K${label}: running, ${s} s`);
      shown = true;
    } else if (s % 10 === 0) {
      process.stderr.write(`${label}: running, ${s} s\n`);
    }
  }, 1000);
  timer.unref();
  return () => {
    clearInterval(timer);
    if (shown) process.stderr.write("\r\x1b[2K");
  };
}

/** `sluice demo ...`: returns the exit code. */
export async function demoCommand(args: readonly string[], out: (line: string) => void = (l) => console.log(l)): Promise<number> {
  const [name, ...after] = args;
  if (name === undefined || name === "--help" || name === "-h") {
    process.stdout.write(DEMO_USAGE);
    return name === undefined ? 2 : 0;
  }
  if (name.startsWith("-")) throw new UsageError(`sluice demo: the demo's name comes first, got ${JSON.stringify(name)}`);
  const flags = splitDemoArgs(after);
  const demo = await loadDemo(name);
  if (flags.help) {
    process.stdout.write(DEMO_USAGE);
    if (demo.usage !== undefined) {
      process.stdout.write(`\n${name}'s own flags:\n\n${demo.usage}`);
      return 0;
    }
  }
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  let served: ServedDashboard | undefined;
  const stop = progress(`sluice demo ${name}`);
  let result: DemoResult;
  try {
    if (flags.dashboard) {
      served = await serveDashboard({ port: flags.port, title: `sluice demo ${name}` });
      process.stderr.write(`sluice: dashboard of this run at ${served.url}\n`);
    }
    const help = flags.help ? ["--help"] : [];
    result = await demo.main({ args: [...flags.rest, ...help], out, signal: controller.signal });
  } finally {
    stop();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await served?.close();
  }
  if (flags.help) return 0;
  if (flags.report !== undefined) {
    const file = writeReport(flags.report, {
      title: `sluice demo ${name}: ${result.title}`,
      subtitle: `sluice demo ${args.join(" ")}`,
      sections: [{ title: result.title, verdict: result.verdict, ok: result.ok, figures: result.figures, charts: result.charts }],
    });
    process.stderr.write(`sluice: report written to ${file}\n`);
  }
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ demo: result.demo, ok: result.ok, verdict: result.verdict, ...result.figures })}\n`);
  }
  if (controller.signal.aborted) return 130;
  return result.ok ? 0 : 1;
}

/** `sluice bench ...`: runs bench/run.ts with the same flags; returns its exit code. */
export function benchCommand(args: readonly string[]): Promise<number> {
  const runFile = fileURLToPath(new URL("../bench/run.ts", import.meta.url));
  const root = fileURLToPath(new URL("..", import.meta.url));
  if (!import.meta.url.endsWith(".ts") || !existsSync(runFile)) {
    // The compiled CLI of an installed package: the benchmarks and their peers are not published.
    process.stderr.write("sluice bench: the benchmarks run from a clone of the repository (npm run bench there); the published package does not carry them or the peers they compare against\n");
    return Promise.resolve(1);
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, runFile, ...args], { cwd: root, stdio: "inherit" });
    child.on("error", reject);
    child.on("close", (code, signal) => resolve(code ?? (signal === "SIGINT" ? 130 : 1)));
  });
}

/** The whole command line; returns the exit code. */
export async function cli(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "demo":
        return await demoCommand(rest);
      case "bench":
        return await benchCommand(rest);
      case undefined:
        process.stderr.write(USAGE);
        return 2;
      case "help":
      case "--help":
      case "-h":
        process.stdout.write(USAGE);
        return 0;
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (e) {
    if (e instanceof UsageError || (e as { name?: string }).name === "UsageError" ||
        (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS") === true) {
      process.stderr.write(`sluice: ${(e as Error).message}\n\n${command === "demo" ? DEMO_USAGE : USAGE}`);
      return 2;
    }
    process.stderr.write(`sluice: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  cli(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`sluice: ${String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
