// Hostname intersection (HTTPRouteSpec.hostnames): the spec's examples, and
// properties over generated names: symmetric, and the effective hostname is
// one of the two, covered by both.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { effectiveHostnames, intersectHostname } from "./hostnames.ts";

/** Does a request for `host` match pattern `p` (exact, or `*.suffix` with at least one more label)? */
const matches = (p: string, host: string) => (p.startsWith("*.") ? host.endsWith(p.slice(1)) && host.length > p.length - 1 : p === host);

describe("hostname intersection", () => {
  it("follows the spec's examples", () => {
    expect(intersectHostname("*.example.com", "foo.example.com")).toBe("foo.example.com");
    expect(intersectHostname("*.example.com", "foo.bar.example.com")).toBe("foo.bar.example.com");
    expect(intersectHostname("*.example.com", "example.com")).toBeUndefined();
    expect(intersectHostname("foo.example.com", "*.example.com")).toBe("foo.example.com");
    expect(intersectHostname("*.example.com", "*.foo.example.com")).toBe("*.foo.example.com");
    expect(intersectHostname("*.foo.example.com", "*.example.com")).toBe("*.foo.example.com");
    expect(intersectHostname("bar.com", "*.bar.com")).toBeUndefined();
    expect(intersectHostname("*.bar.com", "*.anotherdomain.com")).toBeUndefined();
    expect(intersectHostname("a.com", "a.com")).toBe("a.com");
    expect(effectiveHostnames(undefined, [])).toEqual(["*"]);
    expect(effectiveHostnames("x.com", [])).toEqual(["x.com"]);
    expect(effectiveHostnames(undefined, ["a.com", "a.com"])).toEqual(["a.com"]);
    expect(effectiveHostnames("*.bar.com", ["*.bar.com", "very.specific.com", "foo.bar.com"])).toEqual(["*.bar.com", "foo.bar.com"]);
  });

  const label = fc.constantFrom("a", "b", "foo", "bar", "example");
  const exact = fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join("."));
  const name = fc.oneof(exact, exact.map((e) => `*.${e}`));

  it("is symmetric, and the result is one of the two and within both", () => {
    fc.assert(
      fc.property(name, name, exact, (a, b, host) => {
        const r = intersectHostname(a, b);
        expect(intersectHostname(b, a)).toBe(r);
        if (r === undefined) {
          // No host matches both patterns.
          expect(matches(a, host) && matches(b, host)).toBe(false);
          return;
        }
        expect([a, b]).toContain(r);
        // Any host the effective hostname matches, both sides match.
        if (matches(r, host)) expect(matches(a, host) && matches(b, host)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});
