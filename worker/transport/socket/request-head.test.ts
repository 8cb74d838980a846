import { describe, expect, it } from "vitest";
import { latin1 } from "./bytes.ts";
import { hostPort, requestFraming, serializeRequestHead } from "./request-head.ts";

describe("requestFraming", () => {
  it("uses a valid Content-Length, chunked otherwise, and says 0 for body-less POST", () => {
    const h = (cl?: string) => new Headers(cl === undefined ? {} : { "content-length": cl });
    expect(requestFraming("POST", h("42"), true)).toEqual({ kind: "length", length: 42 });
    expect(requestFraming("POST", h("4x"), true)).toEqual({ kind: "chunked" });
    expect(requestFraming("PUT", h(), true)).toEqual({ kind: "chunked" });
    expect(requestFraming("POST", h(), false)).toEqual({ kind: "length", length: 0 });
    expect(requestFraming("GET", h(), false)).toEqual({ kind: "none" });
  });
});

describe("serializeRequestHead", () => {
  it("writes Host first, drops hop-by-hop and Connection-listed fields, ends with its own framing", () => {
    const headers = new Headers({
      host: "app.example.com",
      connection: "Upgrade, X-Secret-Hop",
      upgrade: "h2c",
      "x-secret-hop": "1",
      "transfer-encoding": "chunked",
      "content-length": "99",
      "keep-alive": "timeout=1",
      accept: "*/*",
    });
    const head = serializeRequestHead({
      method: "PATCH",
      target: "/a/b?c=d",
      headers,
      defaultHost: "10.0.0.1:30080",
      framing: { kind: "length", length: 3 },
      connection: "close",
    });
    expect(latin1(head)).toBe(
      "PATCH /a/b?c=d HTTP/1.1\r\nhost: app.example.com\r\naccept: */*\r\ncontent-length: 3\r\nconnection: close\r\n\r\n",
    );
  });

  it("falls back to the origin address for Host, bracketing IPv6", () => {
    expect(hostPort("2001:db8::1", 30080)).toBe("[2001:db8::1]:30080");
    const head = serializeRequestHead({
      method: "GET",
      target: "/",
      headers: new Headers(),
      defaultHost: hostPort("192.0.2.7", 31000),
      framing: { kind: "none" },
      connection: "close",
    });
    expect(latin1(head)).toBe("GET / HTTP/1.1\r\nhost: 192.0.2.7:31000\r\nconnection: close\r\n\r\n");
  });

  it("refuses a request target that would break the request line", () => {
    const base = { method: "GET", headers: new Headers(), defaultHost: "h", framing: { kind: "none" }, connection: "close" } as const;
    expect(() => serializeRequestHead({ ...base, target: "/a b" })).toThrow(/invalid request target/);
    expect(() => serializeRequestHead({ ...base, target: "http://x/" })).toThrow(/invalid request target/);
    expect(() => serializeRequestHead({ ...base, method: "GET /x", target: "/" })).toThrow(/invalid method/);
  });
});
