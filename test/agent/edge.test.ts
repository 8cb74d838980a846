// The whole path as a user sees it: a simulated cluster, the agent, the real
// worker in workerd, and HTTP requests from a real client through the worker
// to the simulated nodes. Every change a cluster operator makes must show up
// in where traffic goes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Snapshot } from "../../worker/snapshot/schema.ts";
import type { Agent } from "../../sync-agent/agent.ts";
import { contentKey } from "../../sync-agent/model/diff.ts";
import { healthyNodes, lbService, startWorld, waitFor, type World } from "./harness.ts";

const INTERVAL = 200;
const RISE = 2;
const FALL = 2;

let w: World;
let agent: Agent;
beforeAll(async () => {
  w = await startWorld({
    addressBase: "127.0.66",
    sink: "worker",
    nodes: 3,
    config: { health: { mode: "kube-proxy", intervalMs: INTERVAL, timeoutMs: 150, rise: RISE, fall: FALL, healthzPort: 0 } },
    noAgent: true,
  });
  agent = await w.startAgent({ health: { mode: "kube-proxy", intervalMs: INTERVAL, timeoutMs: 150, rise: RISE, fall: FALL, healthzPort: w.cluster.healthzPort } });
  await w.waitForSnapshot((s) => s.nodes.length === 3, "first snapshot");
});
afterAll(() => w?.stop());

/** The set of nodes that answer `rounds` requests for host (or "status N" entries). */
async function answering(host: string, rounds = 12): Promise<string[]> {
  const seen = new Set<string>();
  for (let i = 0; i < rounds; i++) seen.add(await w.whoAnswers(host));
  return [...seen].sort();
}

async function untilAnswering(host: string, expected: string[], what: string, timeoutMs = 8_000): Promise<void> {
  let last: string[] = [];
  await waitFor(async () => {
    last = await answering(host);
    return JSON.stringify(last) === JSON.stringify([...expected].sort());
  }, `${what} (last seen: ${JSON.stringify(last)})`, timeoutMs);
}

const svc = (s: Snapshot, name: string) => s.services.find((x) => x.name === name);
/** Nodes the snapshot lists at all (excluded nodes are absent, not merely unhealthy). */
const listed = (s: Snapshot) => s.nodes.map((n) => n.name).sort();

describe("cluster changes reach the edge", () => {
  it("gives a new Service traffic on every node", async () => {
    w.cluster.create(lbService("web", { hostnames: "web.example.com" }));
    await untilAnswering("web.example.com", ["node-1", "node-2", "node-3"], "web served by all nodes");
    const res = await w.request("web.example.com", "/hello?x=1");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ path: "/hello", method: "GET" });
  });

  it("adds and removes nodes", async () => {
    await w.cluster.addNode();
    await untilAnswering("web.example.com", ["node-1", "node-2", "node-3", "node-4"], "node-4 added");
    await w.cluster.removeNode("node-4");
    await w.waitForSnapshot((s) => listed(s).join() === "node-1,node-2,node-3", "node-4 not listed");
    await untilAnswering("web.example.com", ["node-1", "node-2", "node-3"], "node-4 removed");
  });

  it("drops a node labelled exclude-from-external-load-balancers, and takes it back", async () => {
    const label = "node.kubernetes.io/exclude-from-external-load-balancers";
    w.cluster.patch("Node", "node-3", { metadata: { labels: { [label]: "true" } } }, { namespace: "" });
    await w.waitForSnapshot((s) => listed(s).join() === "node-1,node-2", "node-3 not listed");
    await untilAnswering("web.example.com", ["node-1", "node-2"], "node-3 excluded");
    w.cluster.patch("Node", "node-3", { metadata: { labels: { [label]: "false" } } }, { namespace: "" });
    await untilAnswering("web.example.com", ["node-1", "node-2", "node-3"], "node-3 back (label false)");
  });

  it("keeps a cordoned, NotReady node whose health check passes (like upstream)", async () => {
    const before = (await w.stored())!.generation;
    w.cluster.setNodeReady("node-1", false);
    w.cluster.patch("Node", "node-1", { spec: { unschedulable: true } }, { namespace: "" });
    // A later, real change proves the Node updates were evaluated and changed nothing.
    w.cluster.create(lbService("marker", { hostnames: "marker.example.com" }));
    const s = await w.waitForSnapshot((s) => s.services.some((x) => x.name === "marker"), "marker published");
    expect(s.generation).toBe(before + 1);
    expect(healthyNodes(s)).toContain("node-1");
    await untilAnswering("web.example.com", ["node-1", "node-2", "node-3"], "node-1 still serving");
    w.cluster.setNodeReady("node-1", true);
    w.cluster.patch("Node", "node-1", { spec: { unschedulable: false } }, { namespace: "" });
    w.cluster.delete("Service", "marker");
  });

  it("drops a node the cluster autoscaler is about to delete", async () => {
    w.cluster.patch("Node", "node-2", { spec: { taints: [{ key: "ToBeDeletedByClusterAutoscaler", value: "1700000000", effect: "NoSchedule" }] } }, { namespace: "" });
    // kube-proxy fails /healthz on such a node too; the agent must not even list it.
    await w.waitForSnapshot((s) => !listed(s).includes("node-2"), "tainted node-2 not listed");
    await untilAnswering("web.example.com", ["node-1", "node-3"], "tainted node-2 dropped");
    w.cluster.patch("Node", "node-2", { spec: { taints: [] } }, { namespace: "" });
    await untilAnswering("web.example.com", ["node-1", "node-2", "node-3"], "node-2 back");
  });

  it("drops a node that is being deleted", async () => {
    const node = await w.cluster.addNode();
    await untilAnswering("web.example.com", ["node-1", "node-2", "node-3", node.name], "new node serving");
    w.cluster.patch("Node", node.name, { metadata: { finalizers: ["example.com/drain"] } }, { namespace: "" });
    w.cluster.delete("Node", node.name, "");
    expect(w.cluster.get("Node", node.name, "").metadata.deletionTimestamp).toBeTruthy();
    await w.waitForSnapshot((s) => !listed(s).includes(node.name), "terminating node not listed");
    await untilAnswering("web.example.com", ["node-1", "node-2", "node-3"], "terminating node dropped");
    w.cluster.patch("Node", node.name, { metadata: { finalizers: null } }, { namespace: "" }); // deletion completes
    await w.cluster.removeNode(node.name);
  });

  it("takes a node failing its health check out within two probe intervals, back after the rise threshold", async () => {
    const node2 = w.cluster.node("node-2");
    const t0 = Date.now();
    node2.setHealthy(false);
    const down = await w.waitForSnapshot((s) => !healthyNodes(s).includes("node-2"), "node-2 unhealthy at the edge");
    const tookDown = Date.now() - t0;
    // FALL failed probes fit in FALL intervals; the push adds the quiet period and one HTTP round trip.
    expect(tookDown).toBeLessThan(FALL * INTERVAL + w.config.coalesceMs + 400);
    expect(healthyNodes(down)).toEqual(["node-1", "node-3"]);
    await untilAnswering("web.example.com", ["node-1", "node-3"], "no traffic to node-2");

    const t1 = Date.now();
    node2.setHealthy(true);
    await w.waitForSnapshot((s) => healthyNodes(s).includes("node-2"), "node-2 healthy again");
    // It needs RISE good probes in a row: at least RISE-1 intervals after the first.
    expect(Date.now() - t1).toBeGreaterThanOrEqual((RISE - 1) * INTERVAL);
    await untilAnswering("web.example.com", ["node-1", "node-2", "node-3"], "node-2 back in rotation");
  });

  it("sends a Local Service only to nodes with ready endpoints, weighted, following its EndpointSlices", async () => {
    w.cluster.create(lbService("local", { hostnames: "local.example.com", spec: { externalTrafficPolicy: "Local" } }));
    await w.cluster.placePods({ name: "local" }, ["node-1", "node-1", "node-3"]);
    await untilAnswering("local.example.com", ["node-1", "node-3"], "local pods on node-1 and node-3");
    const s = await w.waitForSnapshot((s) => svc(s, "local")?.endpoints?.length === 2, "local endpoints");
    expect(svc(s, "local")?.endpoints).toEqual([
      { node: "node-1", weight: 2, healthy: true },
      { node: "node-3", weight: 1, healthy: true },
    ]);
    await w.cluster.placePods({ name: "local" }, ["node-2"]);
    await untilAnswering("local.example.com", ["node-2"], "pods moved to node-2");
  });

  it("follows port, hostname and externalTrafficPolicy changes", async () => {
    w.cluster.patch("Service", "web", {
      metadata: { annotations: { "edgelb.dev/hostnames": "shop.example.com", "edgelb.dev/port": "admin" } },
      spec: { ports: [{ name: "http", port: 80, protocol: "TCP" }, { name: "admin", port: 9000, protocol: "TCP" }] },
    });
    const admin = () => (w.cluster.get("Service", "web").spec.ports as { name: string; nodePort: number }[]).find((p) => p.name === "admin")!.nodePort;
    await w.waitForSnapshot((s) => svc(s, "web")?.nodePort === admin() && svc(s, "web")?.hostnames[0] === "shop.example.com", "new port and hostname");
    await untilAnswering("shop.example.com", ["node-1", "node-2", "node-3"], "new hostname served");
    await waitFor(async () => (await answering("web.example.com", 2)).every((x) => x.startsWith("status 4")), "old hostname gone");

    // Cluster → Local: only the node with the Service's pod.
    await w.cluster.placePods({ name: "web" }, ["node-3"]);
    w.cluster.patch("Service", "web", { spec: { externalTrafficPolicy: "Local" } });
    await untilAnswering("shop.example.com", ["node-3"], "Local policy honoured");
    w.cluster.patch("Service", "web", { spec: { externalTrafficPolicy: "Cluster" } });
    await untilAnswering("shop.example.com", ["node-1", "node-2", "node-3"], "back to Cluster");
  });

  it("fails open when every node fails its health check, and says so", async () => {
    for (const n of w.cluster.nodes) n.setHealthy(false);
    await waitFor(() => w.logs.some((l) => /^EVERY node failed its health checks/.test(l.msg) && l.level === 50), "fail-open error logged");
    // The edge has exactly what the agent wants now, and that is the fail-open state.
    const s = await w.waitForSnapshot(
      (s) => agent.controller.lastDesired?.failOpen === true && contentKey(s) === contentKey(agent.controller.lastDesired.body),
      "fail-open snapshot at the edge",
    );
    expect(s.nodes.map((n) => [n.name, n.healthy])).toEqual([["node-1", true], ["node-2", true], ["node-3", true]]);
    // And says so, for multi-cluster steering to prefer a cluster with really healthy nodes.
    expect(s.failOpen).toBe(true);
    await untilAnswering("shop.example.com", ["node-1", "node-2", "node-3"], "traffic still flows");
    for (const n of w.cluster.nodes) n.setHealthy(true);
    await waitFor(() => w.logs.some((l) => /fail-open ended/.test(l.msg)), "fail-open ended");
    await w.waitForSnapshot((s) => s.failOpen === undefined && s.nodes.every((n) => n.healthy), "the edge learns fail-open ended");
  });

  it("keeps traffic flowing through an API server outage and applies what changed meanwhile", async () => {
    await w.cluster.api.stop();
    w.cluster.create(lbService("late", { hostnames: "late.example.com" }));
    w.cluster.api.compact(); // and the watch history is gone: 410 on reconnect
    await untilAnswering("shop.example.com", ["node-1", "node-2", "node-3"], "still served during the outage");
    await w.cluster.api.listen();
    await untilAnswering("late.example.com", ["node-1", "node-2", "node-3"], "change made during the outage");
  });

  it("stops routing a deleted Service", async () => {
    w.cluster.delete("Service", "web");
    await waitFor(async () => (await answering("shop.example.com", 2)).every((x) => x.startsWith("status 4")), "deleted Service not routed");
    expect((await w.stored())?.services.map((s) => s.name)).toEqual(["late", "local"]);
  });
});
