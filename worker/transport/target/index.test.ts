import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isHttps, pathAndQuery } from "./index.ts";

describe("pathAndQuery", () => {
  it("reads path and query as new URL does, for any http(s) URL the runtime serializes", () => {
    fc.assert(
      fc.property(fc.webUrl({ withQueryParameters: true, withFragments: true, validSchemes: ["http", "https"] }), (raw) => {
        const u = new URL(raw);
        expect(pathAndQuery(u.href)).toBe(u.pathname + u.search);
        expect(isHttps(u.href)).toBe(u.protocol === "https:");
      }),
      { numRuns: 500 },
    );
  });

  it("handles ports, userinfo, IPv6 hosts, an empty path and a query or fragment right after the host", () => {
    for (const raw of ["http://a.example:8080", "http://u:p@a.example/x?y", "http://[2001:db8::1]:30080/p?q=1#f", "https://h?q", "http://h#frag", "http://h/%20a/b?c=%2F"]) {
      const u = new URL(raw);
      expect(pathAndQuery(u.href), raw).toBe(u.pathname + u.search);
    }
  });
});
