import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DEFAULT_LIMIT, HostCache, MAX_HOST_KEY } from "./index.ts";

describe("HostCache", () => {
  const routes = { name: "routes" };
  const gateways = { name: "gateways" };
  const steering = { name: "steering" };

  it("gives back what was kept while the sources are the same objects", () => {
    const cache = new HostCache<string>();
    expect(cache.get("a.example.com", routes, gateways, steering)).toBeUndefined();
    cache.set("a.example.com", routes, gateways, steering, "route-a");
    expect(cache.get("a.example.com", routes, gateways, steering)).toBe("route-a");
    expect(cache.get("A.example.com", routes, gateways, steering)).toBeUndefined();
  });

  it("forgets everything when any source is replaced, even by an equal one", () => {
    for (const changed of [0, 1, 2]) {
      const cache = new HostCache<string>();
      cache.set("a.example.com", routes, gateways, steering, "route-a");
      const sources: unknown[] = [routes, gateways, steering];
      sources[changed] = { ...(sources[changed] as object) };
      expect(cache.get("a.example.com", sources[0], sources[1], sources[2]), `source ${changed}`).toBeUndefined();
      // And going back to the old objects does not bring the entry back.
      expect(cache.get("a.example.com", routes, gateways, steering)).toBeUndefined();
      expect(cache.size).toBe(0);
    }
  });

  it("an entry made under new sources replaces the old ones", () => {
    const cache = new HostCache<string>();
    cache.set("a.example.com", routes, gateways, steering, "old");
    const next = { name: "routes 2" };
    cache.set("b.example.com", next, gateways, steering, "new");
    expect(cache.size).toBe(1);
    expect(cache.get("b.example.com", next, gateways, steering)).toBe("new");
    expect(cache.get("a.example.com", next, gateways, steering)).toBeUndefined();
  });

  it("a value replaced under the same key is the one found, also right after the old one was found", () => {
    const cache = new HostCache<string>(2);
    cache.set("a", routes, gateways, steering, "1");
    expect(cache.get("a", routes, gateways, steering)).toBe("1");
    // Full: cleared, then kept again with a new value.
    cache.set("b", routes, gateways, steering, "2");
    cache.set("c", routes, gateways, steering, "3");
    expect(cache.get("a", routes, gateways, steering)).toBeUndefined();
    cache.set("a", routes, gateways, steering, "4");
    expect(cache.get("a", routes, gateways, steering)).toBe("4");
    // Kept again without a clear in between, right after the old value was found.
    const roomy = new HostCache<string>();
    roomy.set("a", routes, gateways, steering, "1");
    expect(roomy.get("a", routes, gateways, steering)).toBe("1");
    roomy.set("a", routes, gateways, steering, "2");
    expect(roomy.get("a", routes, gateways, steering)).toBe("2");
  });

  it("never holds more than its limit, whatever Host values a client sends (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 300 }), { maxLength: 400 }), fc.integer({ min: 1, max: 64 }), (hosts, limit) => {
        const cache = new HostCache<number>(limit);
        hosts.forEach((h, i) => {
          cache.set(h, routes, gateways, steering, i);
          expect(cache.size).toBeLessThanOrEqual(limit);
          // What was just kept is found (unless too long to keep).
          expect(cache.get(h, routes, gateways, steering)).toBe(h.length > MAX_HOST_KEY ? undefined : i);
        });
      }),
    );
  });

  it("a flood of distinct names costs at most DEFAULT_LIMIT entries, and keys longer than a hostname are never kept", () => {
    const cache = new HostCache<number>();
    for (let i = 0; i < 5 * DEFAULT_LIMIT; i++) cache.set(`h${i}.example.com`, routes, gateways, steering, i);
    expect(cache.size).toBeLessThanOrEqual(DEFAULT_LIMIT);
    const huge = "x".repeat(16_000) + ".example.com";
    cache.set(huge, routes, gateways, steering, 1);
    expect(cache.get(huge, routes, gateways, steering)).toBeUndefined();
    const longest = "x".repeat(MAX_HOST_KEY);
    cache.set(longest, routes, gateways, steering, 2);
    expect(cache.get(longest, routes, gateways, steering)).toBe(2);
  });
});
