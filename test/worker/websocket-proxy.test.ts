// WebSockets through the whole worker (snapshot pushed, route, proxy, retry),
// over both transports: fetch() (workerd speaks the protocol and the 101 is
// passed on as is) and the socket transport (the worker does the handshake
// and relays frames itself). The origin is a `ws` server on loopback.
import { describe, expect, inject, it } from "vitest";
import { edgeWithService } from "./helpers.ts";
import { TRANSPORTS } from "./transports.ts";
import { until, WsClient } from "./websocket-client.ts";

const o = inject("socketOrigins");
const HOST = "ws.example.com";

/** Length and digest: a mismatch in a megabyte message stays readable. */
async function digest(data: unknown): Promise<string> {
  const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : (data as Uint8Array);
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return `${bytes.length} bytes, sha256 ${[...d.slice(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

const pattern = (n: number, text: boolean) => {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = text ? 0x61 + (i % 26) : i % 251;
  return b;
};

describe.each(TRANSPORTS)("WebSocket through the worker over the %s transport", (name) => {
  const vars = { EDGELB_TRANSPORT: name };
  const nodes = [{ name: "ws-node", address: o.ws.address, healthy: true }];
  const open = async (path = "/", headers: Record<string, string> = {}) => {
    const edge = await edgeWithService({ hostnames: [HOST], nodePort: o.ws.port }, nodes, vars);
    return edge.request(HOST, path, { headers: { upgrade: "websocket", ...headers } });
  };
  const connect = async (path = "/") => {
    const res = await open(path);
    expect(res.status).toBe(101);
    return new WsClient(res.webSocket!);
  };

  it("hands the origin the path, subprotocol and forwarding headers", async () => {
    const res = await open("/chat?room=7", { "sec-websocket-protocol": "chat, superchat", cookie: "s=1" });
    expect(res.status).toBe(101);
    expect(res.headers.get("sec-websocket-protocol")).toBe("chat");
    const c = new WsClient(res.webSocket!);
    c.ws.send("handshake");
    const seen = JSON.parse((await c.next()) as string) as { headers: Record<string, string>; url: string; protocol: string };
    expect(seen.url).toBe("/chat?room=7");
    expect(seen.protocol).toBe("chat");
    expect(seen.headers.cookie).toBe("s=1");
    expect(seen.headers["x-forwarded-host"]).toBe(HOST);
    // Only the socket transport can deliver the client's Host to an IP origin.
    if (name === "socket") expect(seen.headers.host).toBe(HOST);
    expect((await c.close()).code).toBe(1000);
  });

  it("reaches a live node when another one refuses connections", async () => {
    const edge = await edgeWithService(
      { hostnames: [HOST], nodePort: o.ws.port, policy: { algorithm: "round-robin", attempts: 2 } },
      [{ name: "dead", address: o.deadAddress, healthy: true }, ...nodes],
      vars,
    );
    for (let i = 0; i < 3; i++) {
      const res = await edge.request(HOST, "/", { headers: { upgrade: "websocket" } });
      expect(res.status).toBe(101);
      const c = new WsClient(res.webSocket!);
      c.ws.send(`try ${i}`);
      expect(await c.next()).toBe(`try ${i}`);
      expect((await c.close()).code).toBe(1000);
    }
  });

  it("echoes text, including non-ASCII", async () => {
    const c = await connect();
    for (const m of ["hello", "héllo wörld ✓ 🚀", ""]) {
      c.ws.send(m);
      expect(await c.next()).toBe(m);
    }
    expect((await c.close()).code).toBe(1000);
  });

  it("echoes binary byte for byte", async () => {
    const c = await connect();
    const bytes = pattern(1000, false);
    c.ws.send(bytes);
    const back = await c.next();
    expect(back).toBeInstanceOf(ArrayBuffer);
    expect(await digest(back)).toBe(await digest(bytes));
    expect((await c.close()).code).toBe(1000);
  });

  it("carries large messages both ways (1 MiB binary, 512 KiB text)", async () => {
    const c = await connect();
    const big = pattern(1024 * 1024, false);
    c.ws.send(big);
    expect(await digest(await c.next())).toBe(await digest(big));
    const text = new TextDecoder().decode(pattern(512 * 1024, true));
    c.ws.send(text);
    const back = await c.next();
    expect(typeof back).toBe("string");
    expect(back === text, `text of ${(back as string).length} chars comes back unchanged`).toBe(true);
    expect((await c.close()).code).toBe(1000);
  });

  it("reassembles messages the origin sends in fragments, with a ping between them", async () => {
    const c = await connect();
    c.ws.send("fragment:text:7:300000");
    const text = await c.next();
    expect(text === new TextDecoder().decode(pattern(300_000, true)), "300 kB text reassembled").toBe(true);
    // The origin pinged after the first fragment and reports the pong it got.
    expect(await c.next()).toBe("pong:mid-message");
    c.ws.send("fragment:binary:16:1000000");
    expect(await digest(await c.next())).toBe(await digest(pattern(1_000_000, false)));
    expect(await c.next()).toBe("pong:mid-message");
    expect((await c.close()).code).toBe(1000);
  });

  it("passes the origin's close code and reason to the client", async () => {
    const c = await connect();
    c.ws.send("close:4321");
    expect(await c.closed).toEqual({ code: 4321, reason: "bye from origin" });
  });

  it("passes the client's close code and reason to the origin", async () => {
    const c = await connect();
    c.ws.send("warm-up");
    expect(await c.next()).toBe("warm-up");
    const code = name === "socket" ? 4101 : 4102;
    c.ws.close(code, `client of ${name} leaves`);
    const seen = await until(
      async () => (await (await fetch(`${o.control}/ws/observed`)).json()) as { lastClose: { code: number; reason: string } | null },
      (v) => v.lastClose?.code === code,
      "the origin to see the close",
    );
    expect(seen.lastClose).toEqual({ code, reason: `client of ${name} leaves` });
  });

  it(name === "socket" ? "counts an open WebSocket as in flight on its node until it closes (least-request sees it)" : "stops counting a WebSocket as in flight at the 101 (the runtime relays it unseen)", async () => {
    const edge = await edgeWithService({ hostnames: [HOST], nodePort: o.ws.port }, nodes, vars);
    const inFlight = () => {
      let n = 0;
      const walk = (v: unknown): void => {
        if (Array.isArray(v)) v.forEach(walk);
        else if (v && typeof v === "object") {
          for (const [k, x] of Object.entries(v)) {
            if (k === "inFlight" && typeof x === "number") n += x;
            else walk(x);
          }
        }
      };
      walk(edge.status());
      return n;
    };
    const res = await edge.request(HOST, "/", { headers: { upgrade: "websocket" } });
    expect(res.status).toBe(101);
    const c = new WsClient(res.webSocket!);
    c.ws.send("ping-pong");
    expect(await c.next()).toBe("ping-pong");
    expect(inFlight()).toBe(name === "socket" ? 1 : 0);
    await c.close();
    await until(async () => inFlight(), (v) => v === 0, "the closed WebSocket to leave the in-flight count");
  });
});
