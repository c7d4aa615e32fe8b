/**
 * `npm run orders -- [options]`: seed 001's order service, consuming a generated load into
 * PostgreSQL (127.0.0.1:5432, database `test`). SIGTERM or SIGINT stops the intake and drains
 * within `--drain-ms`; a second signal cuts the drain short. Prints progress, then the summary
 * (with `--json`, last, as one JSON line). Exit code 0 when the counts add up (and match the
 * table), 1 otherwise, 2 for a bad command line or an unreachable database.
 */
import { parseCli, USAGE, UsageError } from "./options.js";
import { runSession } from "./session.js";

const out = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

async function main(): Promise<number> {
  let o;
  try {
    o = parseCli(process.argv.slice(2));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`${e.message}\n${USAGE}\n`);
    return 2;
  }
  if (o === "help") {
    out(USAGE);
    return 0;
  }
  const stop = new AbortController();
  const abortNow = new AbortController();
  const onSignal = (name: NodeJS.Signals): void => {
    if (!stop.signal.aborted) {
      out(`${name}`);
      stop.abort(new Error(name));
    } else abortNow.abort(new Error(name));
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  try {
    const r = await runSession(o, { out, stop: stop.signal, abortNow: abortNow.signal });
    if (o.json) {
      const s = r.summary;
      out(JSON.stringify({
        ok: r.ok, outcome: s.outcome, consumed: s.consumed, persisted: s.persisted, acked: s.acked, deadLettered: s.deadLettered,
        abandoned: s.abandoned, invalid: s.deadLetters.invalid, unknownCustomer: s.deadLetters.unknownCustomer,
        enrichFailed: s.deadLetters.enrichFailed, retries: s.retries, batches: s.batches, table: r.table, rows: r.rowsAfter,
        rowsBefore: r.rowsBefore, rewritten: r.rewritten, elapsedMs: Math.round(s.elapsedMs),
      }));
    }
    return r.ok ? 0 : 1;
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    return 2;
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  }
}

process.exitCode = await main();
