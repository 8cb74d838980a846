// The client's fields from a parsed response head.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { ResponseHead } from "./response-parser.ts";
import { responseFieldsInit, responseHeaders } from "./response-body.ts";

const head = (headers: [string, string][]): ResponseHead => ({ version: "1.1", status: 200, statusText: "OK", headers, framing: { kind: "none" } });

describe("responseHeaders", () => {
  it("drops hop-by-hop fields and those the origin's Connection names, keeps the rest in order", () => {
    const h = head([["x-a", "1"], ["connection", "close, x-secret"], ["x-secret", "s"], ["transfer-encoding", "chunked"], ["set-cookie", "a"], ["set-cookie", "b"]]);
    expect(responseHeaders(h)).toEqual([["x-a", "1"], ["set-cookie", "a"], ["set-cookie", "b"]]);
    expect(responseHeaders(head([["x-a", "1"], ["sec-websocket-accept", "k"]]), ["sec-websocket-accept"])).toEqual([["x-a", "1"]]);
  });

  it("hands over the parsed fields as they are when none is to be dropped (no copy per request)", () => {
    const fields: [string, string][] = [["content-length", "2"], ["x-edgelb-node", "node-1"]];
    expect(responseHeaders(head(fields))).toBe(fields);
  });
});

/** Every entry of a Headers, Set-Cookie values one by one (what the client gets). */
const setCookies = (h: Headers) => (h as unknown as { getSetCookie(): string[] }).getSetCookie();
const entriesOf = (h: Headers) => ({ entries: [...h], cookies: setCookies(h) });

describe("responseFieldsInit (the Response's headers init)", () => {
  it("gives the runtime a record without prototype when no name repeats, hop-by-hop fields and those Connection names left out", () => {
    const init = responseFieldsInit(head([["content-type", "text/plain"], ["connection", "close, X-Secret"], ["x-secret", "s"], ["transfer-encoding", "chunked"], ["__proto__", "p"]]));
    expect(Array.isArray(init)).toBe(false);
    expect(Object.getPrototypeOf(init)).toBe(null);
    expect({ ...init }).toEqual({ "content-type": "text/plain", ["__proto__"]: "p" });
    expect(entriesOf(new Headers(init)).entries).toEqual([["__proto__", "p"], ["content-type", "text/plain"]]);
  });

  it("keeps every value of a repeated name (Set-Cookie) as pairs", () => {
    const init = responseFieldsInit(head([["set-cookie", "a=1"], ["x-a", "1"], ["set-cookie", "b=2"]]));
    expect(init).toEqual([["set-cookie", "a=1"], ["x-a", "1"], ["set-cookie", "b=2"]]);
    expect(setCookies(new Headers(init))).toEqual(["a=1", "b=2"]);
  });

  it("makes the same Headers as the pairs of responseHeaders, whatever the fields (property)", () => {
    // Names that collide with hop-by-hop ones, Object.prototype members, integer-like keys, and random tokens.
    const name = fc.oneof(
      fc.constantFrom("connection", "keep-alive", "transfer-encoding", "upgrade", "trailer", "proxy-connection", "set-cookie", "content-length",
        "__proto__", "constructor", "tostring", "hasownproperty", "1", "0", "x-a", "x-b"),
      fc.stringMatching(/^[!#$%&'*+\-.^_`|~0-9a-z]{1,12}$/),
    );
    const value = fc.oneof(fc.stringMatching(/^[\x21-\x7e]([\x20-\x7e]{0,20}[\x21-\x7e])?$/), fc.constant(""));
    const field = fc.oneof(
      fc.tuple(name, value),
      // A Connection field naming some of the other fields, in any case, with blanks and empty members.
      fc.array(fc.oneof(name, name.map((n) => n.toUpperCase()), fc.constant("close"), fc.constant("")), { maxLength: 4 }).map((ns) => ["connection", ns.join(" , ")] as [string, string]),
    );
    fc.assert(
      fc.property(fc.array(field, { maxLength: 12 }), (fields) => {
        const h = head(fields);
        expect(entriesOf(new Headers(responseFieldsInit(h)))).toEqual(entriesOf(new Headers(responseHeaders(h))));
      }),
      { numRuns: 500 },
    );
  });
});
