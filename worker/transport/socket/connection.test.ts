// How a failed connect is told apart: a connect timeout (a blackholed node)
// from a refusal, because passive health ejects on the first timeout.
import { describe, expect, it } from "vitest";
import { ConnectError, ResponseTimeoutError } from "../types.ts";
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
