import { describe, expect, it } from "vitest";
import { SNAPSHOT_SCHEMA, validateSnapshot, type Snapshot, type SnapshotInput } from "../snapshot/schema.ts";
import type { GatewaySectionInput } from "../snapshot/gateway.ts";
import { buildGatewayIndex, decide, lookupGateway, pickBackend, type RuleAction } from "./index.ts";

function snap(cluster: string, routes: GatewaySectionInput["routes"], nodes = ["n1", "n2"]): Snapshot {
  const input: SnapshotInput = {
    schema: SNAPSHOT_SCHEMA,
    cluster,
    generation: 1,
    publishedAt: "2026-12-01T00:00:00.000Z",
    nodes: nodes.map((name, i) => ({ name, address: `127.26.0.${11 + i}`, healthy: true })),
    services: [],
    gateway: { backends: [{ namespace: "default", name: "web", port: 80, nodePort: 30080 }], routes },
  };
  const r = validateSnapshot(input);
  if (!r.ok) throw new Error(r.error);
  return r.snapshot;
}

const route = (name: string, hostnames: string[], path = "/") => ({
  namespace: "default",
  name,
  creationTimestamp: "2026-12-01T00:00:00Z",
  gateway: "default/edge",
  hostnames,
  rules: [{ matches: [{ path: { type: "PathPrefix" as const, value: path } }], backendRefs: [{ namespace: "default", name: "web", port: 80 }] }],
});

const input = (path: string) => ({ method: "GET", path, header: () => null, query: () => null });

describe("lookupGateway", () => {
  const index = buildGatewayIndex([
    {
      cluster: "c",
      snapshot: snap("c", [route("exact", ["a.b.example.com"]), route("short", ["*.example.com"]), route("long", ["*.b.example.com"]), route("any", ["*"])]),
    },
  ]);
  it("prefers the exact name, then the longest wildcard suffix (any depth), then '*'", () => {
    expect(lookupGateway(index, "a.b.example.com")?.pattern).toBe("a.b.example.com");
    expect(lookupGateway(index, "x.b.example.com")?.pattern).toBe("*.b.example.com");
    expect(lookupGateway(index, "y.x.b.example.com")?.pattern).toBe("*.b.example.com");
    expect(lookupGateway(index, "x.example.com")?.pattern).toBe("*.example.com");
    expect(lookupGateway(index, "example.com")?.pattern).toBe("*");
    expect(lookupGateway(index, "other.test")?.pattern).toBe("*");
  });
  it("finds nothing without gateway routes", () => {
    expect(lookupGateway(buildGatewayIndex([]), "a.example.com")).toBeUndefined();
  });
});

describe("buildGatewayIndex", () => {
  it("a hostname two clusters claim is served by the first cluster in EDGELB_CLUSTERS order only (finding 1)", () => {
    const index = buildGatewayIndex([
      { cluster: "east", snapshot: snap("east", [route("r", ["shop.example.com"], "/")], ["e1"]) },
      { cluster: "west", snapshot: snap("west", [route("steal", ["shop.example.com", "west.example.com"], "/checkout")], ["w1", "w2"]) },
    ]);
    const table = lookupGateway(index, "shop.example.com")!;
    // West's longer /checkout prefix would win if the tables were merged: it must not be there at all.
    const checkout = decide(table, input("/checkout"), () => 0);
    expect(checkout.kind === "matched" && checkout.action.cluster).toBe("east");
    expect(checkout.kind === "matched" && checkout.backend?.route?.backends[0]!.table.names).toEqual(["e1"]);
    expect(index.conflicts).toEqual([{ hostname: "shop.example.com", kept: "east", dropped: "west" }]);
    // West keeps the hostnames nobody else claims.
    const west = decide(lookupGateway(index, "west.example.com")!, input("/checkout"), () => 0);
    expect(west.kind === "matched" && west.action.cluster).toBe("west");
  });

  it("rules naming one backend share one Route (one balancer state, one set of origins)", () => {
    const index = buildGatewayIndex([{ cluster: "c", snapshot: snap("c", [route("a", ["a.test"]), route("b", ["b.test"])]) }]);
    const ra = decide(lookupGateway(index, "a.test")!, input("/"), () => 0);
    const rb = decide(lookupGateway(index, "b.test")!, input("/"), () => 0);
    expect(ra.kind === "matched" && rb.kind === "matched" && ra.backend!.route === rb.backend!.route).toBe(true);
  });
});

describe("pickBackend", () => {
  const action = (weights: (number | "invalid")[]): RuleAction => {
    const backends = weights.map((w, i) =>
      w === "invalid" ? { weight: 1, route: undefined, invalid: "gone" } : { weight: w, route: { pattern: `b${i}` } as never, invalid: undefined },
    );
    return { cluster: "c", routeId: "r", rule: 0, filters: {} as never, backends, totalWeight: backends.reduce((n, b) => n + b.weight, 0) };
  };
  it("splits by weight over the whole [0, 1) range and never picks weight 0", () => {
    const a = action([1, 0, 3]);
    const picks = [0, 0.24, 0.25, 0.5, 0.99, 0.999999].map((r) => (pickBackend(a, () => r)?.route as { pattern: string } | undefined)?.pattern);
    expect(picks).toEqual(["b0", "b0", "b2", "b2", "b2", "b2"]);
  });
  it("gives no backend when every weight is 0, and the invalid entry for its share", () => {
    expect(pickBackend(action([0, 0]), () => 0.5)).toBeUndefined();
    expect(pickBackend(action([1, "invalid"]), () => 0.75)?.invalid).toBe("gone");
  });
});
