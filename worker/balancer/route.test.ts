import { describe, expect, it } from "vitest";
import { buildIndex, lookupRoute, routeOrigins, type Route, type RouteOrigin } from "../config/routes.ts";
import { SNAPSHOT_SCHEMA, validateSnapshot, type Snapshot, type SnapshotInput } from "../snapshot/schema.ts";
import { newBalancerState, cookieValue } from "./index.ts";
import { ALL_EJECTED_RECHECK_MS, chooseOrigin, SMALL_ROUTE, type ChooseContext } from "./route.ts";

// Routes larger than SMALL_ROUTE take the probing path; these tests use 200 nodes.
const N = 200;

function snapshot(cluster: string, nodes: SnapshotInput["nodes"], services: SnapshotInput["services"]): Snapshot {
  const r = validateSnapshot({ schema: SNAPSHOT_SCHEMA, cluster, generation: 1, publishedAt: "2026-01-01T00:00:00Z", nodes, services });
  if (!r.ok) throw new Error(r.error);
  return r.snapshot;
}

function nodes(n: number, prefix = "n", unhealthy: (i: number) => boolean = () => false): SnapshotInput["nodes"] {
  return Array.from({ length: n }, (_, i) => ({ name: `${prefix}${i}`, address: `10.${(i >> 8) & 255}.${i & 255}.1`, healthy: !unhealthy(i) }));
}

function route(policy: object, unhealthy?: (i: number) => boolean): Route {
  const snap = snapshot("c", nodes(N, "n", unhealthy), [{ namespace: "d", name: "web", hostnames: ["web.example"], nodePort: 30080, policy }]);
  const r = lookupRoute(buildIndex([{ cluster: "c", snapshot: snap }]), "web.example")!;
  expect(r.size).toBeGreaterThan(SMALL_ROUTE);
  return r;
}

/** A seeded PRNG (mulberry32). */
function seeded(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function ctx(over: Partial<ChooseContext> = {}): ChooseContext {
  return { state: newBalancerState(), inFlight: () => 0, random: seeded(11), isEjected: () => false, tried: new Set(), ...over };
}

function picks(r: Route, c: ChooseContext, n: number): RouteOrigin[] {
  return Array.from({ length: n }, () => chooseOrigin(r, c).origin!);
}

describe("chooseOrigin on a large route", () => {
  it("round-robin visits every healthy node once per cycle and never an unhealthy one", () => {
    const r = route({ algorithm: "round-robin" }, (i) => i % 10 === 3);
    const healthy = routeOrigins(r).filter((o) => o.healthy).map((o) => o.node);
    const seq = picks(r, ctx(), healthy.length).map((o) => o.node);
    expect(seq).toEqual(healthy);
  });

  it("skips ejected and already tried nodes without failing open", () => {
    const r = route({ algorithm: "random" });
    const ejected = new Set(Array.from({ length: 150 }, (_, i) => `c/n${i}:30080`));
    const tried = new Set(["c/n150:30080", "c/n151:30080"]);
    const c = ctx({ isEjected: (k) => ejected.has(k), tried });
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const choice = chooseOrigin(r, c);
      expect(choice.failedOpen).toBe(false);
      seen.add(choice.origin!.key);
    }
    for (const k of seen) expect(ejected.has(k) || tried.has(k)).toBe(false);
    // Every one of the 48 usable nodes gets traffic.
    expect(seen.size).toBe(48);
  });

  it("fails open to ejected and unhealthy nodes when nothing else is left, and stops when all were tried", () => {
    const r = route({ algorithm: "round-robin" }, (i) => i >= 100);
    const c = ctx({ isEjected: (k) => Number(k.slice(3, k.indexOf(":"))) < 100 });
    const choice = chooseOrigin(r, c);
    expect(choice.failedOpen).toBe(true);
    expect(choice.origin).toBeDefined();
    expect(choice.remaining).toBe(N);
    const all = new Set(routeOrigins(r).map((o) => o.key));
    expect(chooseOrigin(r, ctx({ tried: all }))).toEqual({ failedOpen: false });
  });

  it("least-request keeps traffic off a busy node", () => {
    const r = route({ algorithm: "least-request" });
    const busy = new Set(Array.from({ length: N / 2 }, (_, i) => `c/n${i}:30080`));
    const c = ctx({ inFlight: (k) => (busy.has(k) ? 5 : 0) });
    const hits = picks(r, c, 4000).filter((o) => busy.has(o.key)).length;
    // Both draws land on busy nodes a quarter of the time.
    expect(hits / 4000).toBeLessThan(0.3);
  });

  it("client-ip affinity keeps a client on one healthy node and moves only an ejected node's clients", () => {
    const r = route({ affinity: "client-ip" }, (i) => i % 7 === 0);
    const usable = routeOrigins(r).filter((o) => o.healthy);
    const healthyKeys = new Set(usable.map((o) => o.key));
    const clients = Array.from({ length: 4000 }, (_, i) => `198.51.${(i >> 8) & 255}.${i & 255}`);
    const before = new Map(clients.map((ip) => [ip, chooseOrigin(r, ctx({ clientIp: ip })).origin!.key]));
    for (const ip of clients.slice(0, 200)) {
      expect(healthyKeys.has(before.get(ip)!)).toBe(true);
      expect(chooseOrigin(r, ctx({ clientIp: ip, random: () => 0.99 })).origin!.key).toBe(before.get(ip));
    }
    const gone = before.get(clients[0]!)!;
    const after = new Map(clients.map((ip) => [ip, chooseOrigin(r, ctx({ clientIp: ip, isEjected: (k) => k === gone })).origin!.key]));
    const moved = clients.filter((ip) => before.get(ip) !== after.get(ip));
    expect(moved.length).toBeGreaterThan(0);
    expect(moved.every((ip) => before.get(ip) === gone)).toBe(true);
    // Spread: no node holds more than a few times its fair share.
    const counts = new Map<string, number>();
    for (const k of before.values()) counts.set(k, (counts.get(k) ?? 0) + 1);
    expect(Math.max(...counts.values())).toBeLessThan((4 * clients.length) / usable.length);
  });

  it("client-ip affinity moves about 1/N of clients when a node leaves the snapshot", () => {
    const services = [{ namespace: "d", name: "web", hostnames: ["web.example"], nodePort: 30080, policy: { affinity: "client-ip" as const } }];
    const all = nodes(N);
    const r1 = lookupRoute(buildIndex([{ cluster: "c", snapshot: snapshot("c", all, services) }]), "web.example")!;
    const r2 = lookupRoute(buildIndex([{ cluster: "c", snapshot: snapshot("c", all.filter((n) => n.name !== "n17"), services) }]), "web.example")!;
    const clients = Array.from({ length: 20_000 }, (_, i) => `198.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    const moved = clients.filter((ip) => chooseOrigin(r1, ctx({ clientIp: ip })).origin!.key !== chooseOrigin(r2, ctx({ clientIp: ip })).origin!.key);
    // 1/200 = 0.5% belonged to n17; a few more shift between groups.
    expect(moved.length / clients.length).toBeGreaterThan(0.002);
    expect(moved.length / clients.length).toBeLessThan(0.02);
  });

  it("a cookie pins its node while it is usable", () => {
    const r = route({ affinity: "cookie" });
    const target = routeOrigins(r)[123]!;
    const cookie = cookieValue(target);
    expect(picks(r, ctx({ cookie }), 5).map((o) => o.key)).toEqual(Array(5).fill(target.key));
    expect(chooseOrigin(r, ctx({ cookie, isEjected: (k) => k === target.key })).origin!.key).not.toBe(target.key);
    // The same node under another NodePort is another origin: its cookie does not pin this one.
    const other = cookieValue({ ...target, key: "c/n123:39999" });
    expect(other.slice(0, 7)).toBe(cookie.slice(0, 7));
    expect(chooseOrigin(r, ctx({ cookie: other })).origin!.key).toBe("c/n0:30080");
  });

  it("keeps another cluster's claim on a hostname apart, with its Local endpoints and weights", () => {
    const east = snapshot("east", nodes(100, "e"), [
      { namespace: "d", name: "web", hostnames: ["web.example"], nodePort: 30080, policy: { algorithm: "weighted" } },
    ]);
    const west = snapshot("west", nodes(100, "w"), [
      {
        namespace: "d",
        name: "web",
        hostnames: ["web.example"],
        nodePort: 31080,
        trafficPolicy: "Local",
        endpoints: [
          { node: "w1", weight: 50 },
          { node: "w2", weight: 50, healthy: false },
        ],
      },
    ]);
    // Clusters are never merged (worker/steering orders them): each claim is its own route.
    const index = buildIndex([{ cluster: "east", snapshot: east }, { cluster: "west", snapshot: west }]);
    expect(lookupRoute(index, "web.example")!.size).toBe(100);
    const r = index.claims.get("web.example")![1]!;
    expect(r.cluster).toBe("west");
    expect(r.size).toBe(2);
    const seq = picks(r, ctx(), 100);
    // w2's endpoint is unhealthy: w1 takes everything.
    expect(seq.every((o) => o.key === "west/w1:31080")).toBe(true);
    // A cookie naming the Local node of the second cluster pins it.
    const w1Origin = routeOrigins(r).find((o) => o.key === "west/w1:31080")!;
    expect(chooseOrigin(r, ctx({ cookie: cookieValue(w1Origin) })).origin!.key).toBe("west/w1:31080");
  });
});

describe("spreading an ejected node's share", () => {
  const spread = (seq: RouteOrigin[]) => {
    const counts = new Map<string, number>();
    for (const o of seq) counts.set(o.key, (counts.get(o.key) ?? 0) + 1);
    const mean = seq.length / counts.size;
    return { counts, mean, max: Math.max(...counts.values()) };
  };
  const hundred = (policy: object, extra: Partial<SnapshotInput["services"][0]> = {}) => {
    const snap = snapshot("c", nodes(100), [{ namespace: "d", name: "web", hostnames: ["web.example"], nodePort: 30080, policy, ...extra }]);
    return lookupRoute(buildIndex([{ cluster: "c", snapshot: snap }]), "web.example")!;
  };
  // Ten neighbours in the list, n40 … n49.
  const ejected = new Set(Array.from({ length: 10 }, (_, i) => `c/n${40 + i}:30080`));
  const isEjected = (k: string) => ejected.has(k);

  it.each(["round-robin", "weighted", "random", "least-request"])("%s: with 10 of 100 neighbours ejected, no node gets over 1.5× the mean", (algorithm) => {
    const r = hundred({ algorithm });
    const seq = picks(r, ctx({ isEjected }), 9_000);
    expect(seq.some((o) => ejected.has(o.key))).toBe(false);
    const { counts, mean, max } = spread(seq);
    expect(counts.size).toBe(90);
    expect(max).toBeLessThanOrEqual(1.5 * mean);
  });

  it("round robin stays exact: each usable node once per cycle of picks", () => {
    const r = hundred({ algorithm: "round-robin" });
    const { counts } = spread(picks(r, ctx({ isEjected }), 90 * 7));
    expect(new Set(counts.values())).toEqual(new Set([7]));
  });

  it("weighted Local endpoints keep their weights with 10 neighbours ejected", () => {
    const endpoints = Array.from({ length: 100 }, (_, i) => ({ node: `n${i}`, weight: 1 + (i % 3) }));
    const r = hundred({ algorithm: "weighted" }, { trafficPolicy: "Local", endpoints });
    const seq = picks(r, ctx({ isEjected }), 6_000);
    const counts = new Map<string, number>();
    for (const o of seq) counts.set(o.node, (counts.get(o.node) ?? 0) + 1);
    const total = endpoints.filter((e) => !ejected.has(`c/${e.node}:30080`)).reduce((s, e) => s + e.weight, 0);
    for (const e of endpoints) {
      if (ejected.has(`c/${e.node}:30080`)) continue;
      const fair = (6_000 * e.weight) / total;
      expect(counts.get(e.node)!).toBeLessThanOrEqual(1.5 * fair);
      expect(counts.get(e.node)!).toBeGreaterThanOrEqual(fair / 1.5);
    }
  });
});

describe("failing open on a large route", () => {
  const SIZE = 10_000;
  const big = (policy: object, unhealthy?: (i: number) => boolean) => {
    const snap = snapshot("c", nodes(SIZE, "n", unhealthy), [{ namespace: "d", name: "web", hostnames: ["web.example"], nodePort: 30080, policy }]);
    return lookupRoute(buildIndex([{ cluster: "c", snapshot: snap }]), "web.example")!;
  };
  /** A request's tried set that counts lookups: work per pick shows there. */
  class CountingSet extends Set<string> {
    static lookups = 0;
    override has(key: string): boolean {
      CountingSet.lookups++;
      return super.has(key);
    }
  }

  it("does not look at every node on each request when every node is ejected", () => {
    const r = big({ algorithm: "round-robin" });
    let calls = 0;
    let now = 5_000;
    const state = newBalancerState();
    const c = (over: Partial<ChooseContext> = {}) =>
      ctx({ state, now: () => now, isEjected: () => (calls++, true), ...over });
    const seen = new Set<string>();
    for (let i = 0; i < 1_000; i++) {
      const choice = chooseOrigin(r, c());
      expect(choice.failedOpen).toBe(true);
      // A count for the log line, not ten thousand names.
      expect(choice.remaining).toBe(SIZE);
      seen.add(choice.origin!.key);
    }
    // One scan of the route, then a few lookups per request at most.
    expect(calls).toBeLessThan(SIZE + 1_000 * 4);
    // Failing open still spreads the requests.
    expect(seen.size).toBe(1_000);
    // A second later the route is looked at again: a node back in service gets traffic without failing open.
    now += ALL_EJECTED_RECHECK_MS;
    expect(chooseOrigin(r, c({ isEjected: (k) => k !== "c/n77:30080" }))).toMatchObject({ failedOpen: false, origin: { key: "c/n77:30080" } });
  });

  it("does not look at every node on each request when the agent reports every node unhealthy", () => {
    for (const policy of [{ algorithm: "round-robin" }, { algorithm: "random" }, { algorithm: "least-request" }, { affinity: "cookie" }]) {
      const r = big(policy, () => true);
      const state = newBalancerState();
      CountingSet.lookups = 0;
      for (let i = 0; i < 200; i++) {
        const tried = new CountingSet();
        const first = chooseOrigin(r, ctx({ state, tried }));
        expect(first).toMatchObject({ failedOpen: true, remaining: SIZE });
        tried.add(first.origin!.key);
        // The retry of the same request goes elsewhere.
        const second = chooseOrigin(r, ctx({ state, tried }));
        expect(second).toMatchObject({ failedOpen: true, remaining: SIZE - 1 });
        expect(second.origin!.key).not.toBe(first.origin!.key);
      }
      expect(CountingSet.lookups).toBeLessThan(200 * 10);
    }
  });

  it("keeps client-ip affinity while failing open", () => {
    const r = big({ affinity: "client-ip" }, () => true);
    const state = newBalancerState();
    const clients = Array.from({ length: 200 }, (_, i) => `198.51.100.${i}`);
    const first = clients.map((ip) => chooseOrigin(r, ctx({ state, clientIp: ip })).origin!.key);
    const again = clients.map((ip) => chooseOrigin(r, ctx({ state, clientIp: ip })).origin!.key);
    expect(again).toEqual(first);
    expect(new Set(first).size).toBeGreaterThan(150);
  });

  it("weighted fail-open follows the weights", () => {
    const snap = snapshot("c", nodes(40), [
      {
        namespace: "d",
        name: "web",
        hostnames: ["web.example"],
        nodePort: 30080,
        policy: { algorithm: "weighted" },
        trafficPolicy: "Local",
        endpoints: Array.from({ length: 40 }, (_, i) => ({ node: `n${i}`, weight: i === 0 ? 40 : 1, healthy: false })),
      },
    ]);
    const r = lookupRoute(buildIndex([{ cluster: "c", snapshot: snap }]), "web.example")!;
    const seq = picks(r, ctx(), 4_000);
    const heavy = seq.filter((o) => o.node === "n0").length;
    // n0 weighs 40 of 79.
    expect(heavy / 4_000).toBeGreaterThan(0.45);
    expect(heavy / 4_000).toBeLessThan(0.56);
  });
});

describe("chooseOrigin on a small route (its origin list made once per route)", () => {
  /** The choice as it was made before: the route's origins built and filtered for each request. */
  function reference(r: Route, c: ChooseContext): { node?: string; failedOpen: boolean } {
    const fresh = routeOrigins(r).filter((o) => !c.tried.has(o.key));
    const ok = fresh.filter((o) => o.healthy && !c.isEjected(o.key));
    const list = ok.length > 0 || fresh.length === 0 ? ok : fresh;
    // Same algorithm and state as the code under test: round-robin over the list.
    const o = list.length <= 1 ? list[0] : list[c.state.next++ % list.length];
    return { ...(o ? { node: o.node } : {}), failedOpen: !(ok.length > 0 || fresh.length === 0) };
  }

  it("chooses exactly as when the list was built per request, under any mix of tried, ejected and unhealthy nodes", () => {
    const rnd = seeded(5);
    for (let run = 0; run < 300; run++) {
      const n = 1 + Math.floor(rnd() * 6);
      const unhealthy = new Set(Array.from({ length: n }, (_, i) => i).filter(() => rnd() < 0.3));
      const snap = snapshot("c", nodes(n, "s", (i) => unhealthy.has(i)), [{ namespace: "d", name: "web", hostnames: ["web.example"], nodePort: 30080, policy: { algorithm: "round-robin" } }]);
      const r = lookupRoute(buildIndex([{ cluster: "c", snapshot: snap }]), "web.example")!;
      const ejected = new Set(routeOrigins(r).filter(() => rnd() < 0.3).map((o) => o.key));
      const tried = new Set(routeOrigins(r).filter(() => rnd() < 0.2).map((o) => o.key));
      const a = ctx({ isEjected: (k) => ejected.has(k), tried: new Set(tried) });
      const b = ctx({ isEjected: (k) => ejected.has(k), tried: new Set(tried) });
      for (let i = 0; i < 4; i++) {
        const got = chooseOrigin(r, a);
        const want = reference(r, b);
        expect({ node: got.origin?.node, failedOpen: got.failedOpen }).toEqual({ node: want.node, failedOpen: want.failedOpen });
      }
    }
  });

  it("hands out origins no request can change, and a new snapshot's route gets its own", () => {
    const make = (healthy: boolean) =>
      lookupRoute(buildIndex([{ cluster: "c", snapshot: snapshot("c", nodes(2, "s", () => !healthy), [{ namespace: "d", name: "web", hostnames: ["web.example"], nodePort: 30080, policy: {} }]) }]), "web.example")!;
    const first = chooseOrigin(make(true), ctx()).origin!;
    expect(Object.isFrozen(first)).toBe(true);
    expect(() => {
      (first as { port: number }).port = 1;
    }).toThrow(TypeError);
    // All unhealthy in the next snapshot: its route fails open, the old route's cached list is not used.
    expect(chooseOrigin(make(false), ctx())).toMatchObject({ failedOpen: true });
  });
});
