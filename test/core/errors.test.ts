/**
 * Specification of the core's error classes (DESIGN.md "Errors" and the flow settled details:
 * one `BusyError` class for all of sluice, code `ERR_BUSY`, optional `retryAfterMs`).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BusyError, Channel, ChannelClosedError } from "../../src/index.js";

describe("ChannelClosedError", () => {
  it("is an Error with name ChannelClosedError and the stable code ERR_CHANNEL_CLOSED", () => {
    const e = new ChannelClosedError();
    assert.ok(e instanceof Error);
    assert.ok(e instanceof ChannelClosedError);
    assert.equal(e.name, "ChannelClosedError");
    assert.equal(e.code, "ERR_CHANNEL_CLOSED");
    assert.equal(typeof e.message, "string");
    assert.ok(e.message.length > 0);
    assert.equal(typeof e.stack, "string");
  });

  it("takes a message and a cause", () => {
    const cause = new Error("root");
    const e = new ChannelClosedError("send on closed channel \"x\"", { cause });
    assert.equal(e.message, "send on closed channel \"x\"");
    assert.equal(e.cause, cause);
  });

  it("prints with its name", () => {
    assert.match(String(new ChannelClosedError("m")), /^ChannelClosedError: m/);
  });

  it("is what send, trySend, close and select raise on a closed channel, each naming the channel", async () => {
    const ch = new Channel<number>(0, { name: "named" });
    ch.close();
    const errors: unknown[] = [];
    await ch.send(1).catch((e: unknown) => errors.push(e));
    try {
      ch.trySend(1);
    } catch (e) {
      errors.push(e);
    }
    try {
      ch.close();
    } catch (e) {
      errors.push(e);
    }
    assert.equal(errors.length, 3);
    for (const e of errors) {
      assert.ok(e instanceof ChannelClosedError);
      assert.equal(e.code, "ERR_CHANNEL_CLOSED");
      assert.match(e.message, /named/);
    }
    assert.notEqual(errors[0], errors[1], "a fresh error each time");
  });
});

describe("BusyError", () => {
  it("is an Error with name BusyError and the stable code ERR_BUSY", () => {
    const e = new BusyError();
    assert.ok(e instanceof Error);
    assert.ok(e instanceof BusyError);
    assert.equal(e.name, "BusyError");
    assert.equal(e.code, "ERR_BUSY");
    assert.ok(e.message.length > 0);
  });

  it("retryAfterMs is undefined unless given, and kept when given", () => {
    assert.equal(new BusyError().retryAfterMs, undefined);
    assert.equal(new BusyError("full").retryAfterMs, undefined);
    const e = new BusyError("slow down", { retryAfterMs: 250 });
    assert.equal(e.retryAfterMs, 250);
    assert.equal(e.message, "slow down");
  });

  it("takes a cause", () => {
    const cause = new Error("root");
    assert.equal(new BusyError("m", { cause }).cause, cause);
  });

  it("is distinguishable from ChannelClosedError and from a bare Error", () => {
    const busy = new BusyError();
    const closed = new ChannelClosedError();
    assert.ok(!(busy instanceof ChannelClosedError));
    assert.ok(!(closed instanceof BusyError));
    assert.ok(!(new Error("full") instanceof BusyError));
    assert.notEqual(busy.code, closed.code);
  });

  it("is what a channel's bounded parked queue raises", async () => {
    const ch = new Channel<number>(0, { maxParkedSends: 0 });
    const e = await ch.send(1).then(() => undefined, (err: unknown) => err);
    assert.ok(e instanceof BusyError);
    assert.equal(e.code, "ERR_BUSY");
  });
});
