// Gateway API backends get the no-endpoint hold of LoadBalancer Services (model/no-endpoint-hold.ts):
// losing a backend Service's last endpoint is published only once it has lasted the hold (doubling
// for a flapping one), getting one back at once.
import { loadAllYaml, type V1EndpointSlice, type V1Node, type V1Service } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { GatewayBackend } from "../../worker/snapshot/gateway.ts";
import { computeTopology, type HealthView } from "../model/desired.ts";
import { NO_ENDPOINT_HOLD_MS, type NoEndpointMemo } from "../model/no-endpoint-hold.ts";
import { gatewayForSnapshot, type GatewayCaches } from "./index.ts";

const docs = loadAllYaml(`
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: { name: edgelb, generation: 1 }
spec: { controllerName: edgelb.dev/gateway-controller }
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: edge, namespace: apps, generation: 1 }
spec:
  gatewayClassName: edgelb
  listeners: [{ name: http, port: 80, protocol: HTTP, allowedRoutes: { namespaces: { from: Same } } }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: split, namespace: apps, generation: 1, creationTimestamp: "2026-01-01T00:00:00Z" }
spec:
  parentRefs: [{ name: edge }]
  hostnames: [app.example.com]
  rules:
    - matches: [{ path: { type: PathPrefix, value: /api } }]
      backendRefs: [{ name: api, port: 80 }]
    - backendRefs: [{ name: shop, port: 80 }]
---
apiVersion: v1
kind: Service
metadata: { name: api, namespace: apps }
spec: { type: NodePort, selector: { app: api }, ports: [{ port: 80, nodePort: 31101, protocol: TCP }] }
---
apiVersion: v1
kind: Service
metadata: { name: shop, namespace: apps }
spec: { type: NodePort, externalTrafficPolicy: Local, healthCheckNodePort: 32500, selector: { app: shop }, ports: [{ port: 80, nodePort: 31102, protocol: TCP }] }
---
apiVersion: v1
kind: Node
metadata: { name: node-1 }
status: { addresses: [{ type: InternalIP, address: 10.0.0.1 }] }
---
apiVersion: v1
kind: Node
metadata: { name: node-2 }
status: { addresses: [{ type: InternalIP, address: 10.0.0.2 }] }
`) as { kind: string; [k: string]: any }[];
const of = (kind: string) => docs.filter((d) => d.kind === kind) as any[];
const caches: GatewayCaches = { gatewayClasses: of("GatewayClass"), gateways: of("Gateway"), httpRoutes: of("HTTPRoute"), referenceGrants: [] } as unknown as GatewayCaches;
const slice = (service: string, node: string): V1EndpointSlice =>
  ({
    addressType: "IPv4",
    metadata: { name: `${service}-1`, namespace: "apps", labels: { "kubernetes.io/service-name": service } },
    endpoints: [{ addresses: ["10.244.0.5"], nodeName: node, conditions: { ready: true }, targetRef: { kind: "Pod", name: `${service}-1`, uid: `${service}-uid` } }],
  }) as V1EndpointSlice;
const healthy: HealthView = { node: () => true, local: () => true };

/** One evaluation at `now` with these slices: the published backends, and when to evaluate again. */
function evaluate(memo: NoEndpointMemo, now: number, slices: V1EndpointSlice[]) {
  const state = { nodes: of("Node") as V1Node[], services: of("Service") as V1Service[], endpointSlices: slices, endpointSlicesSynced: true, gateway: caches };
  const topo = computeTopology(state, { cluster: "home", loadBalancerClass: "edgelb.dev/worker", onlyClass: false, addressPreference: ["InternalIP"] });
  const g = gatewayForSnapshot(state, topo, healthy, undefined, { memo, now, holdMs: NO_ENDPOINT_HOLD_MS });
  const backend = (name: string) => (g.resolution.section.backends as GatewayBackend[]).find((b) => b.name === name)!;
  return { api: backend("api").endpoints, shop: backend("shop").endpoints, holdUntil: g.holdUntil };
}

describe("no-endpoint hold for Gateway backends", () => {
  it("keeps a backend's last endpoints for the hold after it loses them, then publishes none; getting one back is at once", () => {
    const memo: NoEndpointMemo = new Map();
    const up = [slice("api", "node-1"), slice("shop", "node-2")];
    const shopOn2 = [{ node: "node-2", weight: 1, healthy: true }];
    expect(evaluate(memo, 0, up)).toEqual({ api: undefined, shop: shopOn2, holdUntil: undefined });

    // Both scaled to 0: the Cluster backend keeps every node, the Local one its node, for the hold.
    const t = 60_000;
    expect(evaluate(memo, t, [])).toEqual({ api: undefined, shop: shopOn2, holdUntil: t + NO_ENDPOINT_HOLD_MS });
    expect(evaluate(memo, t + NO_ENDPOINT_HOLD_MS - 1, [])).toMatchObject({ api: undefined, shop: shopOn2 });
    // The hold over: no endpoint anywhere, the edge answers 503 for their share.
    expect(evaluate(memo, t + NO_ENDPOINT_HOLD_MS, [])).toEqual({ api: [], shop: [], holdUntil: undefined });
    // Back: published at once.
    expect(evaluate(memo, t + NO_ENDPOINT_HOLD_MS + 1, up)).toEqual({ api: undefined, shop: shopOn2, holdUntil: undefined });
  });

  it("a backend that keeps losing its last endpoint gets a doubled hold, like a LoadBalancer Service", () => {
    const memo: NoEndpointMemo = new Map();
    const up = [slice("api", "node-1"), slice("shop", "node-2")];
    evaluate(memo, 0, up);
    expect(evaluate(memo, 1_000, []).holdUntil).toBe(1_000 + NO_ENDPOINT_HOLD_MS);
    evaluate(memo, 5_000, up);
    expect(evaluate(memo, 30_000, []).holdUntil).toBe(30_000 + 2 * NO_ENDPOINT_HOLD_MS);
  });

  it("a backend first seen without endpoints (new, or after an agent restart) is published as it is", () => {
    expect(evaluate(new Map(), 0, [])).toEqual({ api: [], shop: [], holdUntil: undefined });
  });
});

describe("fail-open of Local Gateway backends (rv-ops s6 4)", () => {
  const run = (local: HealthView["local"]) => {
    const state = { nodes: of("Node") as V1Node[], services: of("Service") as V1Service[], endpointSlices: [slice("api", "node-1"), slice("shop", "node-2")], endpointSlicesSynced: true, gateway: caches };
    const topo = computeTopology(state, { cluster: "home", loadBalancerClass: "edgelb.dev/worker", onlyClass: false, addressPreference: ["InternalIP"] });
    return gatewayForSnapshot(state, topo, { node: () => true, local }, undefined, { memo: new Map(), now: 0, holdMs: NO_ENDPOINT_HOLD_MS });
  };
  it("names a Local backend whose every endpoint node failed its healthCheckNodePort, published anyway", () => {
    const g = run(() => false);
    expect(g.failOpenBackends).toEqual(["apps/shop"]);
    expect((g.resolution.section.backends as GatewayBackend[]).find((b) => b.name === "shop")!.endpoints).toEqual([{ node: "node-2", weight: 1, healthy: true }]);
  });
  it("names none while a check has no answer yet, or when one passes", () => {
    expect(run(() => undefined).failOpenBackends).toEqual([]);
    expect(run(() => true).failOpenBackends).toEqual([]);
  });
});
