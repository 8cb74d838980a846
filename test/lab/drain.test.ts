// rv-ops 5: `kubectl drain` (the machine's real kubectl) against the simulated cluster. kubectl finds
// pods/eviction in discovery, POSTs a policy/v1 Eviction (protobuf) per pod, and waits for each pod
// to be gone; the pods terminate with their grace period and their ReplicaSet recreates them on the
// nodes still schedulable.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Obj } from "../../lab/cluster/api/selectors.ts";
import { startCluster, type SimCluster } from "../../lab/cluster/cluster.ts";
import { waitFor } from "../../lab/cluster/wait.ts";
import { haveKubectl, kubectlFor, type Kubectl } from "./kubectl-env.ts";

if (!haveKubectl) console.warn("kubectl drain test skipped: /usr/bin/kubectl is not installed on this machine");

let cluster: SimCluster;
let kubectl: Kubectl;
// ops' own loopback range (127.106.0.0/16).
beforeAll(async () => {
  cluster = await startCluster({ nodes: 3, addressBase: "127.106.3", healthzPort: 0, podStartupMs: 100, podDrainMs: 300 });
  kubectl = kubectlFor(cluster.kubeconfigPath);
});
afterAll(async () => {
  kubectl?.cleanup();
  await cluster?.stop();
});

const ready = (p: Obj) => !p.metadata.deletionTimestamp && p.status?.conditions?.some((c: Obj) => c.type === "Ready" && c.status === "True");
const webPods = () => cluster.list("Pod", "default").filter((p) => p.metadata.labels?.app === "web");

describe.runIf(haveKubectl)("kubectl drain", () => {
  it("lists pods/eviction in discovery, and an eviction that names another pod or is not a POST is refused", async () => {
    const v1 = JSON.parse(await kubectl("get", "--raw", "/api/v1")) as { resources: Obj[] };
    expect(v1.resources.find((r) => r.name === "pods/eviction")).toMatchObject({ group: "policy", version: "v1", kind: "Eviction", verbs: ["create"] });
    cluster.create({ apiVersion: "v1", kind: "Pod", metadata: { name: "lonely", namespace: "default" }, spec: { containers: [{ name: "c", image: "x" }] } });
    const url = `${cluster.api.url}/api/v1/namespaces/default/pods/lonely/eviction`;
    const headers = { authorization: `Bearer ${cluster.token}`, "content-type": "application/json" };
    const wrong = await fetch(url, { method: "POST", headers, body: JSON.stringify({ apiVersion: "policy/v1", kind: "Eviction", metadata: { name: "other" } }) });
    expect(wrong.status).toBe(400);
    expect(((await wrong.json()) as Obj).message).toMatch(/name in URL does not match/);
    expect((await fetch(url, { headers })).status).toBe(405);
    const badGrace = await fetch(url, { method: "POST", headers, body: JSON.stringify({ kind: "Eviction", metadata: { name: "lonely" }, deleteOptions: { gracePeriodSeconds: 1e300 } }) });
    expect(badGrace.status).toBe(400);
    expect(((await badGrace.json()) as Obj).message).toMatch(/gracePeriodSeconds.*whole number/);
    expect(cluster.get("Pod", "lonely", "default").metadata.deletionTimestamp).toBeUndefined();
    const evicted = await fetch(url, { method: "POST", headers, body: JSON.stringify({ apiVersion: "policy/v1", kind: "Eviction", metadata: { name: "lonely" } }) });
    expect(evicted.status).toBe(201);
    expect(await evicted.json()).toMatchObject({ kind: "Status", status: "Success" });
    // Not bound to a node: nothing to drain, it is gone at once.
    await waitFor(() => cluster.list("Pod", "default").every((p) => p.metadata.name !== "lonely"), "the evicted pod gone");
  });

  it("kubectl drain node-1 --ignore-daemonsets exits 0 and node-1's pods are recreated on the other nodes", async () => {
    cluster.create({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "web", namespace: "default" },
      spec: {
        replicas: 3,
        selector: { matchLabels: { app: "web" } },
        template: { metadata: { labels: { app: "web" } }, spec: { terminationGracePeriodSeconds: 5, containers: [{ name: "echo", image: "edgelb/echo:1", ports: [{ containerPort: 8080 }] }] } },
      },
    });
    await waitFor(() => webPods().filter(ready).length === 3, "three ready web pods", 20_000);
    const onNode1 = webPods().filter((p) => p.spec.nodeName === "node-1").map((p) => p.metadata.name as string);
    expect(onNode1.length).toBeGreaterThan(0);

    const { stdout } = await kubectl.both("drain", "node-1", "--ignore-daemonsets", "--timeout=60s");
    for (const pod of onNode1) expect(stdout).toContain(`pod/${pod} evicted`);
    expect(stdout).toContain("node/node-1 drained");

    expect(cluster.get("Node", "node-1").spec.unschedulable).toBe(true);
    await waitFor(() => webPods().filter(ready).length === 3, "three ready web pods again", 20_000);
    const pods = webPods();
    expect(pods.some((p) => p.spec.nodeName === "node-1")).toBe(false);
    expect(pods.some((p) => onNode1.includes(p.metadata.name))).toBe(false);

    await kubectl("uncordon", "node-1");
    expect(cluster.get("Node", "node-1").spec.unschedulable).toBeFalsy();
  }, 90_000);
});
