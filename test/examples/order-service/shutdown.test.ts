import assert from "node:assert/strict";
import { once } from "node:events";
import { test } from "node:test";
import { Shutdown, ShutdownDeadlineError } from "../../../examples/order-service/shutdown.js";

test("the stop aborts the intake at once, and the hard signal drainMs later with ShutdownDeadlineError", { timeout: 5000 }, async () => {
  const ctl = new AbortController();
  const s = new Shutdown(ctl.signal, 20);
  assert.equal(s.intake.aborted, false);
  const reason = new Error("SIGTERM");
  ctl.abort(reason);
  assert.equal(s.intake.aborted, true);
  assert.equal(s.intake.reason, reason);
  assert.equal(s.hard.aborted, false);
  await once(s.hard, "abort");
  assert.ok(s.hard.reason instanceof ShutdownDeadlineError);
  assert.equal((s.hard.reason as ShutdownDeadlineError).drainMs, 20);
  s.dispose();
});

test("dispose before the deadline: the hard signal never aborts", { timeout: 5000 }, async () => {
  const ctl = new AbortController();
  const s = new Shutdown(ctl.signal, 10);
  const witness = new Shutdown(ctl.signal, 10); // armed at the same moment, not disposed
  ctl.abort();
  s.dispose();
  await once(witness.hard, "abort");
  assert.equal(s.hard.aborted, false);
});

test("abortNow stops and aborts at once; an already-aborted stop signal starts the shutdown", () => {
  const s = new Shutdown(undefined, 60_000);
  s.abortNow();
  assert.equal(s.intake.aborted, true);
  assert.equal(s.hard.aborted, true);
  const pre = new Shutdown(AbortSignal.abort(), 60_000);
  assert.equal(pre.intake.aborted, true);
  pre.dispose();
  assert.throws(() => new Shutdown(undefined, -1), /drainMs must be a finite number >= 0, got -1/);
});
