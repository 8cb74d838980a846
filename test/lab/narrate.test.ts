// The demo's one-line explanations of what the simulated controllers did.
import { describe, expect, it } from "vitest";
import { narrate } from "../../lab/demo/narrate.ts";

const pod = (extra: Record<string, unknown> = {}, ready = false) => ({
  metadata: { name: "hello-abc", namespace: "default", ...extra },
  spec: { nodeName: "node-2" },
  status: { conditions: [{ type: "Ready", status: ready ? "True" : "False" }] },
});
const deploy = (replicas: number, status: Record<string, unknown>, restartedAt?: string) => ({
  metadata: { name: "hello", namespace: "default" },
  spec: { replicas, template: { metadata: restartedAt ? { annotations: { "kubectl.kubernetes.io/restartedAt": restartedAt } } : {} } },
  status,
});

describe("demo narration", () => {
  it("says when a pod is ready, terminating (still serving) and gone", () => {
    expect(narrate({ kind: "Pod", type: "MODIFIED", object: pod({}, true), previous: pod() })).toBe("pod default/hello-abc on node-2 is ready: its endpoint is ready");
    expect(narrate({ kind: "Pod", type: "MODIFIED", object: pod({ deletionTimestamp: "x" }, true), previous: pod({}, true) })).toMatch(/terminating: its endpoint is serving but not ready/);
    expect(narrate({ kind: "Pod", type: "DELETED", object: pod() })).toBe("pod default/hello-abc exited and is gone");
    expect(narrate({ kind: "Pod", type: "MODIFIED", object: pod({}, true), previous: pod({}, true) })).toBeUndefined();
  });

  it("says when a Deployment is scaled, restarted, rolling and rolled out", () => {
    const done = { availableReplicas: 3, updatedReplicas: 3, conditions: [{ type: "Progressing", reason: "NewReplicaSetAvailable" }] };
    const rolling = { availableReplicas: 3, updatedReplicas: 1, conditions: [{ type: "Progressing", reason: "ReplicaSetUpdated" }] };
    expect(narrate({ kind: "Deployment", type: "MODIFIED", object: deploy(0, done), previous: deploy(3, done) })).toBe("deployment default/hello scaled to 0");
    expect(narrate({ kind: "Deployment", type: "MODIFIED", object: deploy(3, done, "t"), previous: deploy(3, done) })).toMatch(/restarted: a new ReplicaSet/);
    expect(narrate({ kind: "Deployment", type: "MODIFIED", object: deploy(3, rolling, "t"), previous: deploy(3, done, "t") })).toBe("deployment default/hello rolling: 3/3 available, 1 updated");
    expect(narrate({ kind: "Deployment", type: "MODIFIED", object: deploy(3, done, "t"), previous: deploy(3, rolling, "t") })).toBe("deployment default/hello rolled out: 3/3 available, 3 updated");
  });
});
