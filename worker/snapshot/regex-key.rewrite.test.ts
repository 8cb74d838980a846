// The table-driven scanner gives exactly the keys the six-branch one gave
// (regex-key.legacy.ts), on random patterns biased towards RE2 syntax.
import fc from "fast-check";
import { expect, it } from "vitest";
import { regexSegmentKey as legacy } from "./regex-key.legacy.ts";
import { regexSegmentKey } from "./regex-key.ts";

it("the table-driven scanner keys every pattern exactly as the old one did", () => {
  // Mostly literal text and whole items, so that many patterns do have a key; some raw syntax and noise.
  const piece = fc.oneof(
    { arbitrary: fc.constantFrom("/", "a", "b", "r1", "/v2/", "-"), weight: 8 },
    { arbitrary: fc.constantFrom(".", ".*", "a?", "b+", "a{2}", "a{1,3}", "a{1,}", "(/v[0-9]+)?", "(?:/b)", "[ab]", "[^/]+", "[]a]", "[[:alpha:]]", "\\.", "\\/", "\\.*", "*?"), weight: 4 },
    { arbitrary: fc.constantFrom("\\", "\\d", "\\Q", "*", "+", "?", "{", "}", "{x}", "|", "(", ")", "(?i)", "(?P<n>", "[", "]", "[^]", "[:", "^", "$", ":"), weight: 1 },
    { arbitrary: fc.string({ maxLength: 3 }), weight: 1 },
  );
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 14 }), (parts) => {
      const pattern = parts.join("");
      expect(regexSegmentKey(pattern)).toBe(legacy(pattern));
    }),
    { numRuns: 200_000 },
  );
  // And a few by hand, one per branch of the old scanner.
  for (const p of ["/a\\.*b/c/", "(/v[0-9]+)?/r17/.*", "/static/[a-z]+\\.js", "/x.+/y/", "/ab?c/x", "/a{2}/b/", "/a{x}/b/", "(?i)/a/", "/a/$", "/a$/b", "/a/)/"]) {
    expect(regexSegmentKey(p), p).toBe(legacy(p));
  }
});
