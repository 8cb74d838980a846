import { describe, expect, it } from "vitest";
import type { V1Service } from "@kubernetes/client-node";
import { backendSet, ingressFor, patchEvent, planStatus, transitionEvents, type LbState, type PublishedLike, type VerdictLike } from "./plan.ts";

function svc(name: string, ingress: Array<{ hostname?: string; ip?: string; ipMode?: string }> = [], type = "LoadBalancer", loadBalancerClass?: string): V1Service {
  return {
    metadata: { namespace: "shop", name, uid: `uid-${name}`, resourceVersion: "10" },
    spec: { type, ...(loadBalancerClass ? { loadBalancerClass } : {}) },
    status: ingress.length ? { loadBalancer: { ingress } } : {},
  };
}

const published: PublishedLike = {
  nodes: [
    { name: "node-a", healthy: true },
    { name: "node-b", healthy: false },
  ],
  services: [{ namespace: "shop", name: "web", hostnames: ["shop.example.com", "www.example.com"] }],
};
const served: VerdictLike = { kind: "served" };

describe("planStatus", () => {
  it("puts the hostnames the edge serves under EXTERNAL-IP", () => {
    const plan = planStatus({ services: [svc("web")], verdicts: new Map([["shop/web", served]]), published, owned: new Map() });
    expect(plan.patches).toEqual([
      expect.objectContaining({ key: "shop/web", ingress: [{ hostname: "shop.example.com" }, { hostname: "www.example.com" }] }),
    ]);
  });

  it("writes nothing when the status already matches", () => {
    const s = svc("web", [{ hostname: "shop.example.com" }, { hostname: "www.example.com" }]);
    const plan = planStatus({ services: [s], verdicts: new Map([["shop/web", served]]), published, owned: new Map() });
    expect(plan.patches).toEqual([]);
    expect(plan.owned.get("shop/web")).toBeDefined();
  });

  it("never writes an IP or a wildcard as a hostname", () => {
    expect(ingressFor(["10.0.0.1", "*.example.com", "a.example.com", "::1"])).toEqual([{ hostname: "a.example.com" }]);
  });

  it("does not claim a servable Service until the edge serves it", () => {
    const plan = planStatus({ services: [svc("new")], verdicts: new Map([["shop/new", served]]), published, owned: new Map() });
    expect(plan.patches).toEqual([]);
    expect(plan.states.get("shop/new")).toEqual({ phase: "pending" });
  });

  it("clears the ingress of a Service we cannot serve any more", () => {
    const s = svc("web", [{ hostname: "shop.example.com" }]);
    const plan = planStatus({
      services: [s],
      verdicts: new Map<string, VerdictLike>([["shop/web", { kind: "skipped", reason: "has no TCP port" }]]),
      published: { nodes: [], services: [] },
      owned: new Map(),
    });
    expect(plan.patches).toEqual([expect.objectContaining({ key: "shop/web", ingress: [] })]);
  });

  it("clears what it wrote when a Service stops being ours, but leaves other controllers' status alone", () => {
    const mine = svc("mine", [{ hostname: "mine.example.com" }], "LoadBalancer", "other");
    const metallb = svc("metallb", [{ ip: "192.0.2.10" }], "LoadBalancer", "metallb");
    const verdicts = new Map<string, VerdictLike>([
      ["shop/mine", { kind: "ignored", reason: "loadBalancerClass is other" }],
      ["shop/metallb", { kind: "ignored", reason: "loadBalancerClass is metallb" }],
    ]);
    const owned = new Map([["shop/mine", JSON.stringify([{ hostname: "mine.example.com" }])]]);
    const plan = planStatus({ services: [mine, metallb], verdicts, published, owned });
    expect(plan.patches.map((p) => [p.key, p.ingress])).toEqual([["shop/mine", []]]);
    // the same Service without our ownership record is left alone
    expect(planStatus({ services: [mine], verdicts, published, owned: new Map() }).patches).toEqual([]);
  });

  it("clears a hostname-only ingress left on a Service that is no longer a LoadBalancer", () => {
    const s = svc("was-lb", [{ hostname: "old.example.com" }], "ClusterIP");
    const plan = planStatus({ services: [s], verdicts: new Map([["shop/was-lb", { kind: "ignored", reason: "type is ClusterIP" }]]), published, owned: new Map() });
    expect(plan.patches.map((p) => p.key)).toEqual(["shop/was-lb"]);
  });

  it("gives every Cluster Service the same node set, and a Local one its endpoint nodes, healthy or not", () => {
    const edge: PublishedLike = {
      nodes: [
        { name: "node-b", healthy: true },
        { name: "node-a", healthy: true },
        { name: "node-c", healthy: false },
      ],
      services: [
        { namespace: "shop", name: "one", hostnames: ["one.example.com"] },
        { namespace: "shop", name: "two", hostnames: ["two.example.com"], trafficPolicy: "Cluster" },
        { namespace: "shop", name: "loc", hostnames: ["loc.example.com"], trafficPolicy: "Local", endpoints: [{ node: "node-c", healthy: false }, { node: "node-a" }] },
      ],
    };
    const verdicts = new Map([["shop/one", served], ["shop/two", served], ["shop/loc", served]]);
    const plan = planStatus({ services: [svc("one"), svc("two"), svc("loc")], verdicts, published: edge, owned: new Map() });
    const state = (k: string) => plan.states.get(k) as Extract<LbState, { phase: "published" }>;
    // One object for all Cluster Services: memory does not grow with services × nodes.
    expect(state("shop/one").backends).toBe(state("shop/two").backends);
    expect(state("shop/one").backends).toEqual(backendSet(["node-a", "node-b", "node-c"]));
    expect(state("shop/loc").backends).toEqual(backendSet(["node-a", "node-c"]));
    expect(backendSet(["node-b", "node-a"]).id).toBe(backendSet(["node-a", "node-b"]).id);
    expect(backendSet(["node-a"]).id).not.toBe(backendSet(["node-a", "node-b"]).id);
  });

  it("touches nothing before it knows what the edge serves", () => {
    const s = svc("web", [{ hostname: "shop.example.com" }]);
    expect(planStatus({ services: [s], verdicts: new Map([["shop/web", served]]), published: null, owned: new Map() }).patches).toEqual([]);
  });
});

describe("events", () => {
  const pub = (backends: string[], extra: Partial<{ failOpen: boolean; lost: string[] }> = {}) => ({
    phase: "published" as const,
    hostnames: ["a.example.com"],
    backends: backendSet(backends),
    available: backends.length > 0,
    failOpen: extra.failOpen ?? false,
    lost: extra.lost ?? [],
  });
  it("says why a Service is skipped, once per reason", () => {
    const skipped = { phase: "skipped" as const, reason: "no hostname: set the edgelb.dev/hostnames annotation or --default-domain" };
    expect(transitionEvents(undefined, skipped, null, null)).toEqual([
      { type: "Warning", reason: "SyncLoadBalancerFailed", message: `Error syncing load balancer: ${skipped.reason}` },
    ]);
    expect(transitionEvents(skipped, skipped, null, null)).toEqual([]);
  });
  it("says nothing while the edge is unknown (before the stored snapshot is read)", () => {
    expect(transitionEvents(undefined, { phase: "unknown" }, null, null)).toEqual([]);
  });
  it("announces ensuring, and a failing push while pending", () => {
    expect(transitionEvents({ phase: "ignored" }, { phase: "pending" }, null, null).map((e) => e.reason)).toEqual(["EnsuringLoadBalancer"]);
    expect(transitionEvents({ phase: "pending" }, { phase: "pending" }, "HTTP 503", null).map((e) => e.reason)).toEqual(["SyncLoadBalancerFailed"]);
    expect(transitionEvents({ phase: "pending" }, { phase: "pending" }, "HTTP 503", "HTTP 503")).toEqual([]);
  });
  it("reports new hosts and no available nodes with upstream's words", () => {
    expect(transitionEvents(pub(["a", "b"]), pub(["a"]), null, null)).toEqual([
      { type: "Normal", reason: "UpdatedLoadBalancer", message: "Updated load balancer with new hosts" },
    ]);
    expect(transitionEvents(pub(["a"]), pub([]), null, null)).toEqual([
      { type: "Warning", reason: "UnAvailableLoadBalancer", message: "There are no available nodes for LoadBalancer" },
    ]);
    // Fail-open is health, not the node set: logged by the controller, no Event per Service.
    expect(transitionEvents(pub(["a", "b"]), pub(["a", "b"], { failOpen: true }), null, null)).toEqual([]);
    expect(transitionEvents(pub(["a"]), pub(["a"]), null, null)).toEqual([]);
    expect(transitionEvents(pub(["a", "b"]), pub(["b", "a"]), null, null)).toEqual([]);
  });
  it("status writes come with Ensured/Updated/Deleted", () => {
    const base = { key: "k", namespace: "n", name: "x" };
    expect(patchEvent({ ...base, from: [], ingress: [{ hostname: "a.example.com" }] }).reason).toBe("EnsuredLoadBalancer");
    expect(patchEvent({ ...base, from: [{ hostname: "b" }], ingress: [{ hostname: "a.example.com" }] }).reason).toBe("UpdatedLoadBalancer");
    expect(patchEvent({ ...base, from: [{ hostname: "b" }], ingress: [] }).reason).toBe("DeletedLoadBalancer");
  });
});

describe("never trample another load balancer", () => {
  const metallb = { ip: "192.0.2.10", ipMode: "VIP" };
  const foreign: VerdictLike = { kind: "ignored", reason: "status.loadBalancer.ingress already holds 192.0.2.10 … MetalLB", foreign: "MetalLB" };
  const edge: PublishedLike = { nodes: [{ name: "node-a", healthy: true }], services: [{ namespace: "shop", name: "web", hostnames: ["web.example.com"] }] };

  it("keeps an ip entry it did not write whatever the verdict: served, skipped, pending, ignored", () => {
    const verdicts: [string, VerdictLike][] = [
      ["web", served],
      ["udp-dns", { kind: "skipped", reason: "has no TCP port (dns 53/UDP)" }],
      ["new", served],
      ["only-class", { kind: "ignored", reason: "has no loadBalancerClass and --only-class is set" }],
    ];
    const services = verdicts.map(([name]) =>
      name === "web" ? svc(name, [metallb], "LoadBalancer", "edgelb.dev/worker") : svc(name, [metallb, { hostname: `${name}.example.com` }]),
    );
    const plan = planStatus({ services, verdicts: new Map(verdicts.map(([n, v]) => [`shop/${n}`, v])), published: edge, owned: new Map() });
    expect(Object.fromEntries(plan.patches.map((p) => [p.name, p.ingress]))).toEqual({
      web: [metallb, { hostname: "web.example.com" }],
      "udp-dns": [metallb],
      new: [metallb],
      // Class-less under --only-class and never served by this process: left exactly as found
      // (its hostname belongs to whoever serves class-less Services; rv-ops §9).
    });
    // Our hostname going away next to their ip is a deletion of ours, not an update of theirs.
    expect(patchEvent(plan.patches.find((p) => p.name === "udp-dns")!).reason).toBe("DeletedLoadBalancer");
  });

  it("leaves a Service another controller serves to it: no write, one Normal Event saying who and how to hand it over", () => {
    const s = svc("dns", [metallb]);
    const plan = planStatus({ services: [s], verdicts: new Map([["shop/dns", foreign]]), published: edge, owned: new Map() });
    expect(plan.patches).toEqual([]);
    const state = plan.states.get("shop/dns")!;
    expect(state).toEqual({ phase: "foreign", owner: "MetalLB", reason: foreign.reason });
    expect(transitionEvents(undefined, state, null, null)).toEqual([{ type: "Normal", reason: "LoadBalancerOwnedElsewhere", message: foreign.reason }]);
    expect(transitionEvents(state, state, null, null)).toEqual([]);
  });

  it("derives its own entries from the Service, so a restarted agent (no memory) still clears only its hostname", () => {
    const s = svc("dns", [{ hostname: "dns.example.com" }, metallb]);
    const plan = planStatus({ services: [s], verdicts: new Map([["shop/dns", foreign]]), published: edge, owned: new Map() });
    expect(plan.patches.map((p) => p.ingress)).toEqual([[metallb]]);
  });

  it("never touches a Service of another class, even hostname entries it did not record writing", () => {
    const s = svc("other-edgelb", [{ hostname: "x.example.com" }], "LoadBalancer", "edgelb.dev/other");
    const plan = planStatus({ services: [s], verdicts: new Map([["shop/other-edgelb", { kind: "ignored", reason: "loadBalancerClass is edgelb.dev/other" }]]), published: edge, owned: new Map() });
    expect(plan.patches).toEqual([]);
  });
});

describe("quieter Events", () => {
  const edge = (healthy: boolean[]): PublishedLike => ({
    nodes: healthy.map((h, i) => ({ name: `node-${i}`, healthy: h })),
    services: [{ namespace: "shop", name: "web", hostnames: ["web.example.com"] }],
  });
  it("a health-only change writes no Event; a node joining does", () => {
    const services = [svc("web", [{ hostname: "web.example.com" }])];
    const verdicts = new Map([["shop/web", served]]);
    const state = (e: PublishedLike, failOpen = false) => planStatus({ services, verdicts, published: e, owned: new Map(), failOpen }).states.get("shop/web")!;
    const before = state(edge([true, true, true]));
    expect(transitionEvents(before, state(edge([true, false, true])), null, null)).toEqual([]);
    expect(transitionEvents(before, state(edge([false, false, false]), true), null, null)).toEqual([]);
    expect(transitionEvents(before, state(edge([true, true, true, true])), null, null).map((e) => e.reason)).toEqual(["UpdatedLoadBalancer"]);
  });
  it("tells each notice once: dropped ports, wildcard-only hostnames", () => {
    const notices = [
      { type: "Warning" as const, reason: "PortNotServed", message: "only port http 80/TCP is served at the edge; not served: voice 9987/UDP" },
      { type: "Normal" as const, reason: "WildcardHostnameOnly", message: "served at *.game.example.com only; …" },
    ];
    const game: VerdictLike = { kind: "served", service: { notices } };
    const e: PublishedLike = { nodes: [{ name: "n", healthy: true }], services: [{ namespace: "shop", name: "game", hostnames: ["*.game.example.com"] }] };
    const next = planStatus({ services: [svc("game")], verdicts: new Map([["shop/game", game]]), published: e, owned: new Map() }).states.get("shop/game")!;
    expect(transitionEvents({ phase: "pending" }, next, null, null)).toEqual(notices);
    expect(transitionEvents(next, next, null, null)).toEqual([]);
  });
});
