// The simulated controllers' decisions (lab/cluster/workloads/plan.ts) as
// pure functions: rolling update arithmetic, spreading, endpoint conditions.
import { describe, expect, it } from "vitest";
import { admitDeployment, resolveIntOrPercent } from "../../lab/cluster/api/apps.ts";
import type { Obj } from "../../lab/cluster/api/selectors.ts";
import { endpointSliceFor, newReplicaSetFor, planDeployment, planReplicaSet } from "../../lab/cluster/workloads/plan.ts";

const NOW = "2026-01-01T00:00:00Z";

function deployment(replicas: number, surge: unknown, unavailable: unknown, image = "edgelb/echo:1"): Obj {
  const d: Obj = {
    metadata: { name: "web", namespace: "default", uid: "d-uid", generation: 1 },
    spec: {
      replicas,
      selector: { matchLabels: { app: "web" } },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: surge, maxUnavailable: unavailable } },
      template: { metadata: { labels: { app: "web" } }, spec: { containers: [{ name: "echo", image }] } },
    },
  };
  expect(admitDeployment({ op: "create", obj: d })).toEqual([]);
  return d;
}

const withStatus = (rs: Obj, replicas: number, available: number, created = "2026-01-01T00:00:00Z"): Obj => ({
  ...rs,
  metadata: { ...rs.metadata, uid: `${rs.metadata.name}-uid`, creationTimestamp: created },
  spec: { ...rs.spec, replicas },
  status: { replicas, availableReplicas: available, readyReplicas: available },
});

describe("Deployment controller decisions", () => {
  it("rounds maxSurge up and maxUnavailable down, as upstream", () => {
    expect(resolveIntOrPercent("25%", 3, true)).toBe(1);
    expect(resolveIntOrPercent("25%", 3, false)).toBe(0);
    expect(resolveIntOrPercent(2, 3, true)).toBe(2);
  });

  it("a rolling update surges first, then scales the old set down only as new pods become available", () => {
    const oldD = deployment(4, 1, 1, "edgelb/echo:1");
    const oldRs = withStatus(newReplicaSetFor(oldD, [], 4), 4, 4, "2026-01-01T00:00:00Z");
    const d = deployment(4, 1, 1, "edgelb/echo:2");
    // Step 1: the new set is created with one pod (4 + surge 1 = 5 in all).
    const p1 = planDeployment(d, [oldRs], [], NOW);
    expect(p1.create?.spec.replicas).toBe(1);
    expect(p1.create?.metadata.annotations["deployment.kubernetes.io/revision"]).toBe("2");
    // Step 2: the new pod is not available yet: old may lose one (maxUnavailable 1) -> 3.
    const newRs = withStatus(p1.create!, 1, 0, "2026-01-01T00:00:01Z");
    const p2 = planDeployment(d, [oldRs, newRs], [], NOW);
    expect(p2.scale.get(oldRs.metadata.name)).toBe(3);
    expect(p2.scale.has(newRs.metadata.name)).toBe(false); // 3 + 1 + surge: already at 5 with old at 4
    // Step 3: old at 3, new pod available: new grows to 2, old may drop to 2.
    const p3 = planDeployment(d, [withStatus(oldRs, 3, 3), withStatus(newRs, 1, 1)], [], NOW);
    expect(p3.scale.get(newRs.metadata.name)).toBe(2);
    expect(p3.status.conditions.find((c: Obj) => c.type === "Progressing").reason).toBe("ReplicaSetUpdated");
    // Done: old at 0, new at 4 available.
    const done = planDeployment(d, [withStatus(oldRs, 0, 0), withStatus(newRs, 4, 4)], [], NOW);
    expect(done.scale.size).toBe(0);
    expect(done.status).toMatchObject({ replicas: 4, updatedReplicas: 4, availableReplicas: 4 });
    expect(done.status.conditions.find((c: Obj) => c.type === "Progressing").reason).toBe("NewReplicaSetAvailable");
  });

  it("never scales the old set below replicas - maxUnavailable available pods", () => {
    const oldD = deployment(3, "25%", "25%");
    const oldRs = withStatus(newReplicaSetFor(oldD, [], 3), 3, 3);
    const d = deployment(3, "25%", "25%", "edgelb/echo:2");
    const newRs = withStatus(newReplicaSetFor(d, [oldRs], 1), 1, 0, "2026-01-01T00:00:05Z");
    // maxUnavailable 25% of 3 = 0: nothing old goes before the new pod is available.
    expect(planDeployment(d, [oldRs, newRs], [], NOW).scale.size).toBe(0);
  });

  it("scaling a settled Deployment is immediate, and to 0 too", () => {
    const d = deployment(3, 1, 0);
    const rs = withStatus(newReplicaSetFor(d, [], 3), 3, 3);
    d.spec.replicas = 0;
    expect(planDeployment(d, [rs], [], NOW).scale.get(rs.metadata.name)).toBe(0);
  });
});

describe("ReplicaSet controller decisions", () => {
  const rs = withStatus(newReplicaSetFor(deployment(3, 1, 0), [], 3), 3, 0);
  const nodes = ["node-1", "node-2", "node-3"].map((name) => ({ name, schedulable: true }));

  it("spreads new pods over schedulable nodes, fewest pods of the app first", () => {
    expect(planReplicaSet(rs, [], [], nodes).create.sort()).toEqual(["node-1", "node-2", "node-3"]);
    const cordoned = nodes.map((n) => ({ ...n, schedulable: n.name !== "node-2" }));
    expect(planReplicaSet(rs, [], [], cordoned).create.sort()).toEqual(["node-1", "node-1", "node-3"]);
    const none = nodes.map((n) => ({ ...n, schedulable: false }));
    expect(planReplicaSet(rs, [], [], none).create).toEqual(["", "", ""]); // Pending
  });

  it("removes not-ready pods before ready ones", () => {
    const pod = (name: string, node: string, ready: boolean): Obj => ({
      metadata: { name, labels: { app: "web" }, creationTimestamp: NOW },
      spec: { nodeName: node },
      status: { phase: "Running", conditions: [{ type: "Ready", status: ready ? "True" : "False" }] },
    });
    const pods = [pod("a", "node-1", true), pod("b", "node-2", false), pod("c", "node-3", true), pod("d", "node-1", true)];
    expect(planReplicaSet(rs, pods, pods, nodes).delete).toEqual(["b"]);
  });
});

describe("EndpointSlice controller decisions", () => {
  it("ready = ready and not terminating; serving = ready; terminating = being deleted (KEP-1669)", () => {
    const svc = { metadata: { name: "web", namespace: "default", uid: "s" }, spec: { selector: { app: "web" }, ports: [{ name: "http", port: 80, targetPort: "http" }] } };
    const pod = (name: string, ready: boolean, deleting: boolean): Obj => ({
      metadata: { name, namespace: "default", uid: name, labels: { app: "web" }, ...(deleting ? { deletionTimestamp: NOW } : {}) },
      spec: { nodeName: "node-1", containers: [{ name: "echo", ports: [{ name: "http", containerPort: 8080 }] }] },
      status: { phase: "Running", podIP: `10.0.0.${name.length}`, conditions: [{ type: "Ready", status: ready ? "True" : "False" }] },
    });
    const slice = endpointSliceFor(svc, [pod("a", true, false), pod("bb", true, true), pod("ccc", false, false), { ...pod("dddd", true, false), metadata: { name: "dddd", labels: { app: "other" } } }], "web-x");
    expect(slice.ports).toEqual([{ name: "http", port: 8080, protocol: "TCP" }]); // named targetPort resolved
    expect(slice.endpoints.map((e: Obj) => [e.targetRef.name, e.conditions])).toEqual([
      ["a", { ready: true, serving: true, terminating: false }],
      ["bb", { ready: false, serving: true, terminating: true }],
      ["ccc", { ready: false, serving: false, terminating: false }],
    ]);
  });
});
