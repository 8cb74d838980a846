import { describe, expect, it } from "vitest";
import type { V1Service } from "@kubernetes/client-node";
import { backendSet, ingressFor, patchEvent, planStatus, transitionEvents, type LbState, type PublishedLike, type VerdictLike } from "./plan.ts";

function svc(name: string, ingress: Array<{ hostname?: string; ip?: string }> = [], type = "LoadBalancer"): V1Service {
  return {
    metadata: { namespace: "shop", name, uid: `uid-${name}`, resourceVersion: "10" },
    spec: { type },
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
    const mine = svc("mine", [{ hostname: "mine.example.com" }]);
    const metallb = svc("metallb", [{ ip: "192.0.2.10" }]);
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

  it("gives every Cluster Service the same healthy node set, and a Local one its healthy endpoints", () => {
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
    expect(state("shop/one").backends).toEqual(backendSet(["node-a", "node-b"]));
    expect(state("shop/loc").backends).toEqual(backendSet(["node-a"]));
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
    available: backends.length > 0 && !extra.failOpen,
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
    expect(transitionEvents(pub(["a"]), pub(["a", "b"], { failOpen: true }), null, null).map((e) => e.message)).toEqual([
      expect.stringContaining("fail open"),
    ]);
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
