/**
 * JetStreamSink against the real NATS server: stores, deduplicates by msgID, refuses a full
 * stream and a publish nobody answers with BusyError, bounds the publishes in flight and the
 * callers waiting, and honours signals.
 */
import { test, describe, after, before } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { JetStreamSink, isStreamFull } from "../../src/nats/index.js";
import { BusyError } from "../../src/index.js";
import type { Msg } from "@nats-io/transport-node";
import { testStream, unique, until, type TestStream } from "./helpers.js";

let s: TestStream;
before(async () => {
  s = await testStream("sink", { max_msgs: 5, duplicate_window: 60e9 });
});
after(async () => {
  await s?.close();
});

describe("JetStreamSink", () => {
  test("publish stores the message and resolves with the PubAck", { timeout: 20_000 }, async () => {
    await s.jsm.streams.purge(s.name);
    const sink = new JetStreamSink(s.js);
    const ack = await sink.publish(s.subject, "hello");
    assert.equal(ack.stream, s.name);
    assert.equal(ack.duplicate, false);
    assert.equal(await s.count(), 1);
    const m = await s.jsm.streams.getMessage(s.name, { seq: ack.seq });
    assert.equal(m?.string(), "hello");
    assert.equal(sink.stats.published, 1);
    assert.equal(sink.stats.inFlight, 0);
  });

  test("msgID is Nats-Msg-Id: a retried publish is stored once and answered duplicate", { timeout: 20_000 }, async () => {
    await s.jsm.streams.purge(s.name);
    const sink = new JetStreamSink(s.js);
    const id = unique("msg");
    const a = await sink.publish(s.subject, "one", { msgID: id });
    const b = await sink.publish(s.subject, "one again", { msgID: id });
    assert.equal(b.duplicate, true);
    assert.equal(b.seq, a.seq);
    assert.equal(await s.count(), 1);
    assert.equal(sink.stats.duplicates, 1);
    assert.equal(sink.stats.published, 2);
  });

  test("a full stream (discard new, max_msgs) rejects with BusyError and a retry hint; nothing is trimmed", { timeout: 20_000 }, async () => {
    await s.jsm.streams.purge(s.name);
    const sink = new JetStreamSink(s.js, { retryAfterMs: 250 });
    for (let i = 0; i < 5; i++) await sink.publish(s.subject, `m${i}`);
    const err = await sink.publish(s.subject, "one too many").then(
      () => assert.fail("expected BusyError"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof BusyError, String(err));
    assert.equal(err.code, "ERR_BUSY");
    assert.equal(err.retryAfterMs, 250);
    assert.ok(isStreamFull(err.cause));
    assert.equal(await s.count(), 5);
    const first = await s.jsm.streams.getMessage(s.name, { seq: (await s.jsm.streams.info(s.name)).state.first_seq });
    assert.equal(first?.string(), "m0", "the oldest message is still there: nothing was trimmed");
    assert.equal(sink.stats.busy, 1);
  });

  test("no responders (no stream for the subject) is BusyError", { timeout: 20_000 }, async () => {
    const sink = new JetStreamSink(s.js);
    await assert.rejects(sink.publish(unique("nostream") + ".x", "x"), (e: unknown) => e instanceof BusyError && e.retryAfterMs === 1000);
  });

  test("a publish nobody acknowledges within timeoutMs is BusyError", { timeout: 20_000 }, async () => {
    const subject = unique("silent");
    const sub = s.nc.subscribe(subject); // receives the request and never answers
    await s.nc.flush();
    const sink = new JetStreamSink(s.js, { timeoutMs: 200 });
    await assert.rejects(sink.publish(subject, "x"), (e: unknown) => e instanceof BusyError && /no acknowledgement/.test(e.message));
    assert.equal(sink.stats.inFlight, 0);
    sub.unsubscribe();
  });

  test("at most maxInFlight publishes await an answer; at most maxWaiting callers wait; more are refused", { timeout: 20_000 }, async () => {
    const subject = unique("slow");
    // A responder that answers like JetStream, but only when told to: publishes stay in flight.
    const held: Msg[] = [];
    const sub = s.nc.subscribe(subject, {
      callback: (_e, m) => {
        held.push(m);
      },
    });
    await s.nc.flush();
    const sink = new JetStreamSink(s.js, { maxInFlight: 2, maxWaiting: 3, timeoutMs: 10_000 });
    const calls = Array.from({ length: 5 }, (_, i) => sink.publish(subject, `p${i}`));
    await new Promise<void>((r) => setImmediate(r));
    assert.equal(sink.stats.waiting, 3);
    assert.equal(sink.stats.inFlight, 2);
    await assert.rejects(sink.publish(subject, "refused"), BusyError);
    let seq = 0;
    let answered = 0;
    while (answered < 5) {
      await new Promise<void>((r) => setImmediate(r));
      assert.ok(sink.stats.inFlight <= 2, `inFlight ${sink.stats.inFlight}`);
      const m = held.shift();
      if (m === undefined) continue;
      m.respond(JSON.stringify({ stream: "fake", seq: ++seq }));
      answered++;
    }
    const acks = await Promise.all(calls);
    assert.deepEqual(acks.map((a) => a.seq).sort((a, b) => a - b), [1, 2, 3, 4, 5]);
    assert.equal(sink.stats.busy, 1);
    sub.unsubscribe();
  });

  test("signals: an aborted signal publishes nothing; an abort while waiting rejects with its reason", { timeout: 20_000 }, async () => {
    await s.jsm.streams.purge(s.name);
    const sink = new JetStreamSink(s.js, { maxInFlight: 1 });
    const reason = new Error("gone");
    await assert.rejects(sink.publish(s.subject, "x", { signal: AbortSignal.abort(reason) }), (e) => e === reason);
    assert.equal(await s.count(), 0);
    const subject = unique("hold");
    const sub = s.nc.subscribe(subject);
    await s.nc.flush();
    const blocking = sink.publish(subject, "blocks", { signal: AbortSignal.timeout(5000) });
    const ac = new AbortController();
    const waiting = sink.publish(s.subject, "waits", { signal: ac.signal });
    assert.equal(sink.stats.waiting, 1);
    ac.abort(reason);
    await assert.rejects(waiting, (e) => e === reason);
    assert.equal(sink.stats.waiting, 0);
    await assert.rejects(blocking); // its own signal times out
    assert.equal(await s.count(), 0);
    sub.unsubscribe();
  });

  test("randomized: concurrent publishers with random aborts; bounds hold and every call is accounted for", { timeout: 60_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 0, max: 8 }),
        fc.array(fc.record({ abortAfterMs: fc.option(fc.integer({ min: 0, max: 5 })), dup: fc.boolean() }), { minLength: 1, maxLength: 40 }),
        async (maxInFlight, maxWaiting, calls) => {
          await s.jsm.streams.purge(s.name);
          const big = unique("rand");
          await s.extra({ name: big, subjects: [`${big}.>`], duplicate_window: 60e9 });
          const sink = new JetStreamSink(s.js, { maxInFlight, maxWaiting });
          let maxSeen = 0;
          const watch = setInterval(() => {
            maxSeen = Math.max(maxSeen, sink.stats.inFlight);
            assert.ok(sink.stats.waiting <= maxWaiting);
          }, 1);
          const outcomes = await Promise.allSettled(
            calls.map((c, i) => {
              const signal = c.abortAfterMs === null ? undefined : AbortSignal.timeout(c.abortAfterMs);
              return sink.publish(`${big}.x`, `v${i}`, { msgID: c.dup ? "same" : `id${i}`, ...(signal ? { signal } : {}) });
            }),
          );
          // Callers that gave up after sending are answered at once; their publishes settle later.
          await until(() => sink.stats.inFlight === 0, "abandoned publishes answered");
          clearInterval(watch);
          const st = sink.stats;
          assert.ok(maxSeen <= maxInFlight, `inFlight ${maxSeen} > ${maxInFlight}`);
          assert.equal(st.waiting, 0);
          const fulfilled = outcomes.filter((o) => o.status === "fulfilled").length;
          const busy = outcomes.filter((o) => o.status === "rejected" && o.reason instanceof BusyError).length;
          const gaveUp = outcomes.filter((o) => o.status === "rejected" && (o.reason as Error).name === "TimeoutError").length;
          assert.equal(fulfilled + busy + gaveUp, calls.length, "each call: a PubAck, BusyError or its signal's reason");
          assert.equal(st.published + st.busy + st.failed + st.aborted, calls.length, "every call accounted for once");
          assert.equal(st.aborted + st.abandoned, gaveUp);
          assert.ok(st.busy >= busy && st.published >= fulfilled);
          // Stored: each distinct msgID once, however many times it was published.
          const stored = (await s.jsm.streams.info(big)).state.messages;
          assert.ok(stored <= new Set(calls.map((c, i) => (c.dup ? "same" : `id${i}`))).size);
          await s.jsm.streams.delete(big);
        },
      ),
      { numRuns: 15 },
    );
  });

  test("bad arguments are typed errors naming the option", async () => {
    assert.throws(() => new JetStreamSink({} as never), TypeError);
    assert.throws(() => new JetStreamSink(s.js, { maxInFlight: 0 }), /maxInFlight must be a positive safe integer, got 0/);
    assert.throws(() => new JetStreamSink(s.js, { timeoutMs: 0 }), RangeError);
    assert.throws(() => new JetStreamSink(s.js, { timeoutMs: 2 ** 31 }), /timeoutMs must be at most/);
    assert.throws(() => new JetStreamSink(s.js, { maxWaiting: -1 }), RangeError);
    const sink = new JetStreamSink(s.js);
    await assert.rejects(sink.publish("", "x"), TypeError);
    await assert.rejects(sink.publish(s.subject, 5 as never), TypeError);
    await assert.rejects(sink.publish(s.subject, "x", { msgID: "" }), TypeError);
  });
});
