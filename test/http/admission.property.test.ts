/**
 * Randomized tests of the admission engine over real loopback sockets (fast-check): random
 * concurrency, queue size, order and queue timeout; random requests that take random time,
 * fail, or whose clients leave. Properties: never more handlers in flight than the concurrency;
 * every client that stayed gets exactly one response, whose status is one the engine may send;
 * and the counters add up once everything settled.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { setTimeout as delay } from "node:timers/promises";
import { Admission } from "../../src/http/index.js";
import { RawClient, listen, waitUntil } from "./helpers.js";

interface Req {
  workMs: number;
  fails: boolean;
  leavesAfterMs: number | null;
}

const reqArb = fc.record({
  workMs: fc.integer({ min: 0, max: 4 }),
  fails: fc.integer({ min: 0, max: 9 }).map((n) => n < 2),
  leavesAfterMs: fc.option(fc.integer({ min: 0, max: 3 }), { freq: 4 }),
});

test("random traffic: bounded concurrency, exactly one answer per staying client, counters add up", { timeout: 120_000 }, async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 0, max: 4 }),
      fc.constantFrom("fifo" as const, "lifo" as const),
      fc.option(fc.integer({ min: 1, max: 6 }), { freq: 2 }),
      fc.array(reqArb, { minLength: 1, maxLength: 24 }),
      async (concurrency, queue, order, queueTimeoutMs, reqs: Req[]) => {
        const admission = new Admission({ concurrency, queue, order, queueTimeoutMs: queueTimeoutMs ?? undefined, onError: () => {} });
        let active = 0;
        let maxActive = 0;
        let overLimit = 0;
        const s = await listen(
          admission.handler(async (req, res) => {
            if (admission.inFlight > concurrency) overLimit++;
            active++;
            maxActive = Math.max(maxActive, active);
            try {
              const r = reqs[Number(req.url!.slice(1))]!;
              if (r.workMs > 0) await delay(r.workMs);
              if (r.fails) throw new Error("handler failure");
              res.end("ok");
            } finally {
              active--;
            }
          }),
        );
        const clients = reqs.map(() => new RawClient(s.port));
        try {
          const answers: number[][] = reqs.map(() => []);
          await Promise.all(clients.map((c) => c.connected()));
          const staying: Promise<void>[] = [];
          reqs.forEach((r, i) => {
            const c = clients[i]!;
            c.request("GET", `/${i}`);
            if (r.leavesAfterMs === null) {
              staying.push(c.response().then((res) => void answers[i]!.push(res.status)));
            } else {
              void delay(r.leavesAfterMs).then(() => c.close());
            }
          });
          await Promise.all(staying);
          const stayed = reqs.filter((r) => r.leavesAfterMs === null).length;
          await Promise.all(reqs.map((r, i) => (r.leavesAfterMs === null ? Promise.resolve() : clients[i]!.closedPromise)));
          // Every connection accepted and every leaver's closed on the server side (so each request the server
          // will ever see was seen), then every slot released; the staying connections are still open, so a
          // second answer on one of them would be seen below.
          await waitUntil(() => s.accepted.count === reqs.length && s.sockets.size === stayed && admission.inFlight === 0 && admission.queued === 0);

          assert.equal(overLimit, 0, "inFlight never exceeded the concurrency");
          assert.ok(maxActive <= concurrency, `at most ${concurrency} handlers at once, saw ${maxActive}`);
          reqs.forEach((r, i) => {
            if (r.leavesAfterMs !== null) return;
            assert.equal(answers[i]!.length, 1, `request ${i} answered`);
            assert.equal(clients[i]!.unread, 0, `request ${i} answered only once`);
            const status = answers[i]![0]!;
            assert.ok([200, 500, 503].includes(status), `status ${status}`);
            if (r.fails && status !== 503) assert.equal(status, 500);
          });
          const st = admission.stats;
          const rejected = st.rejected.queueFull + st.rejected.queueTimeout + st.rejected.quota + st.rejected.closed;
          assert.equal(st.received, st.admitted + st.queued + rejected + st.abandoned, "received = admitted + queued + rejected + abandoned");
          assert.equal(st.admitted, st.completed, "every admitted request released its slot");
          assert.equal(st.inFlight, 0);
          assert.equal(st.queued, 0);
          if (queueTimeoutMs === null) assert.equal(st.rejected.queueTimeout, 0);
          assert.ok(st.received >= stayed);
        } finally {
          for (const c of clients) c.close();
          await s.close();
        }
      },
    ),
    { numRuns: 40 },
  );
});
