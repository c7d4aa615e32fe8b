import assert from "node:assert/strict";
import { getEventListeners, once } from "node:events";
import { Readable, Writable } from "node:stream";
import { pipeline as streamPipeline } from "node:stream/promises";
import { describe, test } from "node:test";
import { Channel, ChannelClosedError, parkedWork } from "../../src/index.js";
import { collectWarnings } from "../core/fixtures/probe.js";
import { map, pipeline, toReadable, toReadableStream, toWritable, toWritableStream } from "../../src/pipeline/index.js";

const T = { timeout: 20_000 };

async function settle(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r));
}

function counting(n: number): { it: Iterable<number>; pulled: () => number; closed: () => boolean } {
  let pulled = 0;
  let closed = false;
  return {
    it: {
      [Symbol.iterator]: () => ({
        next: () => (pulled < n ? { value: pulled++, done: false } : { value: undefined, done: true }),
        return: () => ((closed = true), { value: undefined, done: true }),
      }),
    },
    pulled: () => pulled,
    closed: () => closed,
  };
}

describe("toReadable", () => {
  test("pulls only when read, within highWaterMark, and carries every item in order", T, async () => {
    const src = counting(100);
    const r = toReadable(src.it, { highWaterMark: 4 });
    await settle();
    assert.equal(src.pulled(), 0, "nothing is pulled before a read");
    r.pause();
    r.read(0);
    await settle();
    assert.ok(src.pulled() <= 5, `pulled ${src.pulled()}`);
    const out: number[] = [];
    for await (const x of r) out.push(x as number);
    assert.deepEqual(out, Array.from({ length: 100 }, (_, i) => i));
  });

  test("a pipeline as a Readable, into stream.pipeline; destroy closes the source", T, async () => {
    const got: number[] = [];
    await streamPipeline(
      toReadable(pipeline([1, 2, 3], map((x: number) => x * 2))),
      new Writable({
        objectMode: true,
        write(chunk: number, _e, cb) {
          got.push(chunk);
          cb();
        },
      }),
    );
    assert.deepEqual(got, [2, 4, 6]);
    const src = counting(Number.MAX_SAFE_INTEGER);
    const r = toReadable(src.it);
    r.read();
    await settle();
    r.destroy();
    await once(r, "close");
    assert.ok(src.closed());
  });

  test("a failing source destroys it with that error; a null item is refused loudly", T, async () => {
    const boom = new Error("boom");
    async function* bad(): AsyncGenerator<number> {
      yield 1;
      throw boom;
    }
    const r = toReadable(bad());
    await assert.rejects(
      (async () => {
        for await (const _ of r) void _;
      })(),
      (e) => e === boom,
    );
    const n = toReadable([1, null]);
    await assert.rejects(
      (async () => {
        for await (const _ of n) void _;
      })(),
      TypeError,
    );
  });
});

describe("toWritable", () => {
  test("write() is false when called on a full channel (the chunk parks); 'drain' comes when the channel took it", T, async () => {
    const ch = new Channel<number>(2);
    const w = toWritable(ch);
    assert.equal(w.write(1), true);
    assert.equal(w.write(2), true);
    assert.equal(w.write(3), false, "the channel is full: this one waits");
    assert.equal(ch.length, 2);
    const drained = once(w, "drain");
    assert.deepEqual(await ch.recv(), { value: 1, ok: true });
    await drained;
    assert.equal(ch.length, 2);
    w.end();
    await once(w, "finish");
    const rest: number[] = [];
    for await (const x of ch) rest.push(x);
    assert.deepEqual(rest, [2, 3]);
    assert.ok(ch.closed, "end() closed the channel");
  });

  test("a Readable piped into it keeps the channel's bound", T, async () => {
    const ch = new Channel<number>(3);
    const src = counting(1000);
    const done = streamPipeline(Readable.from(src.it, { highWaterMark: 2 }), toWritable(ch));
    await settle(20);
    assert.ok(src.pulled() <= 3 + 1 + 1 + 2 + 2, `pulled ${src.pulled()} while nobody reads`);
    let n = 0;
    for await (const _ of ch) n++;
    await done;
    assert.equal(n, 1000);
  });

  test("destroy with an error withdraws the waiting send and closes the channel", T, async () => {
    const ch = new Channel<number>(0);
    const w = toWritable(ch);
    w.on("error", () => {});
    w.write(1);
    await settle();
    const closed1 = new Promise<void>((r) => w.on("close", r));
    w.destroy(new Error("gone"));
    await closed1;
    assert.ok(ch.closed);
    assert.deepEqual(await ch.recv(), { value: undefined, ok: false }, "the withdrawn value was never sent");
    assert.deepEqual(parkedWork(), []);
    const closed = new Channel<number>(1);
    closed.close();
    const w2 = toWritable(closed);
    w2.write(1);
    const [err] = (await once(w2, "error")) as [Error];
    assert.ok(err instanceof ChannelClosedError);
  });
});

describe("web streams", () => {
  test("toReadableStream pulls only for a pending read (desiredSize honest) and cancel closes the source", T, async () => {
    const src = counting(Number.MAX_SAFE_INTEGER);
    const rs = toReadableStream(src.it);
    await settle();
    assert.equal(src.pulled(), 0);
    const reader = rs.getReader();
    assert.deepEqual(await reader.read(), { value: 0, done: false });
    await settle();
    assert.equal(src.pulled(), 1);
    await reader.cancel("bye");
    assert.ok(src.closed());
    const all: number[] = [];
    for await (const x of toReadableStream(pipeline([1, 2, 3], map((x: number) => x + 1)), { highWaterMark: 2 }) as unknown as AsyncIterable<number>) all.push(x);
    assert.deepEqual(all, [2, 3, 4]);
  });

  test("toWritableStream: a write into a full channel waits, and meanwhile desiredSize is 0 and ready waits; close closes it", T, async () => {
    const ch = new Channel<number>(1);
    const writer = toWritableStream(ch).getWriter();
    assert.equal(writer.desiredSize, 1);
    await writer.write(1);
    assert.equal(ch.length, 1, "the write completed: the channel holds the chunk");
    assert.equal(writer.desiredSize, 1, "the stream's own queue is empty again");
    const w2 = writer.write(2); // the channel is full: this write waits
    await settle();
    assert.equal(writer.desiredSize, 0);
    let ready = false;
    void writer.ready.then(() => (ready = true));
    await settle();
    assert.equal(ready, false);
    assert.deepEqual(await ch.recv(), { value: 1, ok: true });
    await w2;
    await writer.ready;
    assert.equal(writer.desiredSize, 1);
    await writer.close();
    assert.ok(ch.closed);
    assert.deepEqual(await ch.recv(), { value: 2, ok: true });
  });

  test("pipeTo into toWritableStream with nobody reading stops pulling at the channel's bound plus one chunk; the writable's signal ends it", T, async () => {
    const src = counting(Number.MAX_SAFE_INTEGER);
    const ch = new Channel<number>(3);
    const ctl = new AbortController();
    const piped = toReadableStream(src.it).pipeTo(toWritableStream(ch, { signal: ctl.signal }));
    await settle(20);
    // 3 in the channel, 1 waiting as a parked send, at most 1 read by pipeTo ahead of the writer.
    assert.ok(src.pulled() >= 4 && src.pulled() <= 5, `pulled ${src.pulled()} while nobody reads`);
    assert.equal(ch.length, 3);
    const pulledBefore = src.pulled();
    await settle(20);
    assert.equal(src.pulled(), pulledBefore, "nothing more is pulled while the channel stays full");
    ctl.abort(new Error("stop"));
    await assert.rejects(piped);
    assert.ok(src.closed(), "the abort closed the source");
    assert.ok(ch.closed, "and the channel");
    const got: number[] = [];
    for await (const x of ch) got.push(x);
    assert.deepEqual(got, [0, 1, 2], "what the channel held is still received, in order");
    assert.deepEqual(parkedWork(), []);
    // A source that never produces: pipeTo waits on its read, and the signal still ends it.
    let cancelled: unknown = null;
    const silent = new ReadableStream<number>({ cancel: (why) => void (cancelled = why) }, { highWaterMark: 0 });
    const quiet = new AbortController();
    const out = new Channel<number>(1);
    const waiting = silent.pipeTo(toWritableStream(out, { signal: quiet.signal }));
    await settle();
    const why = new Error("shutdown");
    quiet.abort(why);
    await assert.rejects(waiting, (e) => e === why);
    assert.equal(cancelled, why, "the source was cancelled with the reason");
    assert.ok(out.closed);
  });

  test("toWritableStream checks its signal option; one aborted already errors the stream; many streams on one signal add one listener in all", T, async () => {
    const ch = new Channel<number>(1);
    assert.throws(() => toWritableStream(ch, { signal: "no" as unknown as AbortSignal }), /options\.signal must be an AbortSignal/);
    assert.throws(() => toWritableStream(ch, 5 as unknown as object), TypeError);
    const early = new Channel<number>(1);
    const dead = toWritableStream(early, { signal: AbortSignal.abort(new Error("already")) }).getWriter();
    await assert.rejects(dead.closed, /already/);
    await assert.rejects(dead.write(1), /already/);
    assert.ok(early.closed, "the channel is closed, as a later abort closes it");
    assert.deepEqual(await early.recv(), { value: undefined, ok: false }, "nothing was sent");
    // Aborted while idle (no write waiting): the stream errors at once, the channel closes.
    const idle = new Channel<number>(1);
    const stopIdle = new AbortController();
    const idleWriter = toWritableStream(idle, { signal: stopIdle.signal }).getWriter();
    await idleWriter.write(1);
    stopIdle.abort(new Error("idle stop"));
    await assert.rejects(idleWriter.closed, /idle stop/);
    assert.ok(idle.closed);
    assert.equal(getEventListeners(stopIdle.signal, "abort").length, 0);
    assert.deepEqual(await idle.recv(), { value: 1, ok: true }, "what it wrote stays receivable");
    // Many streams on one shutdown signal: one native listener for all (sluice's per-signal
    // fan-in), however many are made and closed, and no listener-leak warning.
    const ctl = new AbortController();
    const sig = ctl.signal;
    const w = collectWarnings();
    try {
      const channels = Array.from({ length: 12 }, () => new Channel<number>(1));
      const writers = channels.map((c) => toWritableStream(c, { signal: sig }).getWriter());
      assert.equal(getEventListeners(sig, "abort").length, 1);
      const writer = toWritableStream(ch, { signal: sig }).getWriter();
      await writer.write(7);
      await writer.close();
      for (const x of writers) await x.close();
      assert.equal(getEventListeners(sig, "abort").length, 1, "closing adds or leaves nothing per stream");
      assert.ok(channels.every((c) => c.closed));
      await settle();
      assert.equal(w.warnings.filter((x) => x.name === "MaxListenersExceededWarning").length, 0);
    } finally {
      w.stop();
    }
    ctl.abort(new Error("late"));
    assert.deepEqual(await ch.recv(), { value: 7, ok: true }, "an abort after close takes nothing back");
    // A write that fails (the channel closed by someone else) errors the stream, and its signal
    // stays usable: a later stream on it still hears the abort.
    const other = new Channel<number>(1);
    const keep = new AbortController();
    const ks = keep.signal;
    const w2 = toWritableStream(other, { signal: ks }).getWriter();
    other.close();
    await assert.rejects(w2.write(1), ChannelClosedError);
    assert.equal(getEventListeners(ks, "abort").length, 1);
    const later = new Channel<number>(1);
    const w3 = toWritableStream(later, { signal: ks }).getWriter();
    keep.abort(new Error("after"));
    await assert.rejects(w3.closed, /after/);
    assert.ok(later.closed);
    assert.equal(getEventListeners(ks, "abort").length, 0, "the one listener went with the abort");
  });

  test("toWritableStream abort withdraws the waiting send; pipeTo from toReadableStream moves everything", T, async () => {
    const ch = new Channel<number>(0);
    const writer = toWritableStream(ch).getWriter();
    const w = writer.write(1);
    await settle();
    await writer.abort(new Error("stop"));
    await assert.rejects(w);
    assert.ok(ch.closed);
    assert.deepEqual(parkedWork(), []);
    const out = new Channel<number>(2);
    const moved = toReadableStream([1, 2, 3, 4, 5]).pipeTo(toWritableStream(out));
    const got: number[] = [];
    for await (const x of out) got.push(x);
    await moved;
    assert.deepEqual(got, [1, 2, 3, 4, 5]);
  });
});
