import { describe, expect, it } from "vitest";
import type { V1Service } from "@kubernetes/client-node";
import { planStatus } from "./plan.ts";
describe("rv-ops: a class-less Service under --only-class", () => {
  it("is not patched (its hostname entry belongs to whoever serves class-less Services)", () => {
    const svc: V1Service = {
      metadata: { namespace: "team-a", name: "web", uid: "u1", resourceVersion: "7" },
      spec: { type: "LoadBalancer", ports: [{ port: 80, nodePort: 31000 }] },
      status: { loadBalancer: { ingress: [{ hostname: "web.team-a.example.com" }] } },
    };
    const plan = planStatus({
      services: [svc],
      verdicts: new Map([["team-a/web", { kind: "ignored", reason: "has no loadBalancerClass and --only-class is set" }]]),
      published: { generation: 3, nodes: [], services: [] },
      owned: new Map(),
    });
    expect(plan.patches).toEqual([]);
  });
});
