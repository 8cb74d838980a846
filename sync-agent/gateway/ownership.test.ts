// Reviewer finding 1 (issue 17): a hostname belongs to one Gateway, and the
// namespace hostname rules of LoadBalancer Services hold for Gateways too.
import { describe, expect, it } from "vitest";
import { resolveFixture } from "./golden.test.ts";
import { resolveGateway } from "./resolve.ts";
import { loadAllYaml } from "@kubernetes/client-node";

const CLASS = `
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: edgelb, generation: 1}
spec: {controllerName: edgelb.dev/gateway-controller}
`;
const gateway = (ns: string, created: string, hostname?: string) => `
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: ${ns}, generation: 1, creationTimestamp: "${created}"}
spec:
  gatewayClassName: edgelb
  listeners: [{name: http, port: 80, protocol: HTTP${hostname ? `, hostname: ${hostname}` : ""}}]
`;
const service = (ns: string, name: string, nodePort: number) => `
---
apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${ns}}
spec: {type: NodePort, ports: [{port: 80, nodePort: ${nodePort}, protocol: TCP}]}
`;
const route = (ns: string, name: string, created: string, prefix: string, backend: string, hostnames?: string[]) => `
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ${name}, namespace: ${ns}, generation: 1, creationTimestamp: "${created}"}
spec:
  parentRefs: [{name: gw}]
  ${hostnames ? `hostnames: [${hostnames.join(", ")}]` : ""}
  rules: [{matches: [{path: {type: PathPrefix, value: ${prefix}}}], backendRefs: [{name: ${backend}, port: 80}]}]
`;

const servedOn = (r: ReturnType<typeof resolveFixture>, host: string) => r.section.routes.filter((a) => a.hostnames.includes(host)).map((a) => `${a.namespace}/${a.name}`);
const cond = <C extends { type: string }>(list: C[] | undefined, type: string) => list?.find((c) => c.type === type);

describe("hostname ownership across Gateways (reviewer finding 1)", () => {
  it("another tenant's Gateway cannot take paths on a hostname an older Gateway holds", () => {
    const r = resolveFixture(
      CLASS +
        gateway("team-a", "2026-01-01T00:00:00Z", "shop.example.com") +
        gateway("team-b", "2026-01-01T12:00:00Z", "shop.example.com") +
        service("team-a", "shop", 30080) +
        service("team-b", "evil", 30099) +
        route("team-a", "shop", "2026-01-02T00:00:00Z", "/", "shop") +
        route("team-b", "steal", "2026-01-03T00:00:00Z", "/checkout", "evil"),
    );
    expect(servedOn(r, "shop.example.com")).toEqual(["team-a/shop"]);
    const losing = r.gateways.get("team-b/gw")!.listeners![0]!;
    expect(cond(losing.conditions, "Conflicted")).toMatchObject({ status: "True", reason: "HostnameConflict" });
    expect(cond(losing.conditions, "Programmed")).toMatchObject({ status: "False" });
    expect(cond(r.gateways.get("team-a/gw")!.listeners![0]!.conditions, "Conflicted")).toMatchObject({ status: "False" });
    expect(cond(r.routes.get("team-b/steal")![0]!.conditions, "Accepted")).toMatchObject({ status: "False" });
    expect(cond(r.routes.get("team-a/shop")![0]!.conditions, "Accepted")).toMatchObject({ status: "True" });
  });

  it("a route hostname under hostname-less listeners of two Gateways goes to the older Gateway only", () => {
    const r = resolveFixture(
      CLASS +
        gateway("team-a", "2026-01-01T00:00:00Z") +
        gateway("team-b", "2026-01-01T12:00:00Z") +
        service("team-a", "shop", 30080) +
        service("team-b", "evil", 30099) +
        route("team-a", "shop", "2026-01-02T00:00:00Z", "/", "shop", ["shop.example.com"]) +
        route("team-b", "steal", "2026-01-03T00:00:00Z", "/checkout", "evil", ["shop.example.com", "evil.example.com"]),
    );
    expect(servedOn(r, "shop.example.com")).toEqual(["team-a/shop"]);
    expect(servedOn(r, "evil.example.com")).toEqual(["team-b/steal"]);
    expect(cond(r.routes.get("team-b/steal")![0]!.conditions, "Accepted")!.message).toContain("shop.example.com belongs to Gateway team-a/gw");
  });

  it("a namespace may not claim through a Gateway a hostname it may not claim for a Service", () => {
    const docs = loadAllYaml(
      CLASS +
        gateway("team-b", "2026-01-01T00:00:00Z", "shop.example.com") +
        service("team-b", "evil", 30099) +
        route("team-b", "steal", "2026-01-03T00:00:00Z", "/", "evil", ["other.example.com"]) +
        `
---
apiVersion: v1
kind: Namespace
metadata: {name: team-b, annotations: {edgelb.dev/allowed-hostnames: "*.team-b.example.com"}}
`,
    ).filter(Boolean) as any[];
    const of = (k: string) => docs.filter((d) => d.kind === k);
    const r = resolveGateway({ gatewayClasses: of("GatewayClass"), gateways: of("Gateway"), httpRoutes: of("HTTPRoute"), referenceGrants: [], services: of("Service"), namespaces: of("Namespace") });
    expect(r.section.routes).toEqual([]);
    expect(cond(r.gateways.get("team-b/gw")!.listeners![0]!.conditions, "Programmed")).toMatchObject({ status: "False" });
    // --allowed-hostnames, through a Gateway with no listener hostname.
    const open = of("Gateway").map((g) => ({ ...g, spec: { ...g.spec, listeners: [{ name: "http", port: 80, protocol: "HTTP" }] } }));
    const r2 = resolveGateway({ gatewayClasses: of("GatewayClass"), gateways: open, httpRoutes: of("HTTPRoute"), referenceGrants: [], services: of("Service"), namespaces: [], hostnamePolicy: { allowed: ["*.example.org"] } });
    expect(r2.section.routes).toEqual([]);
    expect(cond(r2.routes.get("team-b/steal")![0]!.conditions, "Accepted")).toMatchObject({ status: "False", reason: "HostnameConflict" });
  });
});
