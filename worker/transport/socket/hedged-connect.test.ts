// The connect race on its own, with sockets whose opening the test controls.
import { describe, expect, it } from "vitest";
import { ConnectError, type ConnectHedge, type Origin, UpstreamResetError } from "../types.ts";
import type { Connect } from "./connection.ts";
import { openHedged, readHedgedHead } from "./hedged-connect.ts";
import { ResponseParser } from "./response-parser.ts";
import { createSocketTransport } from "./transport.ts";

const a: Origin = { node: "a", address: "192.0.2.1", port: 30080, scheme: "http" };
const b: Origin = { node: "b", address: "192.0.2.2", port: 30080, scheme: "http" };

interface FakeSocket {
  open(): void;
  fail(e: Error): void;
  /** The origin's answer: these bytes, then the end of the stream. */
  answer(text: string): void;
  closed: boolean;
  written: number;
  /** What was written, decoded. */
  data: string;
  /** A read of the answer is waiting (the transport asked for bytes). */
  reading: boolean;
}

/** connect() per address: a socket that opens (or fails) when the test says so. */
function fakeNet() {
  const sockets = new Map<string, FakeSocket>();
  const connect: Connect = (address) => {
    let open!: () => void;
    let fail!: (e: Error) => void;
    const opened = new Promise<void>((res, rej) => ((open = res), (fail = rej)));
    opened.catch(() => {});
    let answer!: ReadableStreamDefaultController<Uint8Array>;
    const end = () => {
      try {
        answer.close();
      } catch {
        // already ended
      }
    };
    const s: FakeSocket = {
      open: () => open(),
      fail: (e) => (fail(e), end()),
      answer: (text) => (answer.enqueue(new TextEncoder().encode(text)), end()),
      closed: false,
      written: 0,
      data: "",
      reading: false,
    };
    sockets.set(address.hostname, s);
    return {
      opened,
      closed: new Promise(() => {}),
      // As a real socket: closing it ends a pending read.
      close: async () => void ((s.closed = true), end()),
      // highWaterMark 0: pulled only while a read waits.
      readable: new ReadableStream<Uint8Array>({ start: (c) => void (answer = c), pull: () => void (s.reading = true) }, { highWaterMark: 0 }),
      writable: new WritableStream({ write: (chunk: Uint8Array) => void (s.written++, (s.data += new TextDecoder().decode(chunk))) }),
    } as unknown as Socket;
  };
  return { connect, sockets };
}

function recordingHedge(delayMs: number, second: Origin | undefined) {
  const settled: { node: string; used: boolean; error?: string }[] = [];
  const alive: Promise<unknown>[] = [];
  let asked = 0;
  const hedge: ConnectHedge = {
    delayMs,
    next: () => (asked++, second),
    settled: (o, r) => settled.push({ node: o.node, used: r.used, ...(r.error ? { error: r.error.name } : {}) }),
    keepAlive: (p) => void alive.push(p),
  };
  return { hedge, settled, alive, asked: () => asked };
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(check()).toBe(true);
};

describe("openHedged", () => {
  it("uses the first node when it opens within the delay, and asks for no second", async () => {
    const net = fakeNet();
    const h = recordingHedge(50, b);
    const conn = openHedged(net.connect, a, 1_000, h.hedge);
    net.sockets.get(a.address)!.open();
    expect((await conn).origin).toBe(a);
    expect(h.asked()).toBe(0);
    expect(h.settled).toEqual([{ node: "a", used: true }]);
    expect(h.alive).toHaveLength(0);
  });

  it("starts the second node's connect after the delay and goes over whichever opens first; the loser is closed unused", async () => {
    const net = fakeNet();
    const h = recordingHedge(20, b);
    const conn = openHedged(net.connect, a, 1_000, h.hedge);
    await until(() => net.sockets.has(b.address));
    net.sockets.get(b.address)!.open();
    expect((await conn).origin).toBe(b);
    net.sockets.get(a.address)!.open();
    await Promise.all(h.alive);
    expect(net.sockets.get(a.address)).toMatchObject({ closed: true, written: 0 });
    expect(h.settled).toEqual([
      { node: "b", used: true },
      { node: "a", used: false },
    ]);
  });

  it("reports the slow node's own timeout after the second won (outlier detection)", async () => {
    const net = fakeNet();
    const h = recordingHedge(10, b);
    const conn = openHedged(net.connect, a, 60, h.hedge);
    await until(() => net.sockets.has(b.address));
    net.sockets.get(b.address)!.open();
    expect((await conn).origin).toBe(b);
    await Promise.all(h.alive);
    expect(h.settled).toEqual([
      { node: "b", used: true },
      { node: "a", used: false, error: "ConnectError" },
    ]);
  });

  it("throws the first node's error once both failed, and reports the second's as lost", async () => {
    const net = fakeNet();
    const h = recordingHedge(10, b);
    const conn = openHedged(net.connect, a, 60, h.hedge);
    await until(() => net.sockets.has(b.address));
    net.sockets.get(b.address)!.fail(new Error("connection refused"));
    const err = await conn.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).origin).toBe(a);
    expect((err as ConnectError).timedOut).toBe(true);
    expect(h.settled).toEqual([
      { node: "b", used: false, error: "ConnectError" },
      { node: "a", used: true, error: "ConnectError" },
    ]);
  });

  it("waits on the first node alone when there is no second", async () => {
    const net = fakeNet();
    const h = recordingHedge(10, undefined);
    const conn = openHedged(net.connect, a, 1_000, h.hedge);
    await until(() => h.asked() === 1);
    net.sockets.get(a.address)!.open();
    expect((await conn).origin).toBe(a);
    expect(net.sockets.size).toBe(1);
  });
});

describe("readHedgedHead (bodyless safe methods: the fast start under a hedge)", () => {
  const enc = (t: string) => new TextEncoder().encode(t);
  const headFor = (o: Origin) => Promise.resolve(enc(`GET / for ${o.node}`));
  const ok = (node: string) => `HTTP/1.1 200 OK\r\ncontent-length: ${node.length}\r\n\r\n${node}`;
  const race = (net: ReturnType<typeof fakeNet>, h: ReturnType<typeof recordingHedge>, connectMs: number, second = headFor) => {
    const options = { method: "GET" };
    const p = readHedgedHead(net.connect, a, enc("GET / for a"), second, connectMs, 1_000, h.hedge, new ResponseParser(options), options);
    p.catch(() => {});
    return p;
  };
  /** The body bytes that came with the winner's head. */
  const body = (r: Awaited<ReturnType<typeof readHedgedHead>>) =>
    r.pending.map((e) => (e.kind === "data" ? new TextDecoder().decode(e.bytes) : "")).join("");

  it("queues the head and waits for the first node's answer before its connection opens, as without a hedge", async () => {
    const net = fakeNet();
    const h = recordingHedge(50, b);
    const won = race(net, h, 1_000);
    // Written and read before the open: the runtime sends the head once the connection is up.
    expect(net.sockets.get(a.address)).toMatchObject({ written: 1, data: "GET / for a" });
    await until(() => net.sockets.get(a.address)!.reading);
    net.sockets.get(a.address)!.open();
    net.sockets.get(a.address)!.answer(ok("a"));
    const r = await won;
    expect(r.conn.origin).toBe(a);
    expect(r.head.status).toBe(200);
    expect(body(r)).toBe("a");
    await new Promise((r) => setTimeout(r, 80));
    expect(h.asked()).toBe(0);
    expect(net.sockets.size).toBe(1);
    expect(h.settled).toEqual([{ node: "a", used: true }]);
    expect(h.alive).toHaveLength(0);
  });

  it("starts the second node with its own head after the delay; the first to open wins and its answer is read, the late one is closed unread and reported unused", async () => {
    const net = fakeNet();
    const h = recordingHedge(20, b);
    const won = race(net, h, 1_000);
    await until(() => net.sockets.has(b.address));
    expect(net.sockets.get(b.address)).toMatchObject({ data: "GET / for b" });
    net.sockets.get(b.address)!.open();
    net.sockets.get(b.address)!.answer(ok("b"));
    const r = await won;
    expect(r.conn.origin).toBe(b);
    expect(body(r)).toBe("b");
    expect(r.conn.closed).toBe(false);
    net.sockets.get(a.address)!.open();
    await Promise.all(h.alive);
    expect(net.sockets.get(a.address)!.closed).toBe(true);
    expect(h.settled).toEqual([
      { node: "b", used: true },
      { node: "a", used: false },
    ]);
  });

  it("reads the first node's answer when it opens first after the second started", async () => {
    const net = fakeNet();
    const h = recordingHedge(10, b);
    const won = race(net, h, 1_000);
    await until(() => net.sockets.has(b.address));
    net.sockets.get(a.address)!.open();
    net.sockets.get(a.address)!.answer(ok("a"));
    const r = await won;
    expect(r.conn.origin).toBe(a);
    expect(body(r)).toBe("a");
    net.sockets.get(b.address)!.open();
    await Promise.all(h.alive);
    expect(net.sockets.get(b.address)!.closed).toBe(true);
    expect(h.settled).toEqual([
      { node: "a", used: true },
      { node: "b", used: false },
    ]);
  });

  it("reports the slow node's own timeout after the second won", async () => {
    const net = fakeNet();
    const h = recordingHedge(10, b);
    const won = race(net, h, 60);
    await until(() => net.sockets.has(b.address));
    net.sockets.get(b.address)!.open();
    net.sockets.get(b.address)!.answer(ok("b"));
    expect((await won).conn.origin).toBe(b);
    await Promise.all(h.alive);
    expect(h.settled).toEqual([
      { node: "b", used: true },
      { node: "a", used: false, error: "ConnectError" },
    ]);
  });

  it("throws the first node's error once both failed, and reports the second's as lost", async () => {
    const net = fakeNet();
    const h = recordingHedge(10, b);
    const won = race(net, h, 60);
    await until(() => net.sockets.has(b.address));
    net.sockets.get(b.address)!.fail(new Error("connection refused"));
    const err = await won.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).origin).toBe(a);
    expect((err as ConnectError).timedOut).toBe(true);
    expect(h.settled).toEqual([
      { node: "b", used: false, error: "ConnectError" },
      { node: "a", used: true, error: "ConnectError" },
    ]);
  });

  it("starts no second when its head cannot be made, and waits on the first node alone", async () => {
    const net = fakeNet();
    const h = recordingHedge(10, b);
    const won = race(net, h, 1_000, () => Promise.reject(new Error("bad header")));
    await until(() => h.asked() === 1);
    await new Promise((r) => setTimeout(r, 20));
    net.sockets.get(a.address)!.open();
    net.sockets.get(a.address)!.answer(ok("a"));
    expect((await won).conn.origin).toBe(a);
    expect(net.sockets.size).toBe(1);
  });

  it("fails at once with the first node's error when it is refused before the delay", async () => {
    const net = fakeNet();
    const h = recordingHedge(30, b);
    const won = race(net, h, 1_000);
    net.sockets.get(a.address)!.fail(new Error("connection refused"));
    const err = await won.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).timedOut).toBe(false);
    await new Promise((r) => setTimeout(r, 60));
    expect(h.asked()).toBe(0);
    expect(h.settled).toEqual([{ node: "a", used: true, error: "ConnectError" }]);
  });

  it("a node that opened and then hung up before answering is not a ConnectError (the GET may have run): no second is tried", async () => {
    const net = fakeNet();
    const h = recordingHedge(30, b);
    const won = race(net, h, 1_000);
    net.sockets.get(a.address)!.open();
    await until(() => h.settled.length === 1);
    net.sockets.get(a.address)!.answer("");
    const err = await won.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamResetError);
    await new Promise((r) => setTimeout(r, 60));
    expect(h.asked()).toBe(0);
    expect(h.settled).toEqual([{ node: "a", used: true }]);
  });
});

describe("the socket transport under a hedge: which requests take the fast start", () => {
  // The first node is refused after the test looked: the delay is never reached, no second.
  const send = (method: string, body: string | null) => {
    const net = fakeNet();
    const h = recordingHedge(500, b);
    const transport = createSocketTransport({ connect: net.connect, log: () => {} });
    const headers = new Headers(body === null ? {} : { "content-length": String(body.length) });
    const sent = transport.send({
      origin: a,
      request: { method, url: "http://example.com/x", headers, body: body === null ? null : new Response(body).body },
      connectTimeoutMs: 1_000,
      responseTimeoutMs: 1_000,
      hedge: h.hedge,
    });
    sent.catch(() => {});
    return { net, h, sent };
  };
  const beforeOpen = async (method: string, body: string | null) => {
    const { net, sent } = send(method, body);
    await new Promise((r) => setTimeout(r, 10));
    const written = net.sockets.get(a.address)!.data;
    net.sockets.get(a.address)!.fail(new Error("connection refused"));
    expect(await sent.catch((e: unknown) => e)).toBeInstanceOf(ConnectError);
    return written;
  };

  it("a hedged GET waits for its answer before its connection opens, as an unhedged one does (no turn spent on the open)", async () => {
    const { net, h, sent } = send("GET", null);
    const a1 = () => net.sockets.get(a.address);
    await until(() => a1()?.reading === true);
    a1()!.open();
    a1()!.answer("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    const res = await sent;
    expect(await res.text()).toBe("ok");
    expect(h.settled).toEqual([{ node: "a", used: true }]);
  });

  it("queues a GET, HEAD or OPTIONS head before the open (readHedgedHead)", async () => {
    for (const method of ["GET", "HEAD", "OPTIONS"]) expect(await beforeOpen(method, null)).toMatch(new RegExp(`^${method} /x HTTP/1.1\r\n`));
  });

  it("writes nothing before the open for PUT, DELETE, POST or a body (openHedged): such a request reaches one node only", async () => {
    for (const [method, body] of [["PUT", null], ["DELETE", null], ["POST", "x"], ["PATCH", "x"], ["PUT", "x"]] as const) {
      expect(await beforeOpen(method, body)).toBe("");
    }
  });
});
