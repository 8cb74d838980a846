// The lab's Gateway API example: the CRDs, the edgelb GatewayClass, one
// Gateway and two HTTPRoutes — a path split (shop.localhost: /api to one
// Service, the rest to another) and a weighted canary (canary.localhost: 90/10
// between two versions). The backends are NodePort Services (a Gateway backend
// needs a NodePort, not a LoadBalancer) over Deployments of the echo app, so
// every answer names its pod and version and `kubectl logs deploy/app-v2` works. Idempotent, so a restarted lab or a
// test world that already has some of it is fine.
import { gatewayCrds } from "../cluster/api/gateway.ts";
import { echoDeployment } from "./echo-app.ts";
import type { Obj } from "../cluster/api/selectors.ts";
import type { SimCluster } from "../cluster/cluster.ts";

const G = "gateway.networking.k8s.io/v1";

export const GATEWAY_DEMO = {
  gateway: "demo",
  namespace: "default",
  /** hostname → what it shows. */
  routes: {
    "shop.localhost": "path split: /api → shop-api, everything else → shop-web",
    "canary.localhost": "weighted canary: app-v1 90%, app-v2 10%",
  },
  services: ["shop-web", "shop-api", "app-v1", "app-v2"],
  /** Each backend's Deployment: the echo image's tag is the version its pods report (the canary's v1 and v2). */
  images: { "shop-web": "edgelb/echo:1", "shop-api": "edgelb/echo:1", "app-v1": "edgelb/echo:1", "app-v2": "edgelb/echo:2" },
  replicas: 2,
} as const;

function nodePortService(name: string): Obj {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: GATEWAY_DEMO.namespace, labels: { app: name } },
    // Backed by the Deployment of the same name: EndpointSlices follow its pods, and the pods answer.
    spec: { type: "NodePort", selector: { app: name }, ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }] },
  };
}

function httpRoute(name: string, hostname: string, rules: Obj[]): Obj {
  return { apiVersion: G, kind: "HTTPRoute", metadata: { name, namespace: GATEWAY_DEMO.namespace }, spec: { parentRefs: [{ name: GATEWAY_DEMO.gateway }], hostnames: [hostname], rules } };
}

export function gatewayDemoObjects(): Obj[] {
  const ref = (name: string, weight?: number) => ({ name, port: 80, ...(weight !== undefined ? { weight } : {}) });
  return [
    ...gatewayCrds(),
    { apiVersion: G, kind: "GatewayClass", metadata: { name: "edgelb" }, spec: { controllerName: "edgelb.dev/gateway-controller", description: "edgelb: HTTPRoutes matched at the Cloudflare edge" } },
    ...GATEWAY_DEMO.services.map((name) => echoDeployment(name, GATEWAY_DEMO.replicas, GATEWAY_DEMO.images[name], GATEWAY_DEMO.namespace)),
    ...GATEWAY_DEMO.services.map(nodePortService),
    { apiVersion: G, kind: "Gateway", metadata: { name: GATEWAY_DEMO.gateway, namespace: GATEWAY_DEMO.namespace }, spec: { gatewayClassName: "edgelb", listeners: [{ name: "http", port: 80, protocol: "HTTP" }] } },
    httpRoute("shop", "shop.localhost", [
      { matches: [{ path: { type: "PathPrefix", value: "/api" } }], backendRefs: [ref("shop-api")] },
      { backendRefs: [ref("shop-web")] },
    ]),
    httpRoute("canary", "canary.localhost", [{ backendRefs: [ref("app-v1", 90), ref("app-v2", 10)] }]),
  ];
}

/** Creates whatever of the example is missing. */
export function seedGatewayDemo(cluster: SimCluster): void {
  for (const o of gatewayDemoObjects()) {
    if (!cluster.tryGet(o.kind, o.metadata.name, o.metadata.namespace ?? "")) cluster.create(o);
  }
}
