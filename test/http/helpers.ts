/**
 * Test helpers for sluice/http: servers on loopback port 0 and a minimal raw HTTP/1.1 client
 * over one TCP socket, so tests can see exactly what goes over the wire (a body sent or not,
 * a connection reused or closed). Everything is bounded: responses larger than MAX_RESPONSE
 * bytes fail the test, and every wait has an event to wait for.
 */
import { createServer, type RequestListener, type Server } from "node:http";
import { connect, type Socket } from "node:net";
import { once } from "node:events";
import type { AddressInfo } from "node:net";

const MAX_RESPONSE = 1 << 20;

/** Starts `listener` on 127.0.0.1, a random port. */
export async function listen(listener: RequestListener): Promise<{ server: Server; port: number; sockets: Set<Socket>; accepted: { count: number }; close(): Promise<void> }> {
  const server = createServer({ keepAliveTimeout: 5000 }, listener);
  const sockets = new Set<Socket>();
  const accepted = { count: 0 };
  server.on("connection", (socket: Socket) => {
    accepted.count++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  return { server, port, sockets, accepted, close: () => closeServer(server) };
}

/** Closes a server and every connection it holds. */
export async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** One parsed response. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * A raw keep-alive HTTP/1.1 connection: `send` writes bytes; `response()` resolves with the
 * next complete response (content-length framed), in order.
 */
export class RawClient {
  readonly socket: Socket;
  #buffer = Buffer.alloc(0);
  #waiters: ((r: RawResponse | Error) => void)[] = [];
  #ready: RawResponse[] = [];
  closed = false;
  readonly closedPromise: Promise<void>;

  constructor(port: number) {
    this.socket = connect(port, "127.0.0.1");
    this.socket.on("data", (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      if (this.#buffer.length > MAX_RESPONSE) this.socket.destroy(new Error("response too large for the test client"));
      this.#parse();
    });
    this.socket.on("error", () => {});
    this.closedPromise = new Promise((resolve) => {
      this.socket.on("close", () => {
        this.closed = true;
        for (const w of this.#waiters.splice(0)) w(new Error("connection closed"));
        resolve();
      });
    });
  }

  async connected(): Promise<void> {
    if (!this.socket.connecting) return;
    await once(this.socket, "connect");
  }

  send(text: string | Buffer): void {
    this.socket.write(text);
  }

  /** Sends a request; `headers` are added after Host. */
  request(method: string, path: string, headers: Record<string, string | number> = {}, body?: string): void {
    let head = `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n`;
    for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
    if (body !== undefined && headers["content-length"] === undefined) head += `content-length: ${Buffer.byteLength(body)}\r\n`;
    this.send(head + "\r\n" + (body ?? ""));
  }

  response(): Promise<RawResponse> {
    const r = this.#ready.shift();
    if (r !== undefined) return Promise.resolve(r);
    if (this.closed) return Promise.reject(new Error("connection closed"));
    return new Promise((resolve, reject) => {
      this.#waiters.push((x) => (x instanceof Error ? reject(x) : resolve(x)));
    });
  }

  close(): void {
    this.socket.destroy();
  }

  /** Bytes and parsed responses received but not taken by `response()` (0: nothing extra came). */
  get unread(): number {
    return this.#ready.length + this.#buffer.length;
  }

  #parse(): void {
    for (;;) {
      const end = this.#buffer.indexOf("\r\n\r\n");
      if (end < 0) return;
      const lines = this.#buffer.subarray(0, end).toString("latin1").split("\r\n");
      const status = Number(lines[0]!.split(" ")[1]);
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const i = line.indexOf(":");
        headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      const length = Number(headers["content-length"] ?? 0);
      if (this.#buffer.length < end + 4 + length) return;
      const body = this.#buffer.subarray(end + 4, end + 4 + length).toString("utf8");
      this.#buffer = this.#buffer.subarray(end + 4 + length);
      const res: RawResponse = { status, headers, body };
      const w = this.#waiters.shift();
      if (w !== undefined) w(res);
      else this.#ready.push(res);
    }
  }
}

/** A promise with its resolve, to hold a handler until the test lets it go. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Counts events and lets a test wait until the count reaches n (no sleeps): `hit()` records
 * one, `reached(n)` resolves once `count >= n`.
 */
export class Counter {
  count = 0;
  #waits: { n: number; resolve: () => void }[] = [];
  hit(): void {
    this.count++;
    this.#waits = this.#waits.filter((w) => {
      if (this.count >= w.n) {
        w.resolve();
        return false;
      }
      return true;
    });
  }
  reached(n: number): Promise<void> {
    if (this.count >= n) return Promise.resolve();
    return new Promise((resolve) => this.#waits.push({ n, resolve }));
  }
}

/** Parses a problem body and checks its shape. */
export function problemOf(body: string): { type: string; title: string; status: number; detail: string; reason?: string; retryAfter?: number } {
  return JSON.parse(body) as { type: string; title: string; status: number; detail: string };
}

/**
 * Waits for `cond` to hold, checking once per event-loop turn (so socket events are processed in
 * between), for at most `turns` turns: a condition that follows from I/O already under way,
 * never a wait on the wall clock.
 */
export async function waitUntil(cond: () => boolean, turns = 100_000): Promise<void> {
  for (let i = 0; !cond(); i++) {
    if (i === turns) throw new Error("waitUntil: the condition did not hold");
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
