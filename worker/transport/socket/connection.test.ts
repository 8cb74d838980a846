// How a failed connect is told apart: a connect timeout (a blackholed node)
// from a refusal, because passive health ejects on the first timeout.
import { describe, expect, it } from "vitest";
import { ConnectError, ResponseTimeoutError, UpstreamResetError } from "../types.ts";
import { createSocketTransport } from "./transport.ts";
import { openConnection, readResponseHead, type Connect, Deadline } from "./connection.ts";
import { ResponseParser } from "./response-parser.ts";

const origin = { node: "n1", address: "192.0.2.1", port: 30080, scheme: "http" as const };

function fakeConnect(opened: Promise<unknown>): Connect {
  return () =>
    ({
      opened,
      closed: new Promise(() => {}),
      close: async () => {},
      readable: new ReadableStream(),
      writable: new WritableStream(),
    }) as unknown as Socket;
}

describe("openConnection", () => {
  it("says a connect that got no answer within the timeout timed out", async () => {
    const err = await openConnection(fakeConnect(new Promise(() => {})), origin, 20).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).timedOut).toBe(true);
    expect((err as ConnectError).message).toContain("no connection within 20 ms");
  });

  it("says a refused connect did not time out", async () => {
    const err = await openConnection(fakeConnect(Promise.reject(new Error("connection refused"))), origin, 1_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).timedOut).toBe(false);
  });
});

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("Deadline (one timer per request)", () => {
  it("fires the latest deadline set, once, not the earlier one it replaced", async () => {
    const d = new Deadline();
    const fired: string[] = [];
    const started = Date.now();
    d.set(20, () => fired.push("connect"));
    d.set(120, () => fired.push("head"));
    await expect.poll(() => fired, { timeout: 2000, interval: 10 }).toEqual(["head"]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    await settle(50);
    expect(fired).toEqual(["head"]);
  });

  it("fires an earlier deadline set after a later one on time", async () => {
    const d = new Deadline();
    const fired: string[] = [];
    d.set(10_000, () => fired.push("late"));
    d.set(10, () => fired.push("soon"));
    await expect.poll(() => fired, { timeout: 2000, interval: 10 }).toEqual(["soon"]);
    d.clear();
  });

  it("fires nothing while held or after clear", async () => {
    const d = new Deadline();
    const fired: string[] = [];
    d.set(10, () => fired.push("held"));
    d.hold();
    const e = new Deadline();
    e.set(10, () => fired.push("cleared"));
    e.clear();
    await settle(60);
    expect(fired).toEqual([]);
    d.set(10, () => fired.push("after hold"));
    await expect.poll(() => fired, { timeout: 2000, interval: 10 }).toEqual(["after hold"]);
  });
});

describe("timers per request (issue 14: CPU per request)", () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  function answering(wire: string): Connect {
    return () =>
      ({
        opened: Promise.resolve({}),
        closed: new Promise(() => {}),
        close: async () => {},
        readable: new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(enc(wire));
            c.close();
          },
        }),
        writable: new WritableStream(),
      }) as unknown as Socket;
  }

  it("a request that connects and gets its head arms one timer and cancels none; the timer then fires into nothing", async () => {
    const realSet = globalThis.setTimeout;
    const realClear = globalThis.clearTimeout;
    const calls = { set: 0, clear: 0 };
    const armed: (() => void)[] = [];
    // Counted, and not really armed: the test fires the timer itself.
    globalThis.setTimeout = ((fn: () => void) => {
      calls.set++;
      armed.push(fn);
      return 0;
    }) as unknown as typeof setTimeout;
    globalThis.clearTimeout = (() => {
      calls.clear++;
    }) as unknown as typeof clearTimeout;
    try {
      const conn = await openConnection(answering("HTTP/1.1 204 No Content\r\n\r\n"), origin, 1_000);
      const { head } = await readResponseHead(conn, new ResponseParser({ method: "GET" }), 30_000, () => undefined);
      expect(head.status).toBe(204);
      expect(calls).toEqual({ set: 1, clear: 0 });
      for (const fire of armed) fire();
      expect(conn.closed, "the disarmed deadline closes nothing").toBe(false);
    } finally {
      globalThis.setTimeout = realSet;
      globalThis.clearTimeout = realClear;
    }
  });
});

describe("a head write that never completes", () => {
  it("is bounded by the response timeout: a ResponseTimeoutError, not a request that hangs", async () => {
    let stop: ((e: Error) => void) | undefined;
    const connect: Connect = () =>
      ({
        opened: Promise.resolve({}),
        closed: new Promise(() => {}),
        // Like a real socket: closing ends the pending read.
        close: async () => stop?.(new Error("socket closed")),
        readable: new ReadableStream<Uint8Array>({
          start(c) {
            stop = (e) => c.error(e);
          },
        }),
        // An origin that reads nothing and a full send buffer: the write never settles.
        writable: new WritableStream({ write: () => new Promise(() => {}) }),
      }) as unknown as Socket;
    const transport = createSocketTransport({ connect, log: () => {} });
    const started = Date.now();
    const err = await transport
      .send({
        origin,
        request: { method: "GET", url: "http://x/", headers: new Headers(), body: null },
        connectTimeoutMs: 1_000,
        responseTimeoutMs: 50,
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResponseTimeoutError);
    expect(Date.now() - started).toBeLessThan(900);
  });
});

describe("a request without a body starts at once (issue 14: one suspension fewer)", () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  /** A socket that opens only once the request head has been written to it; records what was written. */
  function opensOnWrite(answer: string, written: string[]): Connect {
    let wrote: () => void = () => {};
    const headWritten = new Promise<void>((r) => (wrote = r));
    return () =>
      ({
        // Opens only once the head was written: a transport that awaits the open first never gets here.
        opened: headWritten,
        closed: new Promise(() => {}),
        close: async () => {},
        readable: new ReadableStream<Uint8Array>({
          async pull(c) {
            await headWritten;
            c.enqueue(enc(answer));
            c.close();
          },
        }),
        writable: new WritableStream<Uint8Array>({
          write(chunk) {
            written.push(new TextDecoder().decode(chunk));
            wrote();
          },
        }),
      }) as unknown as Socket;
  }
  const send = (connect: Connect, method = "GET", timeouts = { connectTimeoutMs: 200, responseTimeoutMs: 1_000 }) =>
    createSocketTransport({ connect, log: () => {} }).send({
      origin,
      request: { method, url: "http://x/a?b=1", headers: new Headers({ host: "app" }), body: null },
      ...timeouts,
    });

  it("hands the head to the socket before its open is known, and answers", async () => {
    const written: string[] = [];
    const res = await send(opensOnWrite("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", written));
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("ok");
    expect(written.join("")).toMatch(/^GET \/a\?b=1 HTTP\/1\.1\r\n/);
  });

  it("a connect refused is a ConnectError (nothing was written: any method may go elsewhere)", async () => {
    const connect: Connect = () =>
      ({
        opened: Promise.reject(new Error("connection refused")),
        // As workerd's own (api/sockets.c++ marks closed handled): the transport puts no handler on it.
        closed: handledRejection(new Error("connection refused")),
        close: async () => {},
        readable: new ReadableStream({ start: (c) => c.error(new Error("connection refused")) }),
        writable: new WritableStream({ write: () => Promise.reject(new Error("connection refused")) }),
      }) as unknown as Socket;
    const err = await send(connect, "DELETE").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).timedOut).toBe(false);
    expect((err as Error).message).toContain("connection refused");
  });

  it("a connect that never opens is a timed-out ConnectError after the connect timeout, even with a socket whose close ends nothing", async () => {
    const connect: Connect = () =>
      ({
        opened: new Promise(() => {}),
        closed: new Promise(() => {}),
        close: async () => {},
        readable: new ReadableStream(),
        writable: new WritableStream(),
      }) as unknown as Socket;
    const started = Date.now();
    const err = await send(connect, "DELETE", { connectTimeoutMs: 30, responseTimeoutMs: 5_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).timedOut).toBe(true);
    expect(Date.now() - started).toBeLessThan(4_000);
  });

  it("a connection that opened and then closed without an answer is not a ConnectError (the origin may have run it)", async () => {
    const connect: Connect = () =>
      ({
        opened: Promise.resolve({}),
        closed: new Promise(() => {}),
        close: async () => {},
        readable: new ReadableStream({ start: (c) => c.close() }),
        writable: new WritableStream(),
      }) as unknown as Socket;
    const err = await send(connect, "DELETE").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamResetError);
  });

  it("an origin that accepts and stays silent gets the response timeout, counted from the open", async () => {
    let stop: ((e: Error) => void) | undefined;
    const connect: Connect = () =>
      ({
        opened: new Promise((r) => setTimeout(r, 20)),
        closed: new Promise(() => {}),
        close: async () => stop?.(new Error("socket closed")),
        readable: new ReadableStream({ start: (c) => void (stop = (e) => c.error(e)) }),
        writable: new WritableStream(),
      }) as unknown as Socket;
    const err = await send(connect, "GET", { connectTimeoutMs: 1_000, responseTimeoutMs: 40 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResponseTimeoutError);
    expect((err as Error).message).toContain("within 40 ms");
  });
});

describe("a whole answer's connection (issue 14: no close() per request)", () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  function answering(wire: string, closes: { n: number }): Connect {
    return () =>
      ({
        opened: Promise.resolve({}),
        closed: new Promise(() => {}),
        close: async () => {
          closes.n++;
        },
        readable: new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(enc(wire));
          },
        }),
        writable: new WritableStream(),
      }) as unknown as Socket;
  }
  const send = (wire: string, closes: { n: number }) =>
    createSocketTransport({ connect: answering(wire, closes), log: () => {} }).send({
      origin,
      request: { method: "GET", url: "http://x/", headers: new Headers({ host: "app" }), body: null },
      connectTimeoutMs: 1_000,
      responseTimeoutMs: 1_000,
    });

  for (const [name, wire, body] of [
    ["Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "hello"],
    ["chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n", "hello"],
    ["no body", "HTTP/1.1 204 No Content\r\n\r\n", ""],
  ] as const) {
    it(`is left to the runtime (closed when the request ends) when the answer came whole with its head (${name})`, async () => {
      const closes = { n: 0 };
      const res = await send(wire, closes);
      expect(await res.text()).toBe(body);
      expect(closes.n).toBe(0);
    });
  }

  it("is closed at once when the request has a body (an early answer stops the upload)", async () => {
    const closes = { n: 0 };
    const res = await createSocketTransport({
      connect: answering("HTTP/1.1 413 Content Too Large\r\nContent-Length: 3\r\n\r\nbig", closes),
      log: () => {},
    }).send({
      origin,
      // An upload still in progress: its stream never ends.
      request: { method: "POST", url: "http://x/", headers: new Headers({ host: "app" }), body: new ReadableStream<Uint8Array>() },
      connectTimeoutMs: 1_000,
      responseTimeoutMs: 1_000,
    });
    expect(res.status).toBe(413);
    expect(closes.n).toBe(1);
  });

  it("is closed at once for a gate's refusal, which the proxy retries on another node (review rv-proxy s7 2)", async () => {
    const closes = { n: 0 };
    const res = await send("HTTP/1.1 403 Forbidden\r\nx-edgelb-gate: refused\r\nContent-Length: 9\r\n\r\nforbidden", closes);
    expect(res.status).toBe(403);
    expect(closes.n).toBe(1);
  });

  it("is closed at once when the proxy may retry the answer on another node (5xx)", async () => {
    const closes = { n: 0 };
    const res = await send("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy", closes);
    expect(res.status).toBe(503);
    expect(closes.n).toBe(1);
  });
});

describe("the fast start is for methods a second run cannot harm (review rv-proxy s7 1)", () => {
  it("a bodyless POST the origin received is never reported as a ConnectError, even when the isolate learns of the open after the connect deadline", async () => {
    const received: string[] = [];
    let pending: Uint8Array[] = [];
    let connected = false;
    let up: ReturnType<typeof setTimeout> | undefined;
    const connect: Connect = () => {
      // The runtime: the TCP connection is up at 20 ms and queued writes go out then (native side);
      // the continuation that resolves `opened` runs later, in a busy isolate.
      up = setTimeout(() => {
        connected = true;
        for (const c of pending) received.push(new TextDecoder().decode(c));
        pending = [];
      }, 20);
      return {
        opened: new Promise((r) => setTimeout(r, 150)),
        closed: new Promise(() => {}),
        close: async () => {},
        readable: new ReadableStream(),
        writable: new WritableStream<Uint8Array>({
          write(c) {
            if (connected) received.push(new TextDecoder().decode(c));
            else pending.push(c);
          },
        }),
      } as unknown as Socket;
    };
    const err = await createSocketTransport({ connect, log: () => {} })
      .send({
        origin,
        request: { method: "POST", url: "http://x/charge", headers: new Headers({ host: "app" }), body: null },
        connectTimeoutMs: 80,
        responseTimeoutMs: 1_000,
      })
      .catch((e: unknown) => e);
    clearTimeout(up);
    // The head waits for the open: at the connect deadline nothing was handed to the socket.
    expect(err).toBeInstanceOf(ConnectError);
    expect(received.join("")).toBe("");
  });
});

/** A rejected promise already marked handled, like workerd's socket.closed. */
function handledRejection(e: Error): Promise<never> {
  const p = Promise.reject(e);
  p.catch(() => {});
  return p;
}
