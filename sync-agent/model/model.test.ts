import type { V1Node, V1Service } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { contentKey, diffSnapshots, isEmptyDiff, summarizeDiff } from "./diff.ts";
import type { SnapshotBody } from "./desired.ts";
import { evaluateNode, nodeAddress, parseGoBool } from "./node.ts";
import { Pacer } from "./pacer.ts";
import { evaluateService, type ServiceOptions } from "./service.ts";

const opts: ServiceOptions = { loadBalancerClass: "edgelb.dev/worker", onlyClass: false, defaultDomain: "example.net" };

function svc(spec: Partial<V1Service["spec"]> & object, annotations: Record<string, string> = {}): V1Service {
  return {
    metadata: { name: "web", namespace: "prod", annotations },
    spec: { type: "LoadBalancer", ports: [{ port: 80, nodePort: 30080 }], ...spec },
  } as V1Service;
}

describe("services", () => {
  it("picks a port by name from the annotation", () => {
    const v = evaluateService(
      svc({ ports: [{ name: "a", port: 1, nodePort: 30001 }, { name: "admin", port: 2, nodePort: 30002 }] }, { "edgelb.dev/port": "admin" }),
      opts,
    );
    expect(v.kind === "served" && v.spec.port.nodePort).toBe(30002);
  });
  it("falls back to port 80 among several unnamed ports", () => {
    const v = evaluateService(svc({ ports: [{ port: 443, nodePort: 30443 }, { port: 80, nodePort: 30080 }] }), opts);
    expect(v.kind === "served" && v.spec.port.nodePort).toBe(30080);
  });
  it("says which ports exist when the annotation matches none", () => {
    const v = evaluateService(svc({}, { "edgelb.dev/port": "8080" }), opts);
    expect(v).toEqual({ kind: "skipped", reason: 'edgelb.dev/port="8080" matches no TCP port (have 80)' });
  });
  it("ignores class-less Services with --only-class, takes them otherwise", () => {
    expect(evaluateService(svc({}), { ...opts, onlyClass: true }).kind).toBe("ignored");
    expect(evaluateService(svc({}), opts).kind).toBe("served");
    expect(evaluateService(svc({ loadBalancerClass: "other" }), opts).kind).toBe("ignored");
  });
  it("skips a Service without any hostname source", () => {
    const v = evaluateService(svc({}), { ...opts, defaultDomain: undefined });
    expect(v.kind).toBe("skipped");
    expect(v.kind === "skipped" && v.reason).toMatch(/edgelb.dev\/hostnames.*--default-domain/);
  });
  it("rejects an unknown backend protocol", () => {
    expect(evaluateService(svc({}, { "edgelb.dev/backend-protocol": "grpc" }), opts).kind).toBe("skipped");
  });
  it("takes the backend protocol from appProtocol when the annotation is absent; refuses h2c with a reason", () => {
    const port = (appProtocol: string) => ({ ports: [{ name: "web", port: 443, nodePort: 30443, appProtocol }] });
    const scheme = (v: ReturnType<typeof evaluateService>) => (v.kind === "served" ? v.spec.scheme : v.kind);
    expect(scheme(evaluateService(svc(port("https")), opts))).toBe("https");
    expect(scheme(evaluateService(svc(port("kubernetes.io/wss")), opts))).toBe("https");
    expect(scheme(evaluateService(svc(port("http")), opts))).toBe("http");
    expect(scheme(evaluateService(svc(port("https"), { "edgelb.dev/backend-protocol": "http" }), opts))).toBe("http");
    const h2c = evaluateService(svc(port("kubernetes.io/h2c")), opts);
    expect(h2c.kind === "skipped" && h2c.reason).toMatch(/appProtocol kubernetes.io\/h2c .* HTTP\/1.1/);
  });
  it("normalises loadBalancerSourceRanges and refuses an invalid one instead of serving it open", () => {
    const v = evaluateService(svc({ loadBalancerSourceRanges: ["10.1.2.3/8", "2001:DB8::/32", "10.0.0.0/8"] }), opts);
    expect(v.kind === "served" && v.spec.sourceRanges).toEqual(["10.0.0.0/8", "2001:db8::/32"]);
    const legacy = evaluateService(svc({}, { "service.beta.kubernetes.io/load-balancer-source-ranges": " 192.0.2.0/24 ," }), opts);
    expect(legacy.kind === "served" && legacy.spec.sourceRanges).toEqual(["192.0.2.0/24"]);
    const many = Array.from({ length: 1001 }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`);
    expect(evaluateService(svc({ loadBalancerSourceRanges: many }), opts)).toMatchObject({ kind: "skipped", reason: expect.stringContaining("at most 1000") });
    const bad = evaluateService(svc({ loadBalancerSourceRanges: ["192.0.2.0"] }), opts);
    expect(bad).toEqual({ kind: "skipped", reason: 'spec.loadBalancerSourceRanges has invalid CIDR(s) "192.0.2.0": not serving it open to every client instead' });
  });
});

describe("nodes", () => {
  it("parses the exclusion label like Go's strconv.ParseBool", () => {
    expect(parseGoBool("True")).toBe(true);
    expect(parseGoBool("0")).toBe(false);
    expect(parseGoBool("")).toBeUndefined();
    const node = (value: string): V1Node => ({
      metadata: { name: "n", labels: { "node.kubernetes.io/exclude-from-external-load-balancers": value } },
      status: { addresses: [{ type: "InternalIP", address: "10.0.0.1" }] },
    });
    expect(evaluateNode(node("F"), ["InternalIP"]).eligible).toBe(true);
    expect(evaluateNode(node(""), ["InternalIP"]).eligible).toBe(false);
  });
  it("follows the address preference and skips non-IPs for IP types", () => {
    const node: V1Node = {
      status: { addresses: [{ type: "ExternalIP", address: "not-an-ip" }, { type: "InternalIP", address: "10.0.0.9" }, { type: "ExternalIP", address: "192.0.2.9" }] },
    };
    expect(nodeAddress(node, ["ExternalIP", "InternalIP"])).toBe("192.0.2.9");
    expect(nodeAddress(node, ["InternalIP", "ExternalIP"])).toBe("10.0.0.9");
  });
});

const body = (over: Partial<SnapshotBody> = {}): SnapshotBody => ({
  schema: "edgelb.dev/snapshot/v1",
  cluster: "c",
  nodes: [{ name: "a", address: "10.0.0.1", healthy: true }, { name: "b", address: "10.0.0.2", healthy: true }],
  services: [{ namespace: "ns", name: "web", hostnames: ["web.example.com"], nodePort: 30080, scheme: "http", trafficPolicy: "Cluster", policy: {} } as SnapshotBody["services"][number]],
  ...over,
});

describe("diff", () => {
  it("treats generation, publishedAt, the cluster identity and spelled-out defaults as no change", () => {
    const a = body();
    const stored = { ...body(), generation: 7, publishedAt: "2024-01-01T00:00:00.000Z" };
    stored.services = [{ ...stored.services[0]!, policy: { algorithm: "round-robin", affinity: "none", attempts: 3 } as never }];
    expect(contentKey(a)).toBe(contentKey(stored));
    expect(contentKey({ ...stored, clusterId: "1d9b38a1-d848-41d3-ae23-8123b9a94e24" })).toBe(contentKey(a));
    expect(isEmptyDiff(diffSnapshots(stored, a))).toBe(true);
  });
  it("names hosts and nodes added, removed and changed", () => {
    const after = body({
      nodes: [{ name: "a", address: "10.0.0.1", healthy: false }, { name: "c", address: "10.0.0.3", healthy: true }],
      services: [{ namespace: "ns", name: "web", hostnames: ["new.example.com"], nodePort: 30081, scheme: "http", trafficPolicy: "Cluster", policy: {} } as SnapshotBody["services"][number]],
    });
    const d = diffSnapshots(body(), after);
    expect(d.hostsAdded).toEqual(["new.example.com"]);
    expect(d.hostsRemoved).toEqual(["web.example.com"]);
    expect(d.nodesAdded).toEqual(["c"]);
    expect(d.nodesRemoved).toEqual(["b"]);
    expect(d.nodesUnhealthy).toEqual(["a"]);
    expect(d.servicesChanged).toEqual(["ns/web"]);
    expect(summarizeDiff(d)).toBe("hosts +new.example.com -web.example.com; nodes +c -b; healthy -a");
  });
});

describe("pacer", () => {
  const base = { quietMs: 100, maxDelayMs: 1000, minIntervalMs: 1000 };
  it("waits for quiet, but not longer than the max delay", () => {
    const p = new Pacer(base);
    expect(p.decide(0)).toEqual({ kind: "idle" });
    p.changed(0);
    expect(p.decide(50)).toEqual({ kind: "wait", at: 100, why: "quiet" });
    for (let t = 50; t < 1000; t += 50) p.changed(t);
    expect(p.decide(990)).toEqual({ kind: "wait", at: 1000, why: "quiet" });
    expect(p.decide(1000)).toEqual({ kind: "write" });
  });
  it("never writes twice within a second", () => {
    const p = new Pacer(base);
    p.wrote(5000);
    p.changed(5010);
    expect(p.decide(5200)).toEqual({ kind: "wait", at: 6000, why: "rate" });
    expect(p.decide(6000)).toEqual({ kind: "write" });
  });
  it("holds writes until the next UTC day when the budget is spent", () => {
    const p = new Pacer({ ...base, dailyBudget: 2 });
    const day = Date.UTC(2026, 0, 1, 12);
    p.wrote(day);
    p.wrote(day + 2000);
    p.changed(day + 5000);
    expect(p.decide(day + 6000)).toEqual({ kind: "budget", at: Date.UTC(2026, 0, 2) });
    expect(p.decide(Date.UTC(2026, 0, 2))).toEqual({ kind: "write" });
  });
  it("settles when the desired state returns to what is stored", () => {
    const p = new Pacer(base);
    p.changed(0);
    p.settled();
    expect(p.decide(5000)).toEqual({ kind: "idle" });
  });
});
