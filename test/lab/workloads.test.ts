// Deployments on the simulated cluster, driven with the real kubectl as a
// course reader would: create, expose, scale, logs, rollout restart; and the
// NodePorts answering the way kube-proxy does for the pods behind them.
import http from "node:http";
import net from "node:net";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type SimCluster } from "../../lab/cluster/cluster.ts";
import type { Obj } from "../../lab/cluster/api/selectors.ts";
import { DEPLOYMENTS, ENDPOINT_SLICES, PODS } from "../../lab/cluster/api/resources.ts";
import { waitFor } from "../../lab/cluster/wait.ts";
import { haveKubectl, kubectlFor, type Kubectl } from "./kubectl-env.ts";

let cluster: SimCluster;
let kubectl: Kubectl;

beforeAll(async () => {
  cluster = await startCluster({ nodes: 3, addressBase: "127.24.3", healthzPort: 0, podStartupMs: 200, podDrainMs: 800 });
  kubectl = kubectlFor(cluster.kubeconfigPath);
});
afterAll(async () => {
  kubectl?.cleanup();
  await cluster?.stop();
});

/** One HTTP GET to a node's NodePort: the answer, or the connection error's code. */
function get(address: string, port: number, path = "/", headers: Record<string, string> = {}): Promise<{ status: number; body: any } | { error: string }> {
  return new Promise((resolve) => {
    const req = http.get({ host: address, port, path, headers, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text.startsWith("{") ? JSON.parse(text) : text }));
    });
    req.on("error", (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
  });
}

/** One connect(): "connected", the error code, or "timeout" when nothing answered within `ms` (a dropped SYN). */
function connectOutcome(host: string, port: number, ms: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const timer = setTimeout(() => (s.destroy(), resolve("timeout")), ms);
    s.once("connect", () => (clearTimeout(timer), s.destroy(), resolve("connected")));
    s.once("error", (e: NodeJS.ErrnoException) => (clearTimeout(timer), resolve(e.code ?? e.message)));
  });
}

const nodePortOf = (svc: string) => Number(cluster.get("Service", svc).spec.ports[0].nodePort);
const livePods = (app: string) => cluster.list("Pod", "default").filter((p) => p.metadata.labels?.app === app && !p.metadata.deletionTimestamp);

describe.skipIf(!haveKubectl)("Deployments with kubectl", () => {
  it("create deployment spreads replicas over the nodes; expose --type=LoadBalancer takes its selector and gets a NodePort; pods echo and log what they served", async () => {
    await kubectl("create", "deployment", "hello", "--image=edgelb/echo:1", "--replicas=3", "--port=8080");
    expect(await kubectl("rollout", "status", "deployment/hello", "--timeout=30s")).toContain('deployment "hello" successfully rolled out');
    expect(livePods("hello").map((p) => p.spec.nodeName).sort()).toEqual(["node-1", "node-2", "node-3"]);
    const table = await kubectl("get", "deployment", "hello");
    expect(table).toMatch(/^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE\nhello\s+3\/3\s+3\s+3\s+/);

    expect(await kubectl("expose", "deployment", "hello", "--type=LoadBalancer", "--port=80", "--target-port=8080")).toContain("service/hello exposed");
    const svc = cluster.get("Service", "hello");
    expect(svc.spec.selector).toEqual({ app: "hello" });
    expect(svc.spec.ports[0]).toMatchObject({ port: 80, targetPort: 8080 });
    const port = nodePortOf("hello");
    expect(port).toBeGreaterThanOrEqual(30000);

    // Cluster policy: any node forwards to any pod; the echo says which.
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const r = await get("127.24.3.11", port, `/from-test-${i}`, { "x-course": "lb" });
      if (!("status" in r)) throw new Error(r.error);
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ namespace: "default", via: "node-1", version: "1", path: `/from-test-${i}` });
      expect(r.body.headers["x-course"]).toBe("lb");
      expect(livePods("hello").find((p) => p.metadata.name === r.body.pod)?.spec.nodeName).toBe(r.body.node);
      seen.add(r.body.pod);
    }
    expect(seen.size).toBe(3);

    const pod = [...seen][0]!;
    const log = await kubectl("logs", pod);
    expect(log).toContain("echo 1 (image edgelb/echo:1) started on");
    expect(log).toMatch(/GET \/from-test-\d 200 host=127\.24\.3\.11:\d+ via=node-1/);
    expect(await kubectl("logs", "deploy/hello")).toMatch(/GET \/from-test-\d 200/);
  }, 90_000);

  it("a NodePort refuses connections when no endpoint serves, and with externalTrafficPolicy: Local drops them (no answer) on nodes without a local one", async () => {
    const port = nodePortOf("hello");
    await kubectl("scale", "deployment", "hello", "--replicas=0");
    await waitFor(() => cluster.list("Pod", "default").filter((p) => p.metadata.labels?.app === "hello").length === 0, "hello's pods to go", 15_000);
    await cluster.settled();
    for (const n of ["11", "12", "13"]) expect(await get(`127.24.3.${n}`, port)).toEqual({ error: "ECONNREFUSED" });

    await kubectl("scale", "deployment", "hello", "--replicas=1");
    await kubectl("rollout", "status", "deployment/hello", "--timeout=30s");
    await kubectl("patch", "service", "hello", "-p", '{"spec":{"externalTrafficPolicy":"Local"}}');
    await cluster.settled();
    const home = livePods("hello")[0]!.spec.nodeName as string;
    for (const n of cluster.nodes) {
      if (n.name === home) expect(await get(n.address, port)).toMatchObject({ status: 200, body: { node: home, via: home } });
      // kube-proxy's DROP rule ("has no local endpoints"): a connect() gets no answer at all.
      else expect(await connectOutcome(n.address, port, 700), n.name).toBe("timeout");
    }
    // The last pod leaves: no endpoint anywhere, every node refuses again (REJECT).
    await kubectl("scale", "deployment", "hello", "--replicas=0");
    await waitFor(() => cluster.list("Pod", "default").filter((p) => p.metadata.labels?.app === "hello").length === 0, "hello's pods to go", 15_000);
    await cluster.settled();
    for (const n of cluster.nodes) expect(await connectOutcome(n.address, port, 2_000), n.name).toBe("ECONNREFUSED");
    await kubectl("scale", "deployment", "hello", "--replicas=1");
    await kubectl("rollout", "status", "deployment/hello", "--timeout=30s");
  }, 90_000);

  it("a LoadBalancer Service whose selector matches no pod is refused on every node; only the pods knob keeps the stand-in app", async () => {
    const file = join(kubectl.dir, "nomatch.yaml");
    writeFileSync(file, "apiVersion: v1\nkind: Service\nmetadata: {name: nomatch}\nspec:\n  type: LoadBalancer\n  selector: {app: helo}\n  ports: [{port: 80, targetPort: 8080}]\n");
    expect(await kubectl("apply", "-f", file)).toContain("service/nomatch created");
    await cluster.settled();
    const port = nodePortOf("nomatch");
    for (const n of ["11", "12", "13"]) expect(await get(`127.24.3.${n}`, port), `node 127.24.3.${n}`).toEqual({ error: "ECONNREFUSED" });
    // Its EndpointSlice exists and is empty, as the endpoint controller writes it.
    const slices = cluster.list("EndpointSlice", "default").filter((sl) => sl.metadata.labels?.["kubernetes.io/service-name"] === "nomatch");
    expect(slices.map((sl) => sl.endpoints ?? [])).toEqual([[]]);

    // Opting in with the demo's pods knob keeps the stand-in app on every node.
    cluster.create({ apiVersion: "v1", kind: "Service", metadata: { name: "standin", annotations: { "sim.edgelb.dev/pods": "" } }, spec: { type: "LoadBalancer", selector: { app: "nothing" }, ports: [{ port: 80 }] } });
    await cluster.settled();
    expect(await get("127.24.3.12", nodePortOf("standin"))).toMatchObject({ status: 200, body: { node: "node-2" } });
  }, 90_000);

  it("kubectl create service loadbalancer|nodeport|clusterip works (protobuf bodies for v1/Service)", async () => {
    expect(await kubectl("create", "service", "loadbalancer", "lb1", "--tcp=80:8080")).toContain("service/lb1 created");
    expect(cluster.get("Service", "lb1").spec).toMatchObject({ type: "LoadBalancer", selector: { app: "lb1" }, ports: [{ name: "80-8080", port: 80, targetPort: 8080, protocol: "TCP" }] });
    expect(nodePortOf("lb1")).toBeGreaterThanOrEqual(30000);
    expect(await kubectl("create", "service", "nodeport", "np1", "--tcp=81:8080", "--node-port=30999")).toContain("service/np1 created");
    expect(cluster.get("Service", "np1").spec).toMatchObject({ type: "NodePort", ports: [{ port: 81, targetPort: 8080, nodePort: 30999 }] });
    expect(await kubectl("create", "service", "clusterip", "cip1", "--tcp=82:8080")).toContain("service/cip1 created");
    expect(cluster.get("Service", "cip1").spec).toMatchObject({ type: "ClusterIP", ports: [{ port: 82, targetPort: 8080 }] });
  }, 60_000);

  it("rollout restart keeps within maxSurge/maxUnavailable, old pods serve while terminating, no request fails, rollout status completes", async () => {
    const file = join(kubectl.dir, "roll.yaml");
    writeFileSync(
      file,
      [
        "apiVersion: apps/v1",
        "kind: Deployment",
        "metadata: {name: roll}",
        "spec:",
        "  replicas: 4",
        "  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 1}}",
        "  selector: {matchLabels: {app: roll}}",
        "  template:",
        "    metadata: {labels: {app: roll}}",
        "    spec: {containers: [{name: echo, image: 'edgelb/echo:2'}]}",
        "---",
        "apiVersion: v1",
        "kind: Service",
        "metadata: {name: roll}",
        "spec: {type: LoadBalancer, selector: {app: roll}, ports: [{port: 80, targetPort: 8080}]}",
        "",
      ].join("\n"),
    );
    await kubectl("apply", "-f", file);
    await kubectl("rollout", "status", "deployment/roll", "--timeout=30s");
    await cluster.settled();
    const before = new Set(livePods("roll").map((p) => p.metadata.name));
    expect(before.size).toBe(4);

    // Watch every change: pods never exceed replicas + maxSurge, ready ones never drop below replicas - maxUnavailable.
    let maxPods = 0;
    let minReady = Infinity;
    let servingWhileTerminating = 0;
    const roll = (p: Obj) => p.metadata.labels?.app === "roll";
    const unsubscribe = cluster.store.subscribe((e) => {
      if (e.resource === PODS) {
        const pods = cluster.store.list(PODS, "default").items.filter((p) => roll(p) && !p.metadata.deletionTimestamp);
        maxPods = Math.max(maxPods, pods.length);
        minReady = Math.min(minReady, pods.filter((p) => (p.status?.conditions ?? []).some((c: Obj) => c.type === "Ready" && c.status === "True")).length);
      }
      if (e.resource === ENDPOINT_SLICES && e.object.metadata.labels?.["kubernetes.io/service-name"] === "roll") {
        servingWhileTerminating = Math.max(servingWhileTerminating, (e.object.endpoints ?? []).filter((x: Obj) => x.conditions.terminating && x.conditions.serving && !x.conditions.ready).length);
      }
    });
    const port = nodePortOf("roll");
    let stop = false;
    const failures: string[] = [];
    let served = 0;
    const load = (async () => {
      while (!stop) {
        const r = await get(`127.24.3.1${1 + (served % 3)}`, port);
        if ("status" in r && r.status === 200) served++;
        else failures.push(JSON.stringify(r));
      }
    })();
    try {
      await waitFor(() => served >= 5, "traffic before the rollout", 10_000);
      expect(await kubectl("rollout", "restart", "deployment/roll")).toContain("deployment.apps/roll restarted");
      const status = await kubectl("rollout", "status", "deployment/roll", "--timeout=60s");
      expect(status).toContain('deployment "roll" successfully rolled out');
      await waitFor(() => cluster.list("Pod", "default").filter(roll).length === 4, "the old pods to finish draining", 15_000);
    } finally {
      stop = true;
      await load;
      unsubscribe();
    }
    expect(failures).toEqual([]);
    expect(served).toBeGreaterThan(5);
    expect(maxPods).toBeLessThanOrEqual(5);
    expect(minReady).toBeGreaterThanOrEqual(3);
    expect(servingWhileTerminating).toBeGreaterThan(0);
    const after = livePods("roll");
    expect(after.some((p) => before.has(p.metadata.name))).toBe(false);
    expect(after.every((p) => p.metadata.annotations?.["kubectl.kubernetes.io/restartedAt"])).toBe(true);
    const d = cluster.store.get(DEPLOYMENTS, "default", "roll");
    expect(d.metadata.annotations["deployment.kubernetes.io/revision"]).toBe("2");
    const sets = await kubectl("get", "rs", "-l", "app=roll", "-o", "jsonpath={range .items[*]}{.metadata.name}={.spec.replicas} {end}");
    expect(sets.trim().split(" ").map((x) => Number(x.split("=")[1])).sort()).toEqual([0, 4]);
    const original = sets.trim().split(" ").find((x) => x.endsWith("=0"))!.split("=")[0]!;

    // rollout undo brings the first template back: its ReplicaSet scales up again (no third one), as revision 3.
    expect(await kubectl("rollout", "undo", "deployment/roll")).toContain("deployment.apps/roll rolled back");
    await kubectl("rollout", "status", "deployment/roll", "--timeout=60s");
    const undone = await kubectl("get", "rs", "-l", "app=roll", "-o", "jsonpath={range .items[*]}{.metadata.name}={.spec.replicas} {end}");
    const after2 = undone.trim().split(" ");
    expect(after2).toHaveLength(2);
    expect(after2).toContain(`${original}=4`);
    expect(after2.filter((x) => x.endsWith("=0"))).toHaveLength(1);
    expect(cluster.get("ReplicaSet", original).metadata.annotations["deployment.kubernetes.io/revision"]).toBe("3");
  }, 120_000);

  it("refuses more replicas than the lab can run, keeping the Deployment as it was; a removed node's pods are replaced elsewhere", async () => {
    expect(await kubectl.fails("scale", "deployment", "roll", "--replicas=1000000")).toContain("the simulated cluster runs at most 500 replicas per workload");
    expect(cluster.get("Deployment", "roll").spec.replicas).toBe(4);

    const onNode3 = livePods("roll").filter((p) => p.spec.nodeName === "node-3").map((p) => p.metadata.name);
    expect(onNode3.length).toBeGreaterThan(0);
    await cluster.removeNode("node-3");
    await waitFor(() => livePods("roll").length === 4 && livePods("roll").every((p) => p.spec.nodeName !== "node-3" && !onNode3.includes(p.metadata.name)), "roll's pods to be replaced on node-1 and node-2", 15_000);
    await kubectl("rollout", "status", "deployment/roll", "--timeout=30s");
  }, 60_000);
});
