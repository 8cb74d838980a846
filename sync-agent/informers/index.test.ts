// The agent's informers against the fake API server with real-shaped (15 KB)
// Nodes: what is cached, which updates ask for an evaluation, and what a
// re-list costs. `onChange` is the only way an informer asks the controller to
// evaluate (agent.ts wires it to markDirty), so counting it counts the
// evaluations the informers cause.
import { CoreV1Api, KubeConfig, type V1Node } from "@kubernetes/client-node";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { heartbeat, realisticNode } from "../../bench/lib/realistic.ts";
import { writeKubeconfig } from "../../lab/cluster/api/kubeconfig.ts";
import { ENDPOINT_SLICES, NODES, SERVICES } from "../../lab/cluster/api/resources.ts";
import { ApiServer } from "../../lab/cluster/api/server.ts";
import { waitFor } from "../../lab/cluster/wait.ts";
import { ClusterInformers, NODE_SHAPE, stripListItems } from "./index.ts";

let api: ApiServer;
let kc: KubeConfig;
let informers: ClusterInformers;
let changes: string[];
let leading = true;
let resyncAsked = 0;

async function start(opts: { nodes: number; pageSize?: number; resyncMs?: number; leading?: boolean }) {
  api = await ApiServer.start({ host: "127.17.0.1", port: 0 });
  for (let i = 0; i < opts.nodes; i++) api.store.create(NODES, "", realisticNode(i, { address: `127.17.1.${i + 1}` }));
  kc = new KubeConfig();
  kc.loadFromFile(writeKubeconfig({ server: api.url }));
  changes = [];
  leading = opts.leading ?? true;
  resyncAsked = 0;
  informers = new ClusterInformers({
    kubeConfig: kc,
    log: pino({ level: "silent" }),
    onChange: (reason) => void changes.push(reason),
    backoff: { initialMs: 40, maxMs: 400 },
    resyncMs: opts.resyncMs ?? 0,
    pageSize: opts.pageSize ?? 500,
    resyncWhen: () => (resyncAsked++, leading),
  });
  informers.start();
  await informers.waitForSync();
  await waitFor(() => api.watchCount === 3, "three watches open");
}

afterEach(async () => {
  await informers?.stop();
  await api?.stop();
});

const cached = (name: string) => informers.nodes.list().find((n) => n.metadata?.name === name);
const nodeChanges = () => changes.filter((c) => c.startsWith("nodes")).length;

describe("ClusterInformers with real-shaped Nodes", () => {
  it("a heartbeat-only Node update causes no evaluation; an address change causes one", async () => {
    await start({ nodes: 3 });
    const before = nodeChanges();
    // Ten kubelet status reports: only lastHeartbeatTime (and resourceVersion) move.
    for (let k = 1; k <= 10; k++) {
      const at = `2026-03-01T12:${String(k).padStart(2, "0")}:00Z`;
      const stored = api.store.update(NODES, "", "node-1", heartbeat(api.store.get(NODES, "", "node-1"), at), { subresource: "status" });
      await waitFor(() => cached("node-1")?.metadata?.resourceVersion === stored.metadata.resourceVersion, `heartbeat ${k} in the cache`);
    }
    expect(nodeChanges()).toBe(before);
    expect(informers.updates().nodes).toEqual({ unchanged: 10, changed: 0, irrelevant: 0 });

    api.store.mutate(NODES, "", "node-1", (n) => void ((n.status as V1Node["status"])!.addresses![0]!.address = "127.17.2.1"), { subresource: "status" });
    await waitFor(() => cached("node-1")?.status?.addresses?.[0]?.address === "127.17.2.1", "address change in the cache");
    expect(nodeChanges()).toBe(before + 1);
    expect(informers.updates().nodes).toEqual({ unchanged: 10, changed: 1, irrelevant: 0 });
  });

  it("pod churn behind a Cluster Service causes no evaluation; behind a Local Service it does", async () => {
    await start({ nodes: 2 });
    const slice = (svc: string, ip: string) => ({
      metadata: { name: `${svc}-x`, namespace: "default", labels: { "kubernetes.io/service-name": svc } },
      addressType: "IPv4",
      endpoints: [{ addresses: [ip], conditions: { ready: true }, nodeName: "node-0" }],
    });
    for (const [name, policy] of [["cluster", "Cluster"], ["local", "Local"]] as const) {
      api.store.create(SERVICES, "default", { metadata: { name }, spec: { type: "LoadBalancer", externalTrafficPolicy: policy, ports: [{ port: 80 }] } });
      api.store.create(ENDPOINT_SLICES, "default", slice(name, "10.244.0.1"));
    }
    await waitFor(() => informers.endpointSlices.list().length === 2 && informers.services.list().length === 2, "both cached");
    const sliceChanges = () => changes.filter((c) => c.startsWith("endpointslices")).length;
    const before = sliceChanges();
    // A pod replaced behind each Service: the cache takes both, only Local asks for an evaluation.
    api.store.update(ENDPOINT_SLICES, "default", "cluster-x", { ...api.store.get(ENDPOINT_SLICES, "default", "cluster-x"), endpoints: slice("cluster", "10.244.0.2").endpoints });
    await waitFor(() => informers.endpointSlices.get("cluster-x", "default")?.endpoints?.[0]?.addresses?.[0] === "10.244.0.2", "cluster slice cached");
    expect(sliceChanges()).toBe(before);
    api.store.update(ENDPOINT_SLICES, "default", "local-x", { ...api.store.get(ENDPOINT_SLICES, "default", "local-x"), endpoints: slice("local", "10.244.0.2").endpoints });
    await waitFor(() => informers.endpointSlices.get("local-x", "default")?.endpoints?.[0]?.addresses?.[0] === "10.244.0.2", "local slice cached");
    expect(sliceChanges()).toBe(before + 1);
  });

  it("behind a Cluster Service with a selector, only its first and last serving endpoint cause an evaluation", async () => {
    await start({ nodes: 2 });
    const endpoints = (...ips: string[]) => ips.map((ip) => ({ addresses: [ip], conditions: { ready: true }, nodeName: "node-0" }));
    api.store.create(SERVICES, "default", { metadata: { name: "web" }, spec: { type: "LoadBalancer", selector: { app: "web" }, ports: [{ port: 80 }] } });
    api.store.create(ENDPOINT_SLICES, "default", {
      metadata: { name: "web-x", namespace: "default", labels: { "kubernetes.io/service-name": "web" } },
      addressType: "IPv4",
      endpoints: endpoints("10.244.0.1"),
    });
    await waitFor(() => informers.endpointSlices.list().length === 1 && informers.services.get("web", "default"), "cached");
    const sliceChanges = () => changes.filter((c) => c.startsWith("endpointslices")).length;
    const set = async (ips: string[], what: string) => {
      const stored = api.store.update(ENDPOINT_SLICES, "default", "web-x", { ...api.store.get(ENDPOINT_SLICES, "default", "web-x"), endpoints: endpoints(...ips) });
      await waitFor(() => informers.endpointSlices.get("web-x", "default")?.metadata?.resourceVersion === stored.metadata.resourceVersion, what);
    };
    await set(["10.244.0.2"], "first sight of web's slice"); // the first look at a Service may evaluate
    const before = sliceChanges();
    // A rolling update: pods come and go, one always serves. No evaluation.
    await set(["10.244.0.2", "10.244.0.3"], "surge");
    await set(["10.244.0.3"], "old pod gone");
    await set(["10.244.0.3", "10.244.0.4", "10.244.0.5"], "scaled up");
    expect(sliceChanges()).toBe(before);
    expect(informers.state().endpointSlicesSynced).toBe(true);
    // Scaled to 0: one evaluation; staying at 0: none; back: one.
    await set([], "scaled to 0");
    expect(sliceChanges()).toBe(before + 1);
    await set([], "still 0");
    await set(["10.244.0.6"], "back to one");
    expect(sliceChanges()).toBe(before + 2);
  });

  it("strips LIST pages in the raw JSON, before client-node turns them into classes", async () => {
    await start({ nodes: 2 });
    const core = kc.makeApiClient(CoreV1Api);
    const plain = await core.listNode({ limit: 1 });
    expect(plain.items[0]?.status?.images?.length).toBe(30);
    const stripped = await core.listNode({ limit: 1 }, stripListItems(NODE_SHAPE));
    expect(stripped.items).toHaveLength(1);
    expect(stripped.items[0]?.status?.images).toBeUndefined();
    expect(stripped.items[0]?.metadata?.managedFields).toBeUndefined();
    expect(stripped.items[0]?.status?.addresses?.[0]?.address).toBe("127.17.1.1");
    expect(stripped.metadata?._continue).toBeTruthy(); // list metadata survives: paging still works
  });

  it("caches stripped Nodes, from LIST pages and from watch events", async () => {
    await start({ nodes: 5, pageSize: 2 });
    expect(api.requests.filter((r) => r.path === "/api/v1/nodes" && !r.watch).length).toBe(3); // 2 + 2 + 1
    api.store.create(NODES, "", realisticNode(9, { address: "127.17.1.9" }));
    await waitFor(() => cached("node-9"), "node-9 added by the watch");
    const full = Buffer.byteLength(JSON.stringify(realisticNode(0, { address: "127.17.1.1" })));
    expect(full).toBeGreaterThan(12_000);
    for (const n of informers.nodes.list()) {
      expect(Buffer.byteLength(JSON.stringify(n))).toBeLessThan(800);
      expect(Object.keys(n.metadata ?? {})).not.toContain("managedFields");
      expect(n.status?.addresses?.[0]?.type).toBe("InternalIP");
    }
  });

  it("a re-list reuses the cached object for every Node that did not change", async () => {
    await start({ nodes: 4 });
    const old = new Map(informers.nodes.list().map((n) => [n.metadata!.name!, n]));
    api.store.update(NODES, "", "node-0", heartbeat(api.store.get(NODES, "", "node-0"), "2026-03-01T13:00:00Z"), { subresource: "status" });
    api.store.mutate(NODES, "", "node-1", (n) => void (n.metadata.labels["node.kubernetes.io/exclude-from-external-load-balancers"] = "true"));
    await api.stop(); // the watch misses both changes; the re-list must find them
    await api.listen();
    const lists = changes.filter((c) => c === "nodes listed").length;
    informers.resync();
    await waitFor(() => changes.filter((c) => c === "nodes listed").length > lists, "re-listed");
    const now = new Map(informers.nodes.list().map((n) => [n.metadata!.name!, n]));
    expect(now.get("node-0")).toBe(old.get("node-0")); // heartbeat only: same object, newer resourceVersion
    expect(now.get("node-0")!.metadata!.resourceVersion).toBe(api.store.get(NODES, "", "node-0").metadata.resourceVersion);
    expect(now.get("node-1")).not.toBe(old.get("node-1"));
    expect(now.get("node-1")!.metadata!.labels).toMatchObject({ "node.kubernetes.io/exclude-from-external-load-balancers": "true" });
    expect(now.get("node-2")).toBe(old.get("node-2"));
  });

  it("a standby skips the periodic re-list and catches up once it leads", async () => {
    await start({ nodes: 2, resyncMs: 20, leading: false });
    const lists = () => api.requests.filter((r) => !r.watch && r.method === "GET").length;
    const asked = resyncAsked;
    const before = lists();
    await waitFor(() => resyncAsked >= asked + 9, "three resync periods on three informers");
    expect(lists()).toBe(before);
    // Taking over (controller.resume → onResumed) repairs the skipped drift at once.
    informers.resyncIfSkipped();
    await waitFor(() => lists() >= before + 3, "one re-list per resource");
  });
});
