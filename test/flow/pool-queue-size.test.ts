/**
 * `pool.queueSize`: the queue's capacity (the `queue` option), which brokers' sources add to the
 * free slots to know how much work they may pull.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Pool } from "../../src/flow/index.js";

test("queueSize is the queue option (default 0), unchanged by queued work", async () => {
  assert.equal(new Pool({ concurrency: 2 }).queueSize, 0);
  const pool = new Pool({ concurrency: 1, queue: 3 });
  assert.equal(pool.queueSize, 3);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  await pool.submit(() => gate);
  await pool.submit(() => undefined);
  assert.equal(pool.queued, 1);
  assert.equal(pool.queueSize, 3);
  release();
  await pool.drain();
  assert.equal(pool.queueSize, 3);
});
