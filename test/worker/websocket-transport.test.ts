// WebSockets through the socket transport's own handshake and frame relay,
// against a `ws` origin on loopback and against origins that break the
// protocol. (The same conversations through the whole worker, for both
// transports, are in websocket-proxy.test.ts.)
import { connect } from "cloudflare:sockets";
import { describe, expect, inject, it } from "vitest";
import { createSocketTransport, socketTransport } from "../../worker/transport/socket/index.ts";
import { MalformedResponseError, type Origin, type Transport } from "../../worker/transport/types.ts";
import { openThroughSocket, until, WsClient } from "./websocket-client.ts";

const o = inject("socketOrigins");
const wsOrigin: Origin = { node: "ws", address: o.ws.address, port: o.ws.port, scheme: "http" };
const rawOrigin: Origin = { node: "raw", address: o.raw.address, port: o.raw.port, scheme: "http" };

describe("socket transport: WebSocket relay", () => {
  it("sends the client's Host, path and subprotocol in its own handshake", async () => {
    const res = await openThroughSocket(wsOrigin, "/chat?room=1", {
      host: "app.example.com",
      "sec-websocket-protocol": "chat, superchat",
      "sec-websocket-key": "client-key-must-not-leak",
      "sec-websocket-extensions": "permessage-deflate",
      cookie: "session=abc",
    });
    expect(res.status).toBe(101);
    expect(res.headers.get("sec-websocket-protocol")).toBe("chat");
    const c = new WsClient(res.webSocket!);
    c.ws.send("handshake");
    const seen = JSON.parse((await c.next()) as string) as { headers: Record<string, string>; url: string; protocol: string };
    expect(seen.url).toBe("/chat?room=1");
    expect(seen.protocol).toBe("chat");
    expect(seen.headers.host).toBe("app.example.com");
    expect(seen.headers.cookie).toBe("session=abc");
    expect(seen.headers["sec-websocket-key"]).not.toBe("client-key-must-not-leak");
    expect(seen.headers["sec-websocket-extensions"]).toBeUndefined();
    expect((await c.close()).code).toBe(1000);
  });

  it("relays what the origin says before it has heard anything (bytes right after the 101)", async () => {
    const res = await openThroughSocket(rawOrigin, "/raw/ws-drop");
    const c = new WsClient(res.webSocket!);
    expect(await c.next()).toBe("bye");
    // TCP went away without a close frame: the client is told the origin is gone.
    expect((await c.closed).code).toBe(1014);
  });

  it("returns the origin's refusal of the upgrade as a normal response", async () => {
    const res = await openThroughSocket(rawOrigin, "/raw/ws-refuse");
    expect(res.status).toBe(403);
    expect(res.webSocket).toBeNull();
    expect(await res.text()).toBe("forbidden");
  });

  for (const [path, msg] of [
    ["/raw/ws-bad-accept", /Sec-WebSocket-Accept .* does not match the key/],
    ["/raw/ws-extension", /an extension was accepted that was not offered/],
  ] as const) {
    it(`fails a handshake the origin gets wrong (${path}) with MalformedResponseError`, async () => {
      const e = await openThroughSocket(rawOrigin, path).then(
        () => undefined,
        (err: Error) => err,
      );
      expect(e).toBeInstanceOf(MalformedResponseError);
      expect(e?.message).toMatch(msg);
    });
  }

  it("closes the client when the origin breaks the protocol (masked server frame)", async () => {
    const res = await openThroughSocket(rawOrigin, "/raw/ws-masked-frame");
    const c = new WsClient(res.webSocket!);
    expect(await c.next()).toBe("hi");
    const closed = await c.closed;
    expect(closed.code).toBe(1014);
    expect(closed.reason).toBe("origin protocol error");
  });

  it("answers the origin's pings with pongs carrying the same payload", async () => {
    const res = await openThroughSocket(wsOrigin, "/");
    const c = new WsClient(res.webSocket!);
    c.ws.send("ping");
    expect(await c.next()).toBe("pong:are you there");
    expect((await c.close()).code).toBe(1000);
  });

  it("is typed as the socket transport", () => {
    expect(socketTransport.name).toBe("socket");
  });

  it("tells the origin when the client closes, with the client's code and reason", async () => {
    const res = await openThroughSocket(wsOrigin, "/");
    const c = new WsClient(res.webSocket!);
    c.ws.send("warm-up");
    expect(await c.next()).toBe("warm-up");
    c.ws.close(4011, "client leaves");
    await until(
      async () => (await (await fetch(`${o.control}/ws/observed`)).json()) as { lastClose: { code: number; reason: string } | null },
      (v) => v.lastClose?.code === 4011,
      "the origin to see the close",
    ).then((v) => expect(v.lastClose).toEqual({ code: 4011, reason: "client leaves" }));
  });
});

describe("socket transport: WebSocket memory and keepalive", () => {
  const openWith = (t: Transport, origin: Origin, path: string) =>
    t.send({
      origin,
      request: new Request(`http://ignored.invalid${path}`, { headers: { upgrade: "websocket" } }),
      connectTimeoutMs: 2000,
      responseTimeoutMs: 5000,
    });
  const pings = async () => ((await (await fetch(`${o.control}/ws/observed`)).json()) as { pings: number }).pings;

  it("pings an idle origin so its idle timeout does not cut the connection (client pings never reach JavaScript)", async () => {
    const t = createSocketTransport({ connect, log: () => {}, webSocket: { pingIntervalMs: 100 } });
    const before = await pings();
    const c = new WsClient((await openWith(t, wsOrigin, "/")).webSocket!);
    await until(pings, (n) => n >= before + 2, "the origin to receive keepalive pings");
    // Still a working connection afterwards.
    c.ws.send("still here");
    expect(await c.next()).toBe("still here");
    expect((await c.close()).code).toBe(1000);
  });

  it("closes the client with 1009 when the origin stops taking its messages, instead of buffering without end", async () => {
    const lines: [string, string, Record<string, unknown>][] = [];
    const t = createSocketTransport({
      connect,
      log: (level, event, fields) => lines.push([level, event, fields]),
      webSocket: { maxBufferedBytes: 1 << 20 },
    });
    const res = await openWith(t, rawOrigin, "/raw/ws-deaf");
    expect(res.status).toBe(101);
    const c = new WsClient(res.webSocket!);
    let closed: { code: number; reason: string } | undefined;
    void c.closed.then((v) => (closed = v));
    const message = new Uint8Array(256 * 1024);
    // Kernel buffers take a few MiB before the origin's silence shows; 128 MiB is far past any of them.
    for (let i = 0; i < 512 && !closed; i++) {
      c.ws.send(message);
      await new Promise((r) => setTimeout(r, 0)); // let the relay see it
    }
    expect(closed?.code).toBe(1009);
    expect(lines.find(([, e]) => e === "websocket.backlog_exceeded")).toMatchObject(["warn", "websocket.backlog_exceeded", { node: "raw" }]);
  });

  for (const [how, frames] of [["in one frame", 1], ["in fragments", 8]] as const) {
    it(`closes the client with 1009 when an origin message is over the cap (${how}), and keeps serving`, async () => {
      const lines: [string, string, Record<string, unknown>][] = [];
      const t = createSocketTransport({
        connect,
        log: (level, event, fields) => lines.push([level, event, fields]),
        webSocket: { maxMessageBytes: 1 << 20 },
      });
      const c = new WsClient((await openWith(t, wsOrigin, "/")).webSocket!);
      c.ws.send("under the cap");
      expect(await c.next()).toBe("under the cap");
      c.ws.send(`fragment:binary:${frames}:${2 << 20}`);
      expect(await c.closed).toEqual({ code: 1009, reason: "message too big" });
      expect(lines.find(([, e]) => e === "websocket.message_too_big")).toMatchObject([
        "warn",
        "websocket.message_too_big",
        { node: "ws", maxMessageBytes: 1 << 20 },
      ]);
      // (The origin is sent a 1009 close too, but TCP is dropped right after it while the origin's
      // unread bytes are still arriving, so the origin may see a reset instead.)
      // The worker is still there: the next WebSocket works.
      const next = new WsClient((await openWith(t, wsOrigin, "/")).webSocket!);
      next.ws.send("after");
      expect(await next.next()).toBe("after");
      expect((await next.close()).code).toBe(1000);
    });
  }
});
