/**
 * Conformance: DESIGN.md "Errors": named, exported error classes with a stable `code`; one
 * `BusyError` for all of sluice (re-exported, the same class everywhere).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import * as core from "../../src/index.js";
import * as flow from "../../src/flow/index.js";
import * as pipelineMod from "../../src/pipeline/index.js";
import * as http from "../../src/http/index.js";
import * as redis from "../../src/redis/index.js";

test("every exported error class has a stable code and its own name", { timeout: 10_000 }, () => {
  const expected: [new (...args: never[]) => Error, string, string, unknown[]][] = [
    [core.ChannelClosedError, "ChannelClosedError", "ERR_CHANNEL_CLOSED", []],
    [core.BusyError, "BusyError", "ERR_BUSY", []],
    [flow.DroppedError, "DroppedError", "ERR_DROPPED", []],
    [flow.PoolClosedError, "PoolClosedError", "ERR_POOL_CLOSED", []],
    [flow.BreakerOpenError, "BreakerOpenError", "ERR_BREAKER_OPEN", []],
    [pipelineMod.LaggedError, "LaggedError", "ERR_LAGGED", [3]],
  ];
  for (const [Cls, name, code, args] of expected) {
    const e = new (Cls as unknown as new (...a: unknown[]) => Error & { code: string })(...args);
    assert.ok(e instanceof Error);
    assert.equal(e.name, name);
    assert.equal(e.code, code);
  }
  const lagged = new pipelineMod.LaggedError(3);
  assert.equal(lagged.missed, 3);
  const busy = new core.BusyError("full", { retryAfterMs: 250 });
  assert.equal(busy.retryAfterMs, 250, "BusyError carries an optional retryAfterMs");
});

test("BusyError is one class for all of sluice (sluice, sluice/flow, sluice/redis re-exports)", { timeout: 10_000 }, () => {
  assert.equal(flow.BusyError, core.BusyError);
  assert.equal(redis.BusyError, core.BusyError);
  assert.ok(Object.prototype.isPrototypeOf.call(core.BusyError.prototype, http.RetryableResponseError.prototype), "an HTTP retryable response is a BusyError");
});
