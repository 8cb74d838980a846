import fc from "fast-check";
import { RE2JS } from "re2js";
import { describe, expect, it } from "vitest";
import * as v from "valibot";
import { GatewaySection } from "./gateway.ts";
import { MAX_REGEX_PATHS_PER_KEY, pathSegments, regexKeyOverflow, regexSegmentKey } from "./regex-key.ts";

describe("regexSegmentKey", () => {
  it("finds a whole segment every match contains, or none", () => {
    expect(regexSegmentKey("(/v[0-9]+)?/r17/.*")).toBe("r17");
    expect(regexSegmentKey("/static/[a-z0-9]+\\.(css|js)")).toBe("static");
    expect(regexSegmentKey("/api/v[0-9]+/users/[0-9]+")).toBe("users");
    expect(regexSegmentKey("/a/b\\.c")).toBe("b.c"); // ends the match: the last segment is whole
    expect(regexSegmentKey("/abc.*")).toBe(""); // "abc" may continue
    expect(regexSegmentKey("/ab?c/x")).toBe("x");
    expect(regexSegmentKey("/ab?c/x.+")).toBe("");
    expect(regexSegmentKey("/a/|/b/")).toBe(""); // alternatives: nothing is required
    expect(regexSegmentKey("(?i)/admin/.*")).toBe(""); // case-insensitive: a literal is not exact
    expect(regexSegmentKey("/a\\d/")).toBe("");
  });

  it("every path a pattern fully matches (RE2) holds the pattern's key as a segment", () => {
    const token = fc.constantFrom("/", "a", "b", "r1", ".", "\\.", "*", "+", "?", "|", "(", ")", "[ab]", "[/a]", "{1,2}", "^", "$", "(?i)", "(a|/)", "(/v[0-9]+)?", "\\d", "(?:/b)");
    const chars = fc.array(fc.constantFrom("/", "a", "b", "r1", ".", "A", "v1"), { maxLength: 8 });
    fc.assert(
      fc.property(fc.array(token, { maxLength: 9 }), fc.array(chars, { minLength: 1, maxLength: 6 }), (parts, paths) => {
        const pattern = parts.join("");
        let re: RE2JS;
        try {
          re = RE2JS.compile(pattern);
        } catch {
          return; // not a pattern the schema accepts
        }
        const key = regexSegmentKey(pattern);
        if (key === "") return;
        // Paths the pattern might match: random ones, and the pattern's own literal reading.
        for (const p of [...paths.map((c) => c.join("")), pattern.replace(/[\\()?*+|{}\[\]^$]/g, "")]) {
          if (re.testExact(p)) expect(pathSegments(p)).toContain(key);
        }
      }),
      { numRuns: 5000 },
    );
  });
});

describe("the per-hostname regex cap in the snapshot (the worker keeps the last good one)", () => {
  const route = (i: number, pattern: string, hostnames = ["shop.example.com"]) => ({
    namespace: "ns",
    name: `r-${i}`,
    creationTimestamp: "2026-01-01T00:00:00Z",
    gateway: "edge/public",
    hostnames,
    rules: [{ matches: [{ path: { type: "RegularExpression", value: pattern } }] }],
  });

  it(`accepts ${MAX_REGEX_PATHS_PER_KEY} unkeyed regexes on a hostname and any number of keyed ones; refuses one more unkeyed`, () => {
    const routes = [
      ...Array.from({ length: 2000 }, (_, i) => route(i, `(/v[0-9]+)?/r${i}/.*`)),
      ...Array.from({ length: MAX_REGEX_PATHS_PER_KEY }, (_, i) => route(10_000 + i, `/[a-z]+${i}.*`)),
    ];
    expect(regexKeyOverflow(routes)).toBeUndefined();
    expect(v.safeParse(GatewaySection, { backends: [], routes }).success).toBe(true);
    const more = [...routes, route(99_999, "/[a-z]+x.*")];
    expect(regexKeyOverflow(more)).toMatch(/hostname shop\.example\.com would have 65 distinct RegularExpression path patterns with no literal path segment/);
    const parsed = v.safeParse(GatewaySection, { backends: [], routes: more });
    expect(parsed.success).toBe(false);
    // The same patterns spread over two hostnames fit.
    const spread = [...routes, route(99_999, "/[a-z]+x.*", ["other.example.com"])];
    expect(regexKeyOverflow(spread)).toBeUndefined();
  });

  it("counts distinct patterns: many routes repeating one pattern cost one (each distinct regex runs once per request)", () => {
    const same = Array.from({ length: 5000 }, (_, i) => route(i, "/static/[a-z0-9]+\\.(css|js)"));
    expect(regexKeyOverflow(same)).toBeUndefined();
  });

  it("counts one key's regexes on one hostname", () => {
    const routes = Array.from({ length: MAX_REGEX_PATHS_PER_KEY + 1 }, (_, i) => route(i, `/api/[a-z]+${i}`));
    expect(regexKeyOverflow(routes)).toMatch(/sharing the path segment "api"/);
  });
});
