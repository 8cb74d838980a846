// The pods annotation stands in for a Deployment only where there is none:
// on a Service a Deployment backs it is refused with a warning, pods unchanged.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type SimCluster } from "../../lab/cluster/cluster.ts";
import { waitFor } from "../../lab/cluster/wait.ts";
import { PODS_ANNOTATION, watchKnobs, type Knobs } from "../../lab/demo/knobs.ts";

let cluster: SimCluster;
let knobs: Knobs;
const warnings: string[] = [];

beforeAll(async () => {
  cluster = await startCluster({ nodes: 2, addressBase: "127.24.4", healthzPort: 0, podStartupMs: 50 });
  knobs = watchKnobs(cluster, { info: () => {}, warn: (t) => warnings.push(t) });
});
afterAll(async () => {
  await knobs?.stop();
  await cluster?.stop();
});

describe("sim.edgelb.dev/pods on a Deployment's Service", () => {
  it("is refused with a warning naming kubectl scale, and places no pods", async () => {
    cluster.create({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "api" },
      spec: { replicas: 2, selector: { matchLabels: { app: "api" } }, template: { metadata: { labels: { app: "api" } }, spec: { containers: [{ name: "echo", image: "edgelb/echo:1" }] } } },
    });
    cluster.create({ apiVersion: "v1", kind: "Service", metadata: { name: "api" }, spec: { type: "LoadBalancer", selector: { app: "api" }, ports: [{ port: 80 }] } });
    await waitFor(() => cluster.list("EndpointSlice", "default").some((s) => s.metadata.labels?.["kubernetes.io/service-name"] === "api"), "api's EndpointSlice");
    cluster.patch("Service", "api", { metadata: { annotations: { [PODS_ANNOTATION]: "node-1,node-1,node-1" } } });
    await waitFor(() => warnings.some((w) => w.includes("default/api")), "the warning");
    await knobs.settled();
    expect(warnings.find((w) => w.includes("default/api"))).toBe(
      `service default/api: ${PODS_ANNOTATION} ignored: a Deployment's pods back this Service (kubectl scale deployment … instead)`,
    );
    expect(cluster.list("Pod", "default").filter((p) => p.metadata.labels?.["edgelb.sim/service"])).toEqual([]);
    expect(cluster.list("Pod", "default").filter((p) => p.metadata.labels?.app === "api")).toHaveLength(2);
  });
});
