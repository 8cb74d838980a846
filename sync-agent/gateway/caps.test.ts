// The agent's caps, as pure decisions over resolveGateway: what is published
// always passes the worker's schema, the oldest routes keep their place, and a
// refused route's status says why.
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { GatewaySection, MAX_MATCH_ENTRIES } from "../../worker/snapshot/gateway.ts";
import { MAX_REGEX_PATHS_PER_KEY } from "../../worker/snapshot/regex-key.ts";
import { refusedRoutes } from "./index.ts";
import { resolveGateway, type ResolveInput } from "./resolve.ts";
import type { HTTPRoute } from "./types.ts";

const G = "gateway.networking.k8s.io/v1";
const base: Omit<ResolveInput, "httpRoutes"> = {
  gatewayClasses: [{ metadata: { name: "edgelb" }, spec: { controllerName: "edgelb.dev/gateway-controller" } }],
  gateways: [{ apiVersion: G, kind: "Gateway", metadata: { name: "gw", namespace: "ns", creationTimestamp: new Date("2026-01-01T00:00:00Z") }, spec: { gatewayClassName: "edgelb", listeners: [{ name: "http", port: 80, protocol: "HTTP" }] } }],
  referenceGrants: [],
  services: [{ metadata: { name: "web", namespace: "ns" }, spec: { type: "NodePort", ports: [{ port: 80, nodePort: 30080, protocol: "TCP" }] } }] as ResolveInput["services"],
  namespaces: [],
};

function route(name: string, createdSecond: number, hostnames: string[], rules: unknown[]): HTTPRoute {
  return {
    apiVersion: G,
    kind: "HTTPRoute",
    metadata: { name, namespace: "ns", generation: 1, creationTimestamp: new Date(Date.UTC(2026, 0, 1) + createdSecond * 1000).toISOString() as unknown as Date },
    spec: { parentRefs: [{ name: "gw" }], hostnames, rules: rules as never },
  };
}

const accepted = (r: ReturnType<typeof resolveGateway>, name: string) => r.routes.get(`ns/${name}`)?.[0]?.conditions.find((c) => c.type === "Accepted");

describe(`the ${MAX_MATCH_ENTRIES.toLocaleString("en")}-entry cap on a cluster's route tables`, () => {
  it("publishes the oldest routes up to the cap and refuses the newer ones with a status that says why", () => {
    // 16 hostnames × 16 rules × 64 matches = 16,384 entries a route: 15 fit under 250,000, the 16th does not.
    const hostnames = Array.from({ length: 16 }, (_, h) => `h${h}.example.com`);
    const rules = Array.from({ length: 16 }, (_, r) => ({
      matches: Array.from({ length: 64 }, (_, m) => ({ path: { type: "PathPrefix", value: `/r${r}/m${m}` } })),
      backendRefs: [{ name: "web", port: 80 }],
    }));
    // Named so that the newest sorts first by name: age decides, not the name.
    const routes = Array.from({ length: 16 }, (_, i) => route(`route-${String(15 - i).padStart(2, "0")}`, i, hostnames, rules));
    const r = resolveGateway({ ...base, httpRoutes: routes });
    expect(r.section.routes).toHaveLength(15);
    expect(r.section.routes.map((x) => x.name)).not.toContain("route-00");
    expect(accepted(r, "route-01")).toMatchObject({ status: "True" });
    expect(accepted(r, "route-00")).toMatchObject({
      status: "False",
      reason: "UnsupportedValue",
      message: expect.stringContaining(`adds 16384 hostname × match entries to 245760, more than the ${MAX_MATCH_ENTRIES} the edge keeps`),
    });
    expect(r.capped).toEqual([{ route: "ns/route-00", gateway: "ns/gw", reason: expect.stringContaining("the edge's route tables are full") }]);
    // The Gateway counts only what is served.
    expect(r.gateways.get("ns/gw")!.listeners![0]!.attachedRoutes).toBe(15);
    // What is published is what the worker accepts.
    expect(v.safeParse(GatewaySection, { ...r.section, refused: refusedRoutes(r) }).success).toBe(true);
    expect(refusedRoutes(r)).toEqual([{ namespace: "ns", name: "route-00", gateway: "ns/gw", reason: expect.stringMatching(/^UnsupportedValue: not served: the edge's route tables are full/) }]);
  });
});

describe(`the cap of ${MAX_REGEX_PATHS_PER_KEY} regex paths per hostname × index key`, () => {
  const regexRule = (pattern: string) => [{ matches: [{ path: { type: "RegularExpression", value: pattern } }], backendRefs: [{ name: "web", port: 80 }] }];

  it("serves 5,000 regex routes with the reviewer's adversarial pattern on one hostname (each has its own key)", () => {
    const routes = Array.from({ length: 5000 }, (_, i) => route(`r-${i}`, i, ["shop.example.com"], regexRule(`(/v[0-9]+)?/r${i}/.*`)));
    const r = resolveGateway({ ...base, httpRoutes: routes });
    expect(r.section.routes).toHaveLength(5000);
    expect(r.capped).toEqual([]);
  });

  it("refuses the newest unindexable regex over the cap on a hostname, not on another hostname", () => {
    const routes = Array.from({ length: MAX_REGEX_PATHS_PER_KEY + 1 }, (_, i) => route(`r-${i}`, i, ["shop.example.com"], regexRule(`/[a-z]+${i}`)));
    routes.push(route("elsewhere", 1000, ["other.example.com"], regexRule("/[a-z]+x")));
    const r = resolveGateway({ ...base, httpRoutes: routes });
    expect(r.section.routes.map((x) => x.name)).not.toContain(`r-${MAX_REGEX_PATHS_PER_KEY}`);
    expect(r.section.routes).toHaveLength(MAX_REGEX_PATHS_PER_KEY + 1);
    expect(accepted(r, `r-${MAX_REGEX_PATHS_PER_KEY}`)).toMatchObject({ status: "False", reason: "UnsupportedValue", message: expect.stringContaining("with no literal path segment every match must contain") });
    expect(accepted(r, "elsewhere")).toMatchObject({ status: "True" });
    expect(v.safeParse(GatewaySection, r.section).success).toBe(true);
  });
});
