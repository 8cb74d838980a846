import { describe, expect, it } from "vitest";
import { clientResponseHeaders, edgeFacts, originRequestHeaders, requestIdOf, stripHopByHop } from "./headers.ts";

describe("hop-by-hop headers", () => {
  it("are removed from responses too, with any header the Connection field names", () => {
    const upstream = new Response("x", {
      headers: { connection: "close, x-trace-hop", "x-trace-hop": "1", "keep-alive": "timeout=5", "content-type": "text/plain", "set-cookie": "a=1" },
    });
    const h = clientResponseHeaders(upstream, "rid");
    expect([...h.keys()].sort()).toEqual(["content-type", "set-cookie", "x-request-id"]);
  });

  it("keep Upgrade and Connection for a WebSocket handshake", () => {
    const req = new Request("https://ws.example.com/chat", {
      headers: { upgrade: "websocket", connection: "Upgrade", "sec-websocket-key": "k", "keep-alive": "1" },
    });
    const h = originRequestHeaders(req, edgeFacts(req, "rid"), true);
    expect(h.get("upgrade")).toBe("websocket");
    expect(h.get("connection")).toBe("Upgrade");
    expect(h.get("sec-websocket-key")).toBe("k");
    expect(h.has("keep-alive")).toBe(false);
    expect(stripHopByHop(new Headers({ upgrade: "websocket" })).has("upgrade")).toBe(false);
  });
});

describe("request id", () => {
  it("keeps a sane incoming id and replaces an unusable one", () => {
    expect(requestIdOf(new Request("https://a/", { headers: { "x-request-id": "req-42" } }))).toBe("req-42");
    const long = requestIdOf(new Request("https://a/", { headers: { "x-request-id": "x".repeat(201) } }));
    expect(long).toMatch(/^[0-9a-f-]{36}$/);
    expect(requestIdOf(new Request("https://a/", { headers: { "x-request-id": "has space" } }))).not.toBe("has space");
  });
});

describe("forwarding headers", () => {
  it("omit the client address when the edge does not know it (local development)", () => {
    const req = new Request("http://app.local:8787/", { headers: { "x-forwarded-for": "6.6.6.6", host: "app.local:8787" } });
    const h = originRequestHeaders(req, edgeFacts(req, "rid"), false);
    expect(h.has("x-forwarded-for")).toBe(false);
    expect(h.get("x-forwarded-proto")).toBe("http");
    expect(h.get("x-forwarded-host")).toBe("app.local:8787");
    expect(h.get("host")).toBe("app.local:8787");
  });
});
