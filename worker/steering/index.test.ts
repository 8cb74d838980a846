import { describe, expect, it } from "vitest";
import { clientPlace, parseSteering, rankClusters, steer, type ClusterFacts, type SteeringRule } from "./index.ts";

function rule(body: object, pattern = "app.example.com"): SteeringRule {
  const r = parseSteering(JSON.stringify({ [pattern]: body }));
  if (!r.ok) throw new Error(r.error);
  return r.steering.rules[0]!;
}

const places: Record<string, ClusterFacts> = {
  // Frankfurt, Ashburn, Singapore
  eu: { location: { lat: 50.11, lon: 8.68 } },
  us: { location: { lat: 39.04, lon: -77.49 } },
  ap: { location: { lat: 1.35, lon: 103.82 } },
};
const facts = (c: string) => places[c];
const claims = (...names: string[]) => names.map((cluster) => ({ cluster, healthyCount: 2 }));
const names = (d: { order: { cluster: string }[] }) => d.order.map((c) => c.cluster);

describe("steering policies", () => {
  it("failover: configured order, whatever the client's place", () => {
    const r = rule({ policy: "failover", clusters: ["us", "eu"] });
    const d = steer(r, claims("eu", "us"), facts, clientPlace({ country: "DE", latitude: "52.5", longitude: "13.4" }));
    expect(names(d)).toEqual(["us", "eu"]);
  });

  it("proximity: nearest cluster to the client's coordinates first, then the next nearest", () => {
    const r = rule({ policy: "proximity", clusters: ["us", "eu", "ap"] });
    const berlin = clientPlace({ latitude: "52.52", longitude: "13.40" });
    const tokyo = clientPlace({ latitude: "35.68", longitude: "139.69" });
    const boston = clientPlace({ latitude: 42.36, longitude: -71.06 });
    expect(names(steer(r, claims("us", "eu", "ap"), facts, berlin))).toEqual(["eu", "us", "ap"]);
    expect(names(steer(r, claims("us", "eu", "ap"), facts, tokyo))).toEqual(["ap", "eu", "us"]);
    expect(names(steer(r, claims("us", "eu", "ap"), facts, boston))).toEqual(["us", "eu", "ap"]);
  });

  it("proximity: without client coordinates, configured order; clusters without a location come last", () => {
    const r = rule({ policy: "proximity", clusters: ["nowhere", "us", "eu"] });
    expect(names(steer(r, claims("nowhere", "us", "eu"), facts, {}))).toEqual(["nowhere", "us", "eu"]);
    const berlin = clientPlace({ latitude: "52.52", longitude: "13.40" });
    expect(names(steer(r, claims("nowhere", "us", "eu"), facts, berlin))).toEqual(["eu", "us", "nowhere"]);
  });

  it("geo: country, then continent, then default", () => {
    const r = rule({ policy: "geo", countries: { DE: ["eu", "us"] }, continents: { EU: ["eu"], AS: ["ap", "eu"] }, default: ["us", "eu"] });
    expect(names(steer(r, claims("eu", "us", "ap"), facts, clientPlace({ country: "DE", continent: "EU" })))).toEqual(["eu", "us"]);
    expect(names(steer(r, claims("eu", "us", "ap"), facts, clientPlace({ country: "FR", continent: "EU" })))).toEqual(["eu"]);
    expect(names(steer(r, claims("eu", "us", "ap"), facts, clientPlace({ country: "JP", continent: "AS" })))).toEqual(["ap", "eu"]);
    expect(names(steer(r, claims("eu", "us", "ap"), facts, clientPlace({ country: "BR", continent: "SA" })))).toEqual(["us", "eu"]);
    const fr = steer(r, claims("eu", "us", "ap"), facts, clientPlace({ country: "FR", continent: "EU" }));
    expect(fr.skipped).toContainEqual({ cluster: "us", reason: "not listed for this client's location" });
  });

  it("weighted: shares follow the weights; weight 0 serves only as a fallback", () => {
    const r = rule({ policy: "weighted", weights: { old: 90, new: 10, drained: 0 } });
    let seed = 1;
    const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    const first = new Map<string, number>();
    for (let i = 0; i < 10_000; i++) {
      const d = steer(r, claims("old", "new", "drained"), facts, {}, random);
      first.set(d.order[0]!.cluster, (first.get(d.order[0]!.cluster) ?? 0) + 1);
      expect(d.order[2]!.cluster).toBe("drained");
    }
    expect(first.get("old")! / 10_000).toBeGreaterThan(0.87);
    expect(first.get("old")! / 10_000).toBeLessThan(0.93);
    expect(first.get("drained")).toBeUndefined();
  });

  it("random: every cluster first about equally often", () => {
    const r = rule({ policy: "random", clusters: ["a", "b", "c"] });
    let seed = 7;
    const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    const first = new Map<string, number>();
    for (let i = 0; i < 9_000; i++) {
      const c = steer(r, claims("a", "b", "c"), facts, {}, random).order[0]!.cluster;
      first.set(c, (first.get(c) ?? 0) + 1);
    }
    for (const c of ["a", "b", "c"]) expect(first.get(c)! / 9_000).toBeGreaterThan(0.3);
  });
});

describe("steering skips", () => {
  const r = rule({ policy: "failover", clusters: ["east", "west", "north"] });

  it("skips a cluster with no healthy node, one that is stale and one that does not claim the hostname, saying why", () => {
    const c = [
      { cluster: "east", healthyCount: 0 },
      { cluster: "west", healthyCount: 1 },
    ];
    const d = steer(r, c, (n) => (n === "west" ? { staleSeconds: 900 } : undefined), {});
    // Nothing passed: fail open, the stale cluster with healthy nodes first.
    expect(names(d)).toEqual(["west", "east"]);
    expect(d.failedOpen).toBe(true);
    const ok = steer(r, [...c, { cluster: "north", healthyCount: 3 }], (n) => (n === "west" ? { staleSeconds: 900 } : undefined), {});
    expect(names(ok)).toEqual(["north"]);
    expect(ok.failedOpen).toBe(false);
    expect(ok.skipped).toEqual([
      { cluster: "east", reason: "no healthy node for the Service" },
      { cluster: "west", reason: "stale: no heartbeat from its agent for 900 s" },
    ]);
    const none = steer(r, [{ cluster: "east", healthyCount: 1 }], () => undefined, {});
    expect(none.skipped).toContainEqual({ cluster: "west", reason: "does not serve this hostname (no snapshot, or no Service claims it)" });
  });

  it("prefers a cluster with really healthy nodes to one whose agent failed open, and falls back to it alone", () => {
    const c = [
      { cluster: "east", healthyCount: 3 },
      { cluster: "west", healthyCount: 2 },
    ];
    const failedOpen = (n: string) => (n === "east" ? { failOpen: true } : undefined);
    const d = steer(r, c, failedOpen, {});
    expect(names(d)).toEqual(["west"]);
    expect(d.failedOpen).toBe(false);
    expect(d.skipped).toContainEqual({ cluster: "east", reason: "every node failed its agent's health checks (published anyway: fail open)" });
    // The only cluster left: served anyway (it may be the checks that fail, not the nodes).
    const alone = steer(r, [c[0]!], failedOpen, {});
    expect(names(alone)).toEqual(["east"]);
    expect(alone.failedOpen).toBe(true);
  });

  it("never orders a cluster the rule does not allow, even when it claims the hostname", () => {
    const d = steer(r, claims("rogue", "west"), () => undefined, {});
    expect(names(d)).toEqual(["west"]);
    expect(d.skipped).toContainEqual({ cluster: "rogue", reason: "claims the hostname but the steering setting does not allow it" });
    expect(names(steer(r, claims("rogue"), () => undefined, {}))).toEqual([]);
  });
});

describe("steering affinity", () => {
  it("client-ip: one client gets the same cluster on every request under random and weighted", () => {
    const r = rule({ policy: "random", clusters: ["a", "b", "c", "d"] });
    const w = rule({ policy: "weighted", weights: { a: 1, b: 1, c: 1 } });
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const key = `198.51.100.${i}`;
      const one = rankClusters(r, facts, { key }, Math.random);
      for (let k = 0; k < 5; k++) expect(rankClusters(r, facts, { key }, Math.random)).toEqual(one);
      expect(rankClusters(w, facts, { key }, Math.random)).toEqual(rankClusters(w, facts, { key }, Math.random));
      seen.add(one[0]!);
    }
    // Different clients still spread over the clusters.
    expect(seen.size).toBe(4);
  });

  it("a pinned cluster (cookie) comes first while it can serve, and not once it cannot", () => {
    const r = rule({ policy: "proximity", clusters: ["us", "eu"] });
    const berlin = clientPlace({ latitude: "52.52", longitude: "13.40" });
    expect(names(steer(r, claims("us", "eu"), facts, { ...berlin, pinned: "us" }))).toEqual(["us", "eu"]);
    expect(names(steer(r, [{ cluster: "us", healthyCount: 0 }, { cluster: "eu", healthyCount: 1 }], facts, { ...berlin, pinned: "us" }))).toEqual(["eu"]);
    // A pin to a cluster the rule does not allow is ignored.
    expect(names(steer(r, claims("us", "eu"), facts, { ...berlin, pinned: "rogue" }))).toEqual(["eu", "us"]);
  });
});

describe("steering invariants (property)", () => {
  it("orders only allowed, claiming clusters, each once; every other claim is skipped with a reason", async () => {
    const fc = (await import("fast-check")).default;
    const names = ["a", "b", "c", "d", "e"];
    const cluster = fc.constantFrom(...names);
    const ruleArb = fc.oneof(
      fc.record({ policy: fc.constantFrom("failover", "proximity", "random"), clusters: fc.uniqueArray(cluster, { minLength: 1, maxLength: 5 }) }),
      fc.record({ policy: fc.constant("weighted"), weights: fc.dictionary(cluster, fc.integer({ min: 0, max: 100 }), { minKeys: 1 }) }),
      fc.record({ policy: fc.constant("geo"), countries: fc.dictionary(fc.constantFrom("DE", "US"), fc.uniqueArray(cluster, { minLength: 1 })), default: fc.uniqueArray(cluster, { minLength: 1 }) }),
    );
    const claimsArb = fc.uniqueArray(fc.record({ cluster, healthyCount: fc.integer({ min: 0, max: 3 }) }), { selector: (c) => c.cluster, maxLength: 5 });
    const factsArb = fc.dictionary(cluster, fc.record({ location: fc.option(fc.record({ lat: fc.double({ min: -90, max: 90, noNaN: true }), lon: fc.double({ min: -180, max: 180, noNaN: true }) }), { nil: undefined }), staleSeconds: fc.option(fc.nat(), { nil: undefined }) }));
    const clientArb = fc.record({
      country: fc.option(fc.constantFrom("DE", "US", "JP"), { nil: undefined }),
      position: fc.option(fc.record({ lat: fc.double({ min: -90, max: 90, noNaN: true }), lon: fc.double({ min: -180, max: 180, noNaN: true }) }), { nil: undefined }),
      key: fc.option(fc.string(), { nil: undefined }),
      pinned: fc.option(cluster, { nil: undefined }),
    });
    fc.assert(
      fc.property(ruleArb, claimsArb, factsArb, clientArb, fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (body, claims, facts, client, r) => {
        const parsed = parseSteering(JSON.stringify({ "x.example.com": body }));
        if (!parsed.ok) return;
        const rule = parsed.steering.rules[0]!;
        const d = steer(rule, claims, (c) => facts[c], client, () => r);
        const order = d.order.map((c) => c.cluster);
        expect(new Set(order).size).toBe(order.length);
        for (const c of order) {
          expect(rule.clusters).toContain(c);
          expect(claims.some((x) => x.cluster === c)).toBe(true);
        }
        const skipped = new Set(d.skipped.map((s) => s.cluster));
        for (const claim of claims) if (!order.includes(claim.cluster)) expect(skipped.has(claim.cluster)).toBe(true);
        if (!d.failedOpen) for (const c of d.order) expect(c.healthyCount > 0 && facts[c.cluster]?.staleSeconds === undefined).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});
