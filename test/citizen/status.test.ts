// Service status, Events and metrics against the simulated cluster, through
// the real @kubernetes/client-node and kubectl. The verdicts come from the
// agent's own model; the "published" snapshot stands for what the edge
// accepted.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CoreV1Event, V1Node, V1Service } from "@kubernetes/client-node";
import { Citizen, CITIZEN_DEFAULTS } from "../../sync-agent/citizen/index.ts";
import { buildSnapshot, computeTopology } from "../../sync-agent/model/desired.ts";
import type { ApiProxy } from "./api-proxy.ts";
import { startSimCluster, until, type SimCluster } from "./harness.ts";

let sim: SimCluster;
let proxy: ApiProxy;
let citizen: Citizen;

const nodes: V1Node[] = ["node-a", "node-b"].map((name, i) => ({
  metadata: { name },
  status: { addresses: [{ type: "InternalIP", address: `127.0.0.${11 + i}` }] },
}));

async function sync(health: (node: string) => boolean = () => true) {
  const services = (await sim.core.listServiceForAllNamespaces()).items;
  const topo = computeTopology(
    { nodes, services, endpointSlices: [] },
    { cluster: "test", loadBalancerClass: "edgelb.dev/worker", onlyClass: false, addressPreference: ["InternalIP"] },
  );
  const desired = buildSnapshot(topo, { node: health, local: () => true }, "test");
  await citizen.afterSync({ services, verdicts: topo.verdicts, published: desired.body, failOpen: desired.failOpen });
  await citizen.events.flush();
}

async function eventsFor(name: string): Promise<CoreV1Event[]> {
  return (await sim.core.listNamespacedEvent({ namespace: "shop" })).items.filter((e) => e.involvedObject.name === name);
}

function row(table: string, name: string): string[] {
  const line = table.split("\n").find((l) => l.split(/\s+/)[0] === name);
  if (!line) throw new Error(`no row for ${name} in:\n${table}`);
  return line.trim().split(/\s+/);
}

beforeAll(async () => {
  sim = await startSimCluster();
  proxy = await sim.proxy();
  citizen = new Citizen({
    kubeConfig: sim.kubeConfig(proxy.url),
    config: {
      ...CITIZEN_DEFAULTS,
      metricsAddress: "127.0.0.1:0",
      identity: "agent-test",
      timings: { leaseDurationMs: 2_000, renewDeadlineMs: 1_500, retryPeriodMs: 200 },
    },
    informersSynced: () => true,
  });
  await citizen.start();
  await until("leadership", () => citizen.isLeader());
});

afterAll(async () => {
  await citizen?.stop();
  await sim?.close();
});

describe("Service status and Events on the simulated cluster", () => {
  it("kubectl get svc shows the hostname under EXTERNAL-IP, and <pending> says why in an Event", async () => {
    await sim.createService("shop", "web", { annotations: { "edgelb.dev/hostnames": "web.example.com,www.example.com" } });
    await sim.createService("shop", "nohost");
    await sync();

    const table = await sim.kubectl("get", "svc", "-n", "shop");
    expect(row(table, "web")[3]).toBe("web.example.com,www.example.com");
    expect(row(table, "nohost")[3]).toBe("<pending>");

    const web = await sim.core.readNamespacedService({ namespace: "shop", name: "web" });
    expect(web.status?.loadBalancer?.ingress).toEqual([{ hostname: "web.example.com" }, { hostname: "www.example.com" }]);

    const patch = proxy.log.find((r) => r.method === "PATCH" && r.url.startsWith("/api/v1/namespaces/shop/services/web/status"));
    expect(patch?.contentType).toBe("application/merge-patch+json");
    expect(proxy.log.some((r) => r.method !== "GET" && /\/services\/web$/.test(r.url.split("?")[0]!))).toBe(false); // never the main resource

    // Waited on: on busy cores the Warning about the loopback addresses was listed before this Event was.
    const ensured = ["Normal", "EnsuredLoadBalancer", "Ensured load balancer: web.example.com, www.example.com"];
    await until("the EnsuredLoadBalancer Event", async () =>
      (await eventsFor("web")).some((e) => JSON.stringify([e.type, e.reason, e.message]) === JSON.stringify(ensured)),
    );
    expect((await eventsFor("web")).map((e) => [e.type, e.reason, e.message])).toContainEqual(ensured);
    const why = await eventsFor("nohost");
    expect(why.map((e) => [e.type, e.reason, e.message])).toEqual([
      ["Warning", "SyncLoadBalancerFailed", "Error syncing load balancer: no hostname: set the edgelb.dev/hostnames annotation or --default-domain"],
    ]);
    expect(why[0]!.source?.component).toBe("edgelb-sync-agent");
    // kubectl describe shows it too
    expect(await sim.kubectl("describe", "svc", "-n", "shop", "nohost")).toMatch(/SyncLoadBalancerFailed.*no hostname/);
  });

  it("writes nothing when nothing changed", async () => {
    const writes = () => proxy.log.filter((r) => r.method !== "GET" && !r.url.includes("/leases"));
    const before = writes().length;
    await sync();
    await sync();
    expect(writes().slice(before).map((r) => `${r.method} ${r.url}`)).toEqual([]);
  });

  it("a flapping node writes no Event on any Service (health is not a node-set change)", async () => {
    await sim.createService("shop", "flappy", { annotations: { "edgelb.dev/hostnames": "flappy.example.com" } });
    await sync();
    const before = proxy.log.filter((r) => r.url.includes("/events")).length;
    for (let i = 0; i < 60; i++) await sync((n) => n !== "node-b" || i % 2 === 0);
    await sync(() => false); // every node fails: published fail-open, which the controller logs
    await sync();
    expect(proxy.log.filter((r) => r.url.includes("/events")).length - before).toBe(0);
    expect((await eventsFor("flappy")).filter((e) => e.reason === "UpdatedLoadBalancer" || e.reason === "UnAvailableLoadBalancer")).toEqual([]);
  });

  it("clears EXTERNAL-IP when a Service stops being ours", async () => {
    const svc = await sim.core.readNamespacedService({ namespace: "shop", name: "web" });
    await sim.core.replaceNamespacedService({
      namespace: "shop",
      name: "web",
      body: { ...svc, spec: { ...svc.spec, type: "ClusterIP", ports: svc.spec!.ports!.map(({ nodePort: _n, ...p }) => p) } } as V1Service,
    });
    await sync();
    const after = await sim.core.readNamespacedService({ namespace: "shop", name: "web" });
    expect(after.status?.loadBalancer?.ingress ?? []).toEqual([]);
    expect((await eventsFor("web")).map((e) => e.reason)).toContain("DeletedLoadBalancer");
  });

  it("serves metrics, health and readiness", async () => {
    const text = await (await fetch(`${citizen.metricsUrl}/metrics`)).text();
    expect(text).toContain("edgelb_leader 1");
    expect(text).toMatch(/edgelb_service_status_writes_total\{result="success"\} [1-9]/);
    expect(text).toMatch(/edgelb_events_total\{reason="EnsuredLoadBalancer",result="created"\} [1-9]/);
    expect((await fetch(`${citizen.metricsUrl}/healthz`)).status).toBe(200);
    // synced informers make it ready, although nothing reached the edge here (that is push lag, not readiness)
    const ready = await fetch(`${citizen.metricsUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.text()).toMatch(/^ok: leader: informers synced/);
  });
});
