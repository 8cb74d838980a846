// The whole simulated cluster: Node objects point at real loopback addresses,
// every node serves every allocated NodePort, and Local services' health-check
// ports answer from the EndpointSlices, like kube-proxy.
import { afterEach, describe, expect, it } from "vitest";
import { startCluster, type SimCluster } from "../../lab/cluster/cluster.ts";
import { waitFor } from "../../lab/cluster/wait.ts";

// Own /24 so parallel suites never collide on address:port.
const BASE = "127.0.41";
let cluster: SimCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

async function api(c: SimCluster, method: string, path: string, body?: unknown, contentType = "application/json") {
  const res = await fetch(`${c.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${c.token}`, "content-type": contentType },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as any };
}

const refused = async (url: string) => {
  try {
    await fetch(url);
    return false;
  } catch {
    return true;
  }
};

describe("startCluster", () => {
  it("registers one Node per simulated node, each answering NodePorts and healthz on its own address", async () => {
    cluster = await startCluster({ nodes: 3, addressBase: BASE, firstHost: 11, healthzPort: 0 });
    const c = cluster;
    const nodes = (await api(c, "GET", "/api/v1/nodes")).body.items;
    expect(nodes.map((n: any) => [n.metadata.name, n.status.addresses.find((a: any) => a.type === "InternalIP").address])).toEqual([
      ["node-1", `${BASE}.11`],
      ["node-2", `${BASE}.12`],
      ["node-3", `${BASE}.13`],
    ]);

    const created = await api(c, "POST", "/api/v1/namespaces/default/services", {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "web" },
      // No selector: endpoints are managed by hand, and the stand-in app answers on every node.
      spec: { type: "LoadBalancer", ports: [{ name: "http", port: 80, targetPort: 8080 }] },
    });
    expect(created.status).toBe(201);
    const nodePort: number = created.body.spec.ports[0].nodePort;
    await c.settled();
    for (const [i, n] of ["node-1", "node-2", "node-3"].entries()) {
      const res = await fetch(`http://${BASE}.${11 + i}:${nodePort}/hello`);
      expect(res.headers.get("x-edgelb-node")).toBe(n);
      expect(await res.json()).toMatchObject({ node: n, path: "/hello" });
      expect((await fetch(`http://${BASE}.${11 + i}:${c.healthzPort}/healthz`)).status).toBe(200);
    }

    await api(c, "DELETE", "/api/v1/namespaces/default/services/web");
    await c.settled();
    expect(await refused(`http://${BASE}.11:${nodePort}/`)).toBe(true);
  });

  it("answers a Local service's healthCheckNodePort per node from the pods placed there", async () => {
    cluster = await startCluster({ nodes: 3, addressBase: BASE, firstHost: 21, healthzPort: 0 });
    const c = cluster;
    const svc = c.create({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "local", namespace: "default" },
      spec: { type: "LoadBalancer", externalTrafficPolicy: "Local", ports: [{ port: 80 }] },
    });
    const hc: number = svc.spec.healthCheckNodePort;
    expect(hc).toBeGreaterThanOrEqual(30000);
    await c.placePods({ namespace: "default", name: "local" }, ["node-1", "node-1", "node-3"]);

    const probe = async (host: number) => {
      const res = await fetch(`http://${BASE}.${host}:${hc}/`);
      return { status: res.status, weight: res.headers.get("x-load-balancing-endpoint-weight"), body: (await res.json()) as any };
    };
    expect(await probe(21)).toMatchObject({ status: 200, weight: "2", body: { service: { namespace: "default", name: "local" }, localEndpoints: 2 } });
    expect(await probe(22)).toMatchObject({ status: 503, body: { localEndpoints: 0 } });
    expect(await probe(23)).toMatchObject({ status: 200, weight: "1" });

    // The EndpointSlice is a real object clients can select by service name.
    const slices = await api(c, "GET", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dlocal");
    expect(slices.body.items).toHaveLength(1);
    expect(slices.body.items[0].endpoints.map((e: any) => [e.nodeName, e.conditions.ready])).toEqual([
      ["node-1", true],
      ["node-1", true],
      ["node-3", true],
    ]);

    await c.placePods("local", ["node-2"], { ready: false });
    expect((await probe(21)).status).toBe(503);
    expect((await probe(22)).status).toBe(503);
    await c.placePods("local", ["node-2"]);
    expect(await probe(22)).toMatchObject({ status: 200, weight: "1" });

    // Switching to Cluster releases the health-check port: nodes stop answering it.
    c.patch("Service", "local", { spec: { externalTrafficPolicy: "Cluster" } });
    await c.settled();
    expect(c.get("Service", "local").spec.healthCheckNodePort).toBeUndefined();
    expect(await refused(`http://${BASE}.22:${hc}/`)).toBe(true);
  });

  it("serves nothing for allocateLoadBalancerNodePorts: false", async () => {
    cluster = await startCluster({ nodes: 1, addressBase: BASE, firstHost: 31, healthzPort: 0 });
    const svc = cluster.create({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "direct" },
      spec: { type: "LoadBalancer", allocateLoadBalancerNodePorts: false, ports: [{ port: 80 }] },
    });
    expect(svc.spec.ports[0].nodePort).toBeUndefined();
    await cluster.settled();
    expect(cluster.node("node-1").servedPorts()).toEqual([]);
  });

  it("adds and removes nodes, and leaves nothing listening after stop", async () => {
    cluster = await startCluster({ nodes: 1, addressBase: BASE, firstHost: 41, healthzPort: 0 });
    const c = cluster;
    const svc = c.create({ apiVersion: "v1", kind: "Service", metadata: { name: "np" }, spec: { type: "NodePort", ports: [{ port: 80 }] } });
    const port: number = svc.spec.ports[0].nodePort;
    const added = await c.addNode();
    expect([added.name, added.address]).toEqual(["node-2", `${BASE}.42`]);
    expect(c.get("Node", "node-2", "").status.addresses[0].address).toBe(`${BASE}.42`);
    expect((await fetch(`http://${BASE}.42:${port}/`)).headers.get("x-edgelb-node")).toBe("node-2");

    // kube-proxy reports a node the autoscaler is draining as not eligible.
    const healthz = `http://${BASE}.42:${c.healthzPort}/healthz`;
    c.patch("Node", "node-2", { spec: { taints: [{ key: "ToBeDeletedByClusterAutoscaler", value: "1732600000", effect: "NoSchedule" }] } }, { namespace: "" });
    await c.settled();
    const draining = await fetch(healthz);
    expect(draining.status).toBe(503);
    expect(await draining.json()).toMatchObject({ nodeEligible: false });
    c.patch("Node", "node-2", { spec: { taints: null } }, { namespace: "" });
    await c.settled();
    expect((await fetch(healthz)).status).toBe(200);

    c.setNodeReady("node-2", false);
    expect(c.get("Node", "node-2", "").status.conditions[0].status).toBe("Unknown");

    await c.removeNode("node-2");
    expect(c.tryGet("Node", "node-2", "")).toBeUndefined();
    expect(await refused(`http://${BASE}.42:${port}/`)).toBe(true);

    const url = c.url;
    await c.stop();
    cluster = undefined;
    expect(await refused(`${url}/version`)).toBe(true);
    expect(await refused(`http://${BASE}.41:${port}/`)).toBe(true);
    expect(await refused(`http://${BASE}.41:${c.healthzPort}/healthz`)).toBe(true);
  });

  it("rejects a wrong token always, and no token when anonymous access is off", async () => {
    cluster = await startCluster({ nodes: 0, addressBase: BASE, firstHost: 51, anonymous: false });
    const wrong = await fetch(`${cluster.url}/api/v1/nodes`, { headers: { authorization: "Bearer nope" } });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ kind: "Status", apiVersion: "v1", status: "Failure", reason: "Unauthorized", code: 401 });
    expect((await fetch(`${cluster.url}/api/v1/nodes`)).status).toBe(401);
    expect((await fetch(`${cluster.url}/api/v1/nodes`, { headers: { authorization: `Bearer ${cluster.token}` } })).status).toBe(200);
    expect(cluster.api.requests.map((r) => r.auth)).toEqual(["rejected", "rejected", "bearer"]);
  });
});

describe("lab/cluster/main.ts", () => {
  it("runs a cluster as a process, prints the kubeconfig path, and stops cleanly on SIGTERM", async () => {
    const { spawn } = await import("node:child_process");
    const { readFileSync } = await import("node:fs");
    const child = spawn(process.execPath, ["--import", "tsx", "lab/cluster/main.ts", "--nodes", "2", "--address-base", BASE, "--first-host", "61", "--healthz-port", "0"], {
      cwd: new URL("../..", import.meta.url).pathname,
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    try {
      const line = await waitFor(() => out.split("\n").find((l) => l.startsWith("{")), "the ready line", 15_000);
      const info = JSON.parse(line);
      expect(out.split("\n")[0]).toBe(info.kubeconfig);
      expect(readFileSync(info.kubeconfig, "utf8")).toContain(`server: ${info.api}`);
      expect(info.nodes).toEqual([
        { name: "node-1", address: `${BASE}.61` },
        { name: "node-2", address: `${BASE}.62` },
      ]);
      expect((await fetch(`http://${BASE}.62:${info.healthzPort}/healthz`)).status).toBe(200);
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
      expect(await refused(`${info.api}/version`)).toBe(true);
    } finally {
      child.kill("SIGKILL");
    }
  });
});
