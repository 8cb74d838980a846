import { describe, expect, it } from "vitest";
import { SNAPSHOT_SCHEMA, validateSnapshot, type Snapshot, type SnapshotInput } from "../snapshot/schema.ts";
import { buildIndex, claimsOf, lookupRoute, normalizeHost, routeOrigins } from "./routes.ts";

function parse(input: Omit<SnapshotInput, "schema" | "generation" | "publishedAt">): Snapshot {
  const r = validateSnapshot({ schema: SNAPSHOT_SCHEMA, generation: 1, publishedAt: "2026-01-01T00:00:00Z", ...input });
  if (!r.ok) throw new Error(r.error);
  return r.snapshot;
}

const east = parse({
  cluster: "east",
  nodes: [
    { name: "e1", address: "192.0.2.1", healthy: true },
    { name: "e2", address: "2001:db8::2", healthy: false },
  ],
  services: [
    { namespace: "shop", name: "web", hostnames: ["shop.example.com", "*.shop.example.com"], nodePort: 30080, policy: { algorithm: "least-request" } },
    {
      namespace: "shop",
      name: "api",
      hostnames: ["api.example.com"],
      nodePort: 30443,
      scheme: "https",
      trafficPolicy: "Local",
      endpoints: [
        { node: "e1", weight: 3 },
        { node: "e2", weight: 1, healthy: true },
      ],
    },
  ],
});
const west = parse({
  cluster: "west",
  nodes: [{ name: "w1", address: "node-w1.example.net", healthy: true }],
  services: [{ namespace: "shop", name: "web", hostnames: ["shop.example.com"], nodePort: 31080, policy: { algorithm: "random" } }],
});

describe("route index", () => {
  const index = buildIndex([
    { cluster: "east", snapshot: east },
    { cluster: "west", snapshot: west },
  ]);

  it("serves a hostname several clusters claim from the first cluster; the others' claims stay apart", () => {
    const route = lookupRoute(index, "shop.example.com")!;
    expect(route.cluster).toBe("east");
    expect(route.services).toEqual([{ cluster: "east", id: "shop/web" }]);
    expect(route.policy.algorithm).toBe("least-request");
    expect(routeOrigins(route).map((o) => [o.key, o.address, o.port, o.healthy])).toEqual([
      ["east/e1:30080", "192.0.2.1", 30080, true],
      ["east/e2:30080", "2001:db8::2", 30080, false],
    ]);
    const claims = claimsOf(index, route);
    expect(claims.map((r) => r.cluster)).toEqual(["east", "west"]);
    expect(claims[0]).toBe(route);
    expect(routeOrigins(claims[1]!).map((o) => o.key)).toEqual(["west/w1:31080"]);
    expect(claims[1]!.policy.algorithm).toBe("random");
    // A hostname only one cluster claims has no claims entry.
    expect(claimsOf(index, lookupRoute(index, "api.example.com")!)).toHaveLength(1);
  });

  it("orders claims by the cluster list, not by who pushed first", () => {
    const reversed = buildIndex([
      { cluster: "west", snapshot: west },
      { cluster: "east", snapshot: east },
    ]);
    expect(lookupRoute(reversed, "shop.example.com")!.cluster).toBe("west");
  });

  it("uses only nodes with local endpoints for Local services, with their weights", () => {
    const route = lookupRoute(index, "api.example.com")!;
    expect(routeOrigins(route).map((o) => ({ node: o.node, weight: o.weight, healthy: o.healthy, scheme: o.scheme }))).toEqual([
      { node: "e1", weight: 3, healthy: true, scheme: "https" },
      // Healthy endpoint on a node the agent reports unhealthy: not healthy.
      { node: "e2", weight: 1, healthy: false, scheme: "https" },
    ]);
  });

  it("matches wildcards one label deep and prefers exact names", () => {
    expect(lookupRoute(index, "eu.shop.example.com")?.pattern).toBe("*.shop.example.com");
    expect(lookupRoute(index, "a.eu.shop.example.com")).toBeUndefined();
    expect(lookupRoute(index, "shop.example.com")?.pattern).toBe("shop.example.com");
    expect(lookupRoute(index, "example.com")).toBeUndefined();
  });
});

describe("a Cluster Service's endpoints", () => {
  const snap = (endpoints?: []) =>
    parse({
      cluster: "east",
      nodes: [
        { name: "e1", address: "192.0.2.1", healthy: true },
        { name: "e2", address: "192.0.2.2", healthy: true },
      ],
      services: [{ namespace: "shop", name: "web", hostnames: ["shop.example.com"], nodePort: 30080, ...(endpoints ? { endpoints } : {}) }],
    });

  it("absent: every node of the cluster is a backend", () => {
    const route = lookupRoute(buildIndex([{ cluster: "east", snapshot: snap() }]), "shop.example.com")!;
    expect(routeOrigins(route).map((o) => o.node)).toEqual(["e1", "e2"]);
    expect(route.healthyCount).toBe(2);
  });

  it("empty (scaled to 0): no backend at all, so the proxy answers 503 instead of trying refusing nodes", () => {
    const route = lookupRoute(buildIndex([{ cluster: "east", snapshot: snap([]) }]), "shop.example.com")!;
    expect(route.size).toBe(0);
    expect(route.healthyCount).toBe(0);
    expect(routeOrigins(route)).toEqual([]);
  });
});

describe("normalizeHost", () => {
  it("lowercases and drops port and trailing dot", () => {
    expect(normalizeHost("Shop.Example.COM:443")).toBe("shop.example.com");
    expect(normalizeHost("shop.example.com.")).toBe("shop.example.com");
    expect(normalizeHost("[2001:DB8::1]:8080")).toBe("[2001:db8::1]");
    expect(normalizeHost(" a.b ")).toBe("a.b");
  });
});
