// The agent as a safe neighbour in a shared cluster (issue 12), end to end:
// the simulated cluster, the real agent with Service status and Events, and
// the real worker in workerd. Nodes on 127.15.1.0/24 (this file's own).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Agent } from "../../sync-agent/agent.ts";
import { createAgent } from "../../sync-agent/agent.ts";
import { attachCitizen, type AttachedCitizen } from "../../sync-agent/citizen/attach.ts";
import { CITIZEN_DEFAULTS } from "../../sync-agent/citizen/index.ts";
import type { AgentConfig } from "../../sync-agent/config.ts";
import type { Obj } from "../../lab/cluster/api/selectors.ts";
import { lbService, logsMatching, startWorld, waitFor, type World } from "./harness.ts";

let w: World;
let running: { agent: Agent; citizen: AttachedCitizen } | null = null;

/** Starts the agent with Service status and Events (no leader election, no metrics server). */
async function startAgent(over: Partial<AgentConfig> = {}): Promise<Agent> {
  const agent = createAgent({ ...w.config, ...over }, { log: w.log });
  const citizen = attachCitizen(agent, { ...CITIZEN_DEFAULTS, leaderElect: false, metricsAddress: "", identity: "neighbour-test" });
  await citizen.start();
  await agent.start();
  running = { agent, citizen };
  return agent;
}

async function stopAgent(): Promise<void> {
  if (!running) return;
  await running.citizen.stop();
  await running.agent.stop();
  running = null;
}

function events(namespace: string, name: string): Obj[] {
  return w.cluster.list("Event", namespace).filter((e) => e.involvedObject?.name === name);
}

function waitForEvent(namespace: string, name: string, reason: string, what = `${reason} Event on ${namespace}/${name}`): Promise<Obj> {
  return waitFor(() => events(namespace, name).find((e) => e.reason === reason), what, 8_000);
}

function ingress(namespace: string, name: string): unknown[] {
  return w.cluster.get("Service", name, namespace).status?.loadBalancer?.ingress ?? [];
}

/** What MetalLB / ServiceLB do: an `ip` entry through the status subresource. */
function announce(namespace: string, name: string, entry: Obj): void {
  const svc = w.cluster.get("Service", name, namespace);
  w.cluster.updateStatus({ ...svc, status: { loadBalancer: { ingress: [entry] } } });
}

function namespace(name: string, annotations: Record<string, string> = {}): void {
  w.cluster.create({ apiVersion: "v1", kind: "Namespace", metadata: { name, annotations } });
}

beforeAll(async () => {
  w = await startWorld({
    addressBase: "127.15.1",
    sink: "worker",
    nodes: 3,
    noAgent: true,
    // The simulated nodes are on loopback: this test run allows it (one test below does not).
    config: { allowPrivateAddresses: true, defaultDomain: "apps.example.com" },
  });
  for (const ns of ["infra", "shop", "intruder"]) namespace(ns);
});

afterAll(async () => {
  await stopAgent();
  await w?.stop();
});

describe("a safe neighbour in a shared cluster", () => {
  it("never tramples MetalLB or ServiceLB: their ip entries stay, their Services are left to them with one Normal Event", async () => {
    // MetalLB's UDP DNS Service and a Service k3s ServiceLB took, before edgelb arrives.
    w.cluster.create(
      lbService("dns", {
        namespace: "infra",
        annotations: { "metallb.universe.tf/address-pool": "public", "metallb.universe.tf/allow-shared-ip": "dns" },
        ports: [{ name: "dns", port: 53, targetPort: 53, protocol: "UDP" }],
      }),
    );
    announce("infra", "dns", { ip: "192.0.2.53", ipMode: "VIP" });
    w.cluster.create(lbService("traefik", { namespace: "infra", hostnames: "traefik.example.com" }));
    announce("infra", "traefik", { ip: "192.0.2.80" });
    w.cluster.create(lbService("web", { namespace: "shop", hostnames: "web.example.com" }));
    await w.cluster.placePods({ namespace: "shop", name: "web" }, ["node-1", "node-2"]);
    const rv = (ns: string, n: string) => w.cluster.get("Service", n, ns).metadata.resourceVersion as string;
    const before = { dns: rv("infra", "dns"), traefik: rv("infra", "traefik") };

    await startAgent();
    const snap = await w.waitForSnapshot((s) => s.services.some((x) => x.name === "web"), "shop/web published");
    expect(snap.services.map((s) => `${s.namespace}/${s.name}`)).toEqual(["shop/web"]);
    await waitFor(() => (ingress("shop", "web").length > 0 ? true : undefined), "web's EXTERNAL-IP");
    expect(ingress("shop", "web")).toEqual([{ hostname: "web.example.com" }]);

    const told = await waitForEvent("infra", "dns", "LoadBalancerOwnedElsewhere");
    expect(told.type).toBe("Normal");
    expect(told.message).toContain("192.0.2.53");
    expect(told.message).toContain("seems to belong to MetalLB");
    expect(told.message).toContain("spec.loadBalancerClass: edgelb.dev/worker");
    expect((await waitForEvent("infra", "traefik", "LoadBalancerOwnedElsewhere")).message).toContain("another load balancer controller");
    await running!.citizen.citizen.events.flush();
    // No status write at all on their Services, and no Warning either.
    expect(rv("infra", "dns")).toBe(before.dns);
    expect(rv("infra", "traefik")).toBe(before.traefik);
    expect(ingress("infra", "dns")).toEqual([{ ip: "192.0.2.53", ipMode: "VIP" }]);
    expect(events("infra", "dns").map((e) => e.reason)).toEqual(["LoadBalancerOwnedElsewhere"]);

    // Restart with --only-class: no memory of what it wrote, yet it clears
    // exactly its own hostname entry (derived from the Service) and nothing else.
    await stopAgent();
    await startAgent({ onlyClass: true });
    await waitFor(() => (ingress("shop", "web").length === 0 ? true : undefined), "web's hostname cleared after restart with --only-class");
    expect(ingress("infra", "dns")).toEqual([{ ip: "192.0.2.53", ipMode: "VIP" }]);
    expect(ingress("infra", "traefik")).toEqual([{ ip: "192.0.2.80" }]);
    await stopAgent();
  });

  it("externalTrafficPolicy: Local during a rollout (KEP-1669): the serving, terminating pod's node keeps the traffic", async () => {
    await startAgent();
    w.cluster.create(lbService("api", { namespace: "shop", hostnames: "api.example.com", spec: { externalTrafficPolicy: "Local" } }));
    await w.cluster.placePods({ namespace: "shop", name: "api" }, ["node-2"]);
    await w.waitForSnapshot((s) => s.services.find((x) => x.name === "api")?.endpoints?.some((e) => e.node === "node-2" && e.healthy) === true, "api on node-2");
    expect(await w.whoAnswers("api.example.com")).toBe("node-2");

    // The rollout: the old pod terminates (still serving), the new one on node-3 is not ready yet.
    const slice = w.cluster.get("EndpointSlice", "api-sim", "shop");
    const old = slice.endpoints[0];
    slice.endpoints = [
      { ...old, conditions: { ready: false, serving: true, terminating: true } },
      { addresses: ["10.244.9.9"], nodeName: "node-3", conditions: { ready: false, serving: false, terminating: false }, targetRef: { kind: "Pod", namespace: "shop", name: "api-new", uid: "api-new-uid" } },
    ];
    w.cluster.update(slice);
    await w.cluster.settled();
    // node-2's healthCheckNodePort now says 503 (terminating only): it still serves, failing open among exactly it.
    const snap = await w.waitForSnapshot(
      (s) => {
        const eps = s.services.find((x) => x.name === "api")?.endpoints;
        return eps !== undefined && eps.length === 1 && eps[0]!.node === "node-2" && eps[0]!.healthy;
      },
      "api still on node-2 while its pod terminates",
    );
    expect(snap.services.find((x) => x.name === "api")!.endpoints).toEqual([{ node: "node-2", weight: 1, healthy: true }]);
    expect(await w.whoAnswers("api.example.com")).toBe("node-2");
    await stopAgent();
  });

  it("hostnames belong to their namespace, admins narrow them per namespace, and losers hear why", async () => {
    w.cluster.patch("Namespace", "shop", { metadata: { annotations: { "edgelb.dev/allowed-hostnames": "*.shop.example.com,shop.example.com,*.shop.apps.example.com" } } }, { namespace: "" });
    // The intruder came first.
    w.cluster.create(lbService("grab", { namespace: "intruder", hostnames: "checkout.shop.apps.example.com" }));
    w.cluster.create(lbService("checkout", { namespace: "shop", hostnames: "checkout.shop.apps.example.com,www.shop.example.com,shop.example.org" }));
    await startAgent();
    const snap = await w.waitForSnapshot((s) => s.services.some((x) => x.name === "checkout"), "shop/checkout published");
    expect(snap.services.find((x) => x.name === "checkout")!.hostnames).toEqual(["checkout.shop.apps.example.com", "www.shop.example.com"]);
    expect(snap.services.some((x) => x.name === "grab")).toBe(false);

    const grab = await waitForEvent("intruder", "grab", "SyncLoadBalancerFailed");
    expect(grab.type).toBe("Warning");
    expect(grab.message).toContain("checkout.shop.apps.example.com is under --default-domain apps.example.com and belongs to namespace shop");
    const refused = await waitForEvent("shop", "checkout", "HostnameRefused");
    expect(refused.message).toContain("shop.example.org is not allowed in namespace shop");

    // The admin widens the namespace's list: the name is served without a restart.
    w.cluster.patch("Namespace", "shop", { metadata: { annotations: { "edgelb.dev/allowed-hostnames": "*.shop.example.com,shop.example.com,*.shop.apps.example.com,shop.example.org" } } }, { namespace: "" });
    await w.waitForSnapshot((s) => s.services.find((x) => x.name === "checkout")?.hostnames.includes("shop.example.org") === true, "shop.example.org allowed");
    await stopAgent();
    w.cluster.patch("Namespace", "shop", { metadata: { annotations: { "edgelb.dev/allowed-hostnames": null } } }, { namespace: "" });
  });

  it("loadBalancerSourceRanges: carried to the edge and enforced there; an invalid range refuses the Service with a Warning", async () => {
    w.cluster.create(lbService("admin", { namespace: "shop", hostnames: "admin.example.com", spec: { loadBalancerSourceRanges: ["203.0.113.0/24", "2001:db8:1::/48"] } }));
    w.cluster.create(lbService("typo", { namespace: "shop", hostnames: "typo.example.com", spec: { loadBalancerSourceRanges: ["203.0.113.0/33"] } }));
    await w.cluster.placePods({ namespace: "shop", name: "admin" }, ["node-1"]);
    await startAgent();
    const snap = await w.waitForSnapshot((s) => s.services.some((x) => x.name === "admin"), "shop/admin published");
    expect(snap.services.find((x) => x.name === "admin")!.sourceRanges).toEqual(["2001:db8:1::/48", "203.0.113.0/24"]);
    expect(snap.services.some((x) => x.name === "typo")).toBe(false);

    const outside = await w.edge!.request("admin.example.com", "/", { headers: { "cf-connecting-ip": "198.51.100.7" } });
    expect(outside.status).toBe(403);
    await outside.body?.cancel();
    const inside = await w.edge!.request("admin.example.com", "/", { headers: { "cf-connecting-ip": "203.0.113.9" } });
    expect(inside.status).toBe(200);
    await inside.body?.cancel();

    const warn = await waitForEvent("shop", "typo", "SyncLoadBalancerFailed");
    expect(warn.message).toContain('invalid CIDR(s) "203.0.113.0/33": not serving it open');
    await stopAgent();
  });

  it("addresses Cloudflare refuses are said loudly: one warning per node, a Warning Event per Service; edgelb.dev/address overrides", async () => {
    const node3 = w.cluster.get("Node", "node-3", "");
    w.cluster.update({ ...node3, metadata: { ...node3.metadata, annotations: { ...node3.metadata.annotations, "edgelb.dev/address": "198.51.100.33" } } });
    const from = w.logs.length;
    await startAgent({ allowPrivateAddresses: false });
    const snap = await w.waitForSnapshot((s) => s.nodes.find((n) => n.name === "node-3")?.address === "198.51.100.33", "node-3 published at its annotated address");
    expect(snap.nodes.map((n) => n.address)).toEqual(["127.15.1.11", "127.15.1.12", "198.51.100.33"]);
    const warned = await waitFor(() => {
      const lines = logsMatching(w.logs.slice(from), /Cloudflare will refuse to connect/);
      return lines.length >= 2 ? lines : undefined;
    }, "one warning per loopback node");
    expect(warned.map((l) => l.node).sort()).toEqual(["node-1", "node-2"]);
    expect(warned[0]!.msg).toContain("a loopback address");

    const ev = await waitForEvent("shop", "web", "UnroutableNodeAddress");
    expect(ev.type).toBe("Warning");
    expect(ev.message).toContain("node-1 (127.15.1.11: a loopback address)");
    expect(ev.message).not.toContain("node-3");
    await stopAgent();
    // Still one line per node: a re-evaluation does not repeat it.
    expect(logsMatching(w.logs.slice(from), /Cloudflare will refuse to connect/)).toHaveLength(2);
  });
});
