/**
 * A small HTTP client for the conformance suite: node:http requests on loopback, and a raw
 * socket for what a client library hides (a request whose body is never sent). Bounded: a
 * response body over 1 MiB fails the test.
 */
import assert from "node:assert/strict";
import type { Agent} from "node:http";
import { request, type IncomingHttpHeaders, type Server } from "node:http";
import { connect } from "node:net";
import { once } from "node:events";
import type { AddressInfo } from "node:net";

const MAX_BODY = 1 << 20;

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  reusedSocket: boolean;
}

/** Listens on 127.0.0.1, a random port. */
export async function listenOn(server: Server): Promise<number> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as AddressInfo).port;
}

export async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
}

/** One request; resolves with the whole reply. `signal` aborts it (the client leaves). */
export function fetchReply(
  port: number,
  opts: { method?: string; path?: string; headers?: Record<string, string>; body?: string; agent?: Agent; signal?: AbortSignal } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, method: opts.method ?? "GET", path: opts.path ?? "/", headers: opts.headers, agent: opts.agent ?? false, signal: opts.signal },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY) res.destroy(new Error("body too large"));
          else chunks.push(c);
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8"), reusedSocket: req.reusedSocket }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(opts.body);
  });
}

/**
 * Sends only the head of a request that declares a body of `contentLength` bytes and never
 * sends it; resolves with the status line and headers of the reply (the server answered without
 * waiting for the body), then destroys the socket.
 */
export async function headOnly(port: number, contentLength: number, path = "/"): Promise<{ status: number; headers: Record<string, string> }> {
  const socket = connect(port, "127.0.0.1");
  await once(socket, "connect");
  socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: ${contentLength}\r\n\r\n`);
  let buf = "";
  try {
    for await (const chunk of socket) {
      buf += (chunk as Buffer).toString("latin1");
      if (buf.length > MAX_BODY) assert.fail("reply too large");
      if (buf.includes("\r\n\r\n")) break;
    }
  } finally {
    socket.destroy();
  }
  const [head] = buf.split("\r\n\r\n");
  const lines = head!.split("\r\n");
  const status = Number(lines[0]!.split(" ")[1]);
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(":");
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status, headers };
}

/** Asserts a refused reply: status, `Retry-After` whole seconds >= 1, problem+json with type/title/status/detail. */
export function assertRefusal(r: Reply, status: 503 | 429): void {
  assert.equal(r.status, status, `status ${r.status}, body ${r.body}`);
  const ra = r.headers["retry-after"];
  assert.equal(typeof ra, "string", "a Retry-After header");
  assert.match(ra as string, /^[0-9]+$/, `Retry-After in whole seconds, got ${String(ra)}`);
  assert.ok(Number(ra) >= 1, `Retry-After >= 1, got ${String(ra)}`);
  assert.match(String(r.headers["content-type"]), /^application\/problem\+json(;|$)/, "content-type application/problem+json");
  const body = JSON.parse(r.body) as Record<string, unknown>;
  assert.equal(typeof body.type, "string", "problem.type");
  assert.equal(typeof body.title, "string", "problem.title");
  assert.equal(body.status, status, "problem.status");
  assert.equal(typeof body.detail, "string", "problem.detail");
}
