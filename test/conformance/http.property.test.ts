/**
 * Conformance, randomized (fast-check): for random concurrency, queue sizes, orders and
 * handler times, over real sockets, every request is answered exactly once (200, or a
 * conformant 503), never more than `concurrency` handlers run at once, and the stats add up.
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { test } from "node:test";
import fc from "fast-check";
import { Admission } from "../../src/http/index.js";
import { assertRefusal, closeServer, fetchReply, listenOn } from "./http-client.js";
import { until } from "./helpers.js";

test("random load: answered once each, concurrency never exceeded, stats add up", { timeout: 180_000 }, async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 0, max: 6 }),
      fc.constantFrom("fifo" as const, "lifo" as const),
      fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 20 }),
      async (concurrency, queue, order, delays) => {
        const admission = new Admission({ concurrency, queue, order });
        let running = 0;
        let max = 0;
        let handled = 0;
        const server = createServer(admission.handler(async (req, res) => {
          handled++;
          max = Math.max(max, ++running);
          const d = Number(new URL(req.url ?? "/", "http://x").searchParams.get("d"));
          await new Promise<void>((r) => setTimeout(r, d));
          running--;
          res.end("ok");
        }));
        const port = await listenOn(server);
        try {
          const replies = await Promise.all(delays.map((d) => fetchReply(port, { path: `/?d=${d}` })));
          const ok = replies.filter((r) => r.status === 200).length;
          for (const r of replies) if (r.status !== 200) assertRefusal(r, 503);
          assert.ok(max <= concurrency, `max ${max} > ${concurrency}`);
          assert.equal(ok, handled, "every 200 was handled once");
          await until(() => admission.inFlight === 0, "all slots back");
          const s = admission.stats;
          assert.equal(s.admitted, ok);
          assert.equal(s.rejected.queueFull + s.rejected.queueTimeout + s.rejected.closed + s.rejected.quota, delays.length - ok);
          assert.equal(s.queued, 0);
          assert.ok(ok >= Math.min(delays.length, concurrency), "at least the concurrency got in");
        } finally {
          await closeServer(server);
        }
      },
    ),
    { numRuns: 25 },
  );
});
