import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { originRequestHeaders } from "../../proxy/headers.ts";
import type { GatewayFilter } from "../../snapshot/gateway.ts";
import { applyHeaderEdits, compileFilters, isProtectedRequestHeader, redirectLocation, rewritePath } from "./index.ts";

const redirect = (r: Record<string, unknown>) =>
  compileFilters([{ type: "RequestRedirect", requestRedirect: { statusCode: 302, ...r } } as GatewayFilter]).redirect!;

describe("URLRewrite / redirect paths (conformance HTTPRouteRewritePath, HTTPRouteRedirectPath)", () => {
  const prefix = (replacePrefixMatch: string) => ({ type: "ReplacePrefixMatch" as const, replacePrefixMatch });
  it("ReplacePrefixMatch replaces the matched prefix element-wise", () => {
    expect(rewritePath(prefix("/one"), "/prefix/one/two", "/prefix/one")).toBe("/one/two");
    expect(rewritePath(prefix("/"), "/strip-prefix/three", "/strip-prefix")).toBe("/three");
    expect(rewritePath(prefix("/"), "/strip-prefix", "/strip-prefix")).toBe("/");
    expect(rewritePath(prefix("/replacement-prefix"), "/original-prefix/lemon", "/original-prefix")).toBe("/replacement-prefix/lemon");
    expect(rewritePath(prefix("/replacement-prefix"), "/path-and-host", "/path-and-host")).toBe("/replacement-prefix");
    expect(rewritePath(prefix("/one/"), "/prefix/one/", "/prefix/one/")).toBe("/one/");
  });
  it("ReplaceFullPath replaces the whole path", () => {
    expect(rewritePath({ type: "ReplaceFullPath", replaceFullPath: "/one" }, "/full/one/two", "/full")).toBe("/one");
  });
});

describe("RequestRedirect Location (conformance HTTPRouteRedirectHostAndStatus, PortAndScheme, Scheme)", () => {
  const url = (u: string) => new URL(u);
  it("keeps what the filter does not set: scheme, host, port, path and query", () => {
    expect(redirectLocation(redirect({ hostname: "example.org" }), url("http://gw.test/hostname-redirect?x=1"), "gw.test", "/hostname-redirect")).toBe(
      "http://example.org/hostname-redirect?x=1",
    );
    expect(redirectLocation(redirect({ hostname: "example.org" }), url("http://gw.test:8080/a"), "gw.test:8080", "/")).toBe("http://example.org:8080/a");
  });
  it("a scheme without a port goes to that scheme's well-known port, left out of the Location", () => {
    expect(redirectLocation(redirect({ scheme: "https" }), url("http://gw.test:8080/s"), "gw.test:8080", "/")).toBe("https://gw.test/s");
    expect(redirectLocation(redirect({ scheme: "http" }), url("https://gw.test/s"), "gw.test", "/")).toBe("http://gw.test/s");
  });
  it("a port is kept unless it is the scheme's well-known one", () => {
    expect(redirectLocation(redirect({ port: 8443 }), url("http://gw.test/p"), "gw.test", "/")).toBe("http://gw.test:8443/p");
    expect(redirectLocation(redirect({ scheme: "https", port: 443 }), url("http://gw.test/p"), "gw.test", "/")).toBe("https://gw.test/p");
    expect(redirectLocation(redirect({ scheme: "https", port: 8443 }), url("http://gw.test/p"), "gw.test", "/")).toBe("https://gw.test:8443/p");
    expect(redirectLocation(redirect({ port: 80 }), url("https://gw.test/p"), "gw.test", "/")).toBe("https://gw.test:80/p");
  });
  it("applies the path modifier", () => {
    expect(
      redirectLocation(redirect({ path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/replacement-prefix" } }), url("http://gw.test/original-prefix/lemon"), "gw.test", "/original-prefix"),
    ).toBe("http://gw.test/replacement-prefix/lemon");
  });
});

describe("header modifiers (conformance HTTPRouteRequestHeaderModifier)", () => {
  it("set overwrites, add appends, remove deletes; names are case-insensitive", () => {
    const f = compileFilters([
      {
        type: "RequestHeaderModifier",
        requestHeaderModifier: {
          set: [{ name: "X-Header-Set", value: "set-overwrites-values" }],
          add: [
            { name: "X-Header-Add", value: "header-val-1" },
            { name: "X-Header-Add-Append", value: "header-val-2" },
          ],
          remove: ["X-Header-Remove"],
        },
      },
    ]);
    const h = new Headers({ "x-header-set": "set-val", "x-header-add-append": "append-val-1", "x-header-remove": "remove-val" });
    applyHeaderEdits(h, f.requestHeaders!);
    expect(h.get("x-header-set")).toBe("set-overwrites-values");
    expect(h.get("x-header-add")).toBe("header-val-1");
    expect(h.get("x-header-add-append")).toBe("append-val-1, header-val-2");
    expect(h.has("x-header-remove")).toBe(false);
  });

  it("refuses, and reports once, entries for fields the edge vouches for", () => {
    const f = compileFilters([
      {
        type: "RequestHeaderModifier",
        requestHeaderModifier: {
          set: [
            { name: "X-Forwarded-For", value: "1.2.3.4" },
            { name: "CF-Connecting-IP", value: "1.2.3.4" },
            { name: "Host", value: "evil" },
            { name: "x-ok", value: "yes" },
          ],
          add: [{ name: "Transfer-Encoding", value: "chunked" }],
          remove: ["x-request-id"],
        },
      },
    ]);
    expect(f.requestHeaders).toEqual({ set: [["x-ok", "yes"]], add: [], remove: [] });
    expect(f.ignored).toHaveLength(5);
    expect(f.ignored[0]).toContain("x-forwarded-for is set by the edge");
  });

  it("refuses values a route could use to smuggle a line: non-ASCII whose low bytes are CR LF", () => {
    const f = compileFilters([{ type: "ResponseHeaderModifier", responseHeaderModifier: { set: [{ name: "x-a", value: "\u010d\u010a" }], add: [], remove: [] } }]);
    expect(f.responseHeaders!.set).toEqual([]);
    expect(f.ignored[0]).toContain('invalid header "x-a"');
  });
});

// Every name a route could try, including the protected ones in odd case, and random tokens.
const nameArb = fc.oneof(
  fc.constantFrom(
    "X-Forwarded-For",
    "x-forwarded-proto",
    "X-FORWARDED-HOST",
    "Forwarded",
    "x-real-ip",
    "CF-Connecting-IP",
    "cf-ipcountry",
    "Host",
    "Connection",
    "Transfer-Encoding",
    "Upgrade",
    "TE",
    "Keep-Alive",
    "Proxy-Authorization",
    "Content-Length",
    "X-Request-Id",
    "x-app",
  ),
  fc.stringMatching(/^[A-Za-z0-9!#$%&'*+\-.^_`|~]{1,12}$/),
);
// Values may hold anything, including CR, LF, NUL and code points whose low byte is CR or LF.
const valueArb = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom("a\r\nx-evil: 1", "\n", "\r", "a\x00b", "\u010d\u010a", "ok"));
const editsArb = fc.record({
  set: fc.array(fc.record({ name: nameArb, value: valueArb }), { maxLength: 4 }),
  add: fc.array(fc.record({ name: nameArb, value: valueArb }), { maxLength: 4 }),
  remove: fc.array(nameArb, { maxLength: 4 }),
});

describe("header modifier property: a route can never forge the edge's fields or break a header line", () => {
  it("the origin request's forwarding, hop-by-hop and CF fields are the edge's, and no value holds CR, LF or NUL", () => {
    fc.assert(
      fc.property(editsArb, (modifier) => {
        const f = compileFilters([{ type: "RequestHeaderModifier", requestHeaderModifier: modifier }]);
        const client = new Headers({ "cf-connecting-ip": "203.0.113.9", host: "app.test", "x-app": "1" });
        applyHeaderEdits(client, f.requestHeaders!);
        const request = new Request("https://app.test/", { headers: client });
        const out = originRequestHeaders(request, { clientIp: request.headers.get("cf-connecting-ip") ?? undefined, proto: "https", host: request.headers.get("host")!, requestId: "rid" }, false);
        expect(out).toBeInstanceOf(Headers);
        const h = out as Headers;
        expect(request.headers.get("cf-connecting-ip")).toBe("203.0.113.9");
        expect(h.get("x-forwarded-for")).toBe("203.0.113.9");
        expect(h.get("x-real-ip")).toBe("203.0.113.9");
        expect(h.get("x-forwarded-proto")).toBe("https");
        expect(h.get("x-forwarded-host")).toBe("app.test");
        expect(h.get("host")).toBe("app.test");
        expect(h.get("x-request-id")).toBe("rid");
        for (const hop of ["connection", "transfer-encoding", "upgrade", "te", "keep-alive", "proxy-authorization", "content-length"]) expect(h.has(hop)).toBe(false);
        for (const [, value] of h) expect(value).not.toMatch(/[\r\n\x00]/);
        // And nothing the compiler kept names a protected field.
        for (const [name] of [...f.requestHeaders!.set, ...f.requestHeaders!.add]) expect(isProtectedRequestHeader(name)).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it("response edits never touch framing fields nor write a line break", () => {
    fc.assert(
      fc.property(editsArb, (modifier) => {
        const f = compileFilters([{ type: "ResponseHeaderModifier", responseHeaderModifier: modifier }]);
        const h = new Headers({ "content-length": "5", "content-encoding": "gzip", "x-request-id": "rid" });
        applyHeaderEdits(h, f.responseHeaders!);
        expect(h.get("content-length")).toBe("5");
        expect(h.get("content-encoding")).toBe("gzip");
        expect(h.get("x-request-id")).toBe("rid");
        expect(h.has("transfer-encoding") || h.has("connection")).toBe(false);
        for (const [, value] of h) expect(value).not.toMatch(/[\r\n\x00]/);
      }),
      { numRuns: 500 },
    );
  });
});
