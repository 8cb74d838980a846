// Gateway API conformance through the whole system, translated from
// kubernetes-sigs/gateway-api conformance/tests (docs/gateway.md lists which):
// the simulated cluster serves the CRDs, the real agent resolves them and
// pushes, the real worker (workerd) matches, filters, weighs and proxies to
// the simulated nodes' NodePorts. Each answer's `port` says which Service
// (NodePort) served it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gatewayCrds } from "../../lab/cluster/api/gateway.ts";
import type { Obj } from "../../lab/cluster/api/selectors.ts";
import { startWorld, waitFor, type World } from "./harness.ts";

const G = "gateway.networking.k8s.io/v1";
const NS = "gateway-conformance-infra";
let w: World;
const nodePorts = new Map<number, string>();

function service(name: string, namespace = NS, type = "NodePort"): Obj {
  return { apiVersion: "v1", kind: "Service", metadata: { name, namespace }, spec: { type, selector: { app: name }, ports: [{ name: "http", port: 8080, targetPort: 8080, protocol: "TCP" }] } };
}
const route = (name: string, spec: Obj, namespace = NS): Obj => ({ apiVersion: G, kind: "HTTPRoute", metadata: { name, namespace }, spec });
const backend = (name: string, extra: Obj = {}) => ({ name, port: 8080, ...extra });

interface Answer {
  status: number;
  backend?: string;
  path?: string;
  query?: string;
  headers: Headers;
  echoed?: Record<string, string>;
}

async function send(host: string, path = "/", init: RequestInit = {}): Promise<Answer> {
  const res = await w.edge!.request(host, path, init);
  const text = await res.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: res.headers, ...(body?.port ? { backend: nodePorts.get(body.port), path: body.path, query: body.query, echoed: body.headers } : {}) };
}

/** Waits until the edge answers this way (the push may still be on its way). */
async function expectEventually(host: string, path: string, want: Partial<Answer>, init: RequestInit = {}): Promise<Answer> {
  return waitFor(async () => {
    const a = await send(host, path, init);
    return Object.entries(want).every(([k, v]) => (a as any)[k] === v) ? a : undefined;
  }, `${host}${path} → ${JSON.stringify(want)}`, 10_000, 50);
}

beforeAll(async () => {
  w = await startWorld({ addressBase: "127.25.3", nodes: 2, sink: "worker", noAgent: true });
  for (const crd of gatewayCrds()) w.cluster.create(crd);
  for (const ns of [NS, "gateway-conformance-web-backend"]) w.cluster.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns } });
  for (const name of ["infra-backend-v1", "infra-backend-v2", "infra-backend-v3"]) w.cluster.create(service(name));
  w.cluster.create(service("web-backend", "gateway-conformance-web-backend"));
  w.cluster.create(service("cluster-only", NS, "ClusterIP"));
  for (const s of w.cluster.list("Service")) for (const p of s.spec.ports ?? []) if (p.nodePort) nodePorts.set(p.nodePort, s.metadata.name);
  w.cluster.create({ apiVersion: G, kind: "GatewayClass", metadata: { name: "edgelb" }, spec: { controllerName: "edgelb.dev/gateway-controller" } });
  w.cluster.create({
    apiVersion: G,
    kind: "Gateway",
    metadata: { name: "same-namespace", namespace: NS },
    spec: { gatewayClassName: "edgelb", listeners: [{ name: "http", port: 80, protocol: "HTTP", hostname: "*.example.com", allowedRoutes: { namespaces: { from: "Same" } } }] },
  });
  w.cluster.create({
    apiVersion: G,
    kind: "Gateway",
    metadata: { name: "httproute-listener-hostname-matching", namespace: NS },
    spec: {
      gatewayClassName: "edgelb",
      listeners: [
        { name: "listener-1", port: 80, protocol: "HTTP", hostname: "bar.com" },
        { name: "listener-2", port: 80, protocol: "HTTP", hostname: "foo.bar.com" },
        { name: "listener-3", port: 80, protocol: "HTTP", hostname: "*.bar.com" },
        { name: "listener-4", port: 80, protocol: "HTTP", hostname: "*.foo.com" },
      ],
    },
  });
  await w.startAgent({ gatewayRecheckMs: 100 });
});
afterAll(async () => {
  await w?.stop();
});

describe("Gateway API conformance through the worker", () => {
  it("HTTPRouteSimpleSameNamespace: a route's traffic reaches its Service's NodePort", async () => {
    w.cluster.create(route("gateway-conformance-infra-test", { parentRefs: [{ name: "same-namespace" }], hostnames: ["simple.example.com"], rules: [{ backendRefs: [backend("infra-backend-v1")] }] }));
    await expectEventually("simple.example.com", "/", { status: 200, backend: "infra-backend-v1" });
  });

  it("HTTPRouteMatching, HTTPRouteMethodMatching, HTTPRouteQueryParamMatching, HTTPRouteHeaderMatching", async () => {
    w.cluster.create(
      route("matching", {
        parentRefs: [{ name: "same-namespace" }],
        hostnames: ["match.example.com"],
        rules: [
          { matches: [{ path: { type: "PathPrefix", value: "/" } }], backendRefs: [backend("infra-backend-v1")] },
          { matches: [{ path: { type: "PathPrefix", value: "/v2" } }, { headers: [{ name: "version", value: "two" }] }], backendRefs: [backend("infra-backend-v2")] },
          { matches: [{ method: "POST", path: { type: "Exact", value: "/submit" } }], backendRefs: [backend("infra-backend-v3")] },
          { matches: [{ queryParams: [{ name: "animal", value: "whale" }] }], backendRefs: [backend("infra-backend-v3")] },
        ],
      }),
    );
    await expectEventually("match.example.com", "/v2/example", { status: 200, backend: "infra-backend-v2" });
    expect((await send("match.example.com", "/")).backend).toBe("infra-backend-v1");
    expect((await send("match.example.com", "/v2example")).backend).toBe("infra-backend-v1");
    expect((await send("match.example.com", "/", { headers: { version: "two" } })).backend).toBe("infra-backend-v2");
    expect((await send("match.example.com", "/submit", { method: "POST" })).backend).toBe("infra-backend-v3");
    expect((await send("match.example.com", "/submit")).backend).toBe("infra-backend-v1");
    expect((await send("match.example.com", "/?animal=whale")).backend).toBe("infra-backend-v3");
    expect((await send("match.example.com", "/?animal=dolphin")).backend).toBe("infra-backend-v1");
  });

  it("HTTPRouteMatchingAcrossRoutes: precedence across two routes of one hostname; no match is 404", async () => {
    w.cluster.create(route("across-a", { parentRefs: [{ name: "same-namespace" }], hostnames: ["across.example.com"], rules: [{ matches: [{ path: { type: "PathPrefix", value: "/" } }], backendRefs: [backend("infra-backend-v1")] }, { matches: [{ path: { type: "PathPrefix", value: "/v2" } }], backendRefs: [backend("infra-backend-v2")] }] }));
    w.cluster.create(route("across-b", { parentRefs: [{ name: "same-namespace" }], hostnames: ["across.example.com"], rules: [{ matches: [{ path: { type: "Exact", value: "/v2/exact" } }], backendRefs: [backend("infra-backend-v3")] }] }));
    w.cluster.create(route("only-path", { parentRefs: [{ name: "same-namespace" }], hostnames: ["narrow.example.com"], rules: [{ matches: [{ path: { type: "Exact", value: "/only" } }], backendRefs: [backend("infra-backend-v1")] }] }));
    await expectEventually("across.example.com", "/v2/exact", { status: 200, backend: "infra-backend-v3" });
    expect((await send("across.example.com", "/v2/other")).backend).toBe("infra-backend-v2");
    expect((await send("across.example.com", "/x")).backend).toBe("infra-backend-v1");
    await expectEventually("narrow.example.com", "/only", { status: 200 });
    expect((await send("narrow.example.com", "/other")).status).toBe(404);
  });

  it("HTTPRouteListenerHostnameMatching and HTTPRouteHostnameIntersection", async () => {
    const gw = "httproute-listener-hostname-matching";
    w.cluster.create(route("backend-v1", { parentRefs: [{ name: gw, sectionName: "listener-1" }], rules: [{ backendRefs: [backend("infra-backend-v1")] }] }));
    w.cluster.create(route("backend-v2", { parentRefs: [{ name: gw, sectionName: "listener-2" }], rules: [{ backendRefs: [backend("infra-backend-v2")] }] }));
    w.cluster.create(route("backend-v3", { parentRefs: [{ name: gw, sectionName: "listener-3" }, { name: gw, sectionName: "listener-4" }], rules: [{ backendRefs: [backend("infra-backend-v3")] }] }));
    await expectEventually("bar.com", "/", { status: 200, backend: "infra-backend-v1" });
    expect((await send("foo.bar.com", "/")).backend).toBe("infra-backend-v2");
    expect((await send("baz.bar.com", "/")).backend).toBe("infra-backend-v3");
    expect((await send("boo.bar.com", "/")).backend).toBe("infra-backend-v3");
    expect((await send("multiple.prefixes.bar.com", "/")).backend).toBe("infra-backend-v3");
    expect((await send("foo.foo.com", "/")).backend).toBe("infra-backend-v3");
    // Intersection: the route's wildcard narrows to the listener's exact name; a name outside the listener is not routed.
    w.cluster.create(route("intersection", { parentRefs: [{ name: "same-namespace" }], hostnames: ["*.wild.example.com", "other.org"], rules: [{ backendRefs: [backend("infra-backend-v2")] }] }));
    await expectEventually("a.wild.example.com", "/", { status: 200, backend: "infra-backend-v2" });
    expect((await send("other.org", "/")).backend).toBeUndefined();
  });

  it("HTTPRouteWeight: traffic splits by weight; weight 0 gets none", async () => {
    w.cluster.create(route("weighted-backends", { parentRefs: [{ name: "same-namespace" }], hostnames: ["weights.example.com"], rules: [{ backendRefs: [backend("infra-backend-v1", { weight: 70 }), backend("infra-backend-v2", { weight: 30 }), backend("infra-backend-v3", { weight: 0 })] }] }));
    await expectEventually("weights.example.com", "/", { status: 200 });
    const counts: Record<string, number> = {};
    for (let i = 0; i < 100; i++) {
      const a = await send("weights.example.com", "/");
      counts[a.backend ?? `status ${a.status}`] = (counts[a.backend ?? `status ${a.status}`] ?? 0) + 1;
    }
    expect(counts["infra-backend-v3"]).toBeUndefined();
    // 70/30 of 100: below these is more than 4 standard deviations off.
    expect(counts["infra-backend-v1"]).toBeGreaterThan(50);
    expect(counts["infra-backend-v2"]).toBeGreaterThan(12);
    expect(counts["infra-backend-v1"]! + counts["infra-backend-v2"]!).toBe(100);
  });

  it("HTTPRouteRequestHeaderModifier, HTTPRouteResponseHeaderModifier, HTTPRouteRedirect*, HTTPRouteRewritePath", async () => {
    w.cluster.create(
      route("filters", {
        parentRefs: [{ name: "same-namespace" }],
        hostnames: ["filters.example.com"],
        rules: [
          {
            matches: [{ path: { type: "PathPrefix", value: "/headers" } }],
            filters: [
              { type: "RequestHeaderModifier", requestHeaderModifier: { set: [{ name: "X-Header-Set", value: "set-overwrites-values" }], add: [{ name: "X-Header-Add", value: "add-appends-values" }], remove: ["X-Header-Remove"] } },
              { type: "ResponseHeaderModifier", responseHeaderModifier: { set: [{ name: "X-Response-Set", value: "resp" }] } },
            ],
            backendRefs: [backend("infra-backend-v1")],
          },
          { matches: [{ path: { type: "PathPrefix", value: "/redirect" } }], filters: [{ type: "RequestRedirect", requestRedirect: { hostname: "example.org", statusCode: 301 } }] },
          { matches: [{ path: { type: "PathPrefix", value: "/prefix/one" } }], filters: [{ type: "URLRewrite", urlRewrite: { path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/one" } } }], backendRefs: [backend("infra-backend-v2")] },
        ],
      }),
    );
    const h = await expectEventually("filters.example.com", "/headers", { status: 200, backend: "infra-backend-v1" }, { headers: { "X-Header-Set": "old", "X-Header-Add": "original", "X-Header-Remove": "gone" } });
    expect(h.echoed!["x-header-set"]).toBe("set-overwrites-values");
    expect(h.echoed!["x-header-add"]!.split(/,\s*/)).toEqual(["original", "add-appends-values"]);
    expect(h.echoed!["x-header-remove"]).toBeUndefined();
    expect(h.headers.get("x-response-set")).toBe("resp");
    const r = await send("filters.example.com", "/redirect/x");
    expect(r.status).toBe(301);
    expect(r.headers.get("location")).toMatch(/^https?:\/\/example\.org(:\d+)?\/redirect\/x$/);
    const rw = await send("filters.example.com", "/prefix/one/two");
    expect([rw.backend, rw.path]).toEqual(["infra-backend-v2", "/one/two"]);
  });

  it("HTTPRouteHTTPSListener: routes on HTTPS listeners (TLS ends at Cloudflare) serve their hostnames; unknown hosts 404", async () => {
    const tls = { mode: "Terminate", certificateRefs: [{ group: "", kind: "Secret", name: "tls-validity-checks-certificate", namespace: NS }] };
    w.cluster.create({
      apiVersion: G,
      kind: "Gateway",
      metadata: { name: "same-namespace-with-https-listener", namespace: NS },
      spec: {
        gatewayClassName: "edgelb",
        listeners: [
          { name: "https", port: 443, protocol: "HTTPS", allowedRoutes: { namespaces: { from: "Same" } }, tls },
          { name: "https-with-hostname", port: 443, hostname: "second-example.org", protocol: "HTTPS", allowedRoutes: { namespaces: { from: "Same" } }, tls },
          { name: "https-with-wildcard-hostname", port: 443, hostname: "*.wildcard.org", protocol: "HTTPS", allowedRoutes: { namespaces: { from: "Same" } }, tls },
          { name: "https-with-hostname-matching-wildcard", port: 443, hostname: "fourth-example.wildcard.org", protocol: "HTTPS", allowedRoutes: { namespaces: { from: "Same" } }, tls },
        ],
      },
    });
    const gw = "same-namespace-with-https-listener";
    w.cluster.create(route("httproute-https-test", { parentRefs: [{ name: gw }], hostnames: ["example.org"], rules: [{ backendRefs: [backend("infra-backend-v1")] }] }));
    w.cluster.create(route("httproute-https-test-no-hostname", { parentRefs: [{ name: gw, sectionName: "https-with-hostname" }], rules: [{ backendRefs: [backend("infra-backend-v2")] }] }));
    await expectEventually("example.org", "/", { status: 200, backend: "infra-backend-v1" });
    await expectEventually("second-example.org", "/", { status: 200, backend: "infra-backend-v2" });
    expect((await send("unknown-example.org", "/")).status).toBe(404);
  });

  it("an HTTP listener's redirect to https and an HTTPS listener's backend on one hostname: http:// is redirected, not served", async () => {
    w.cluster.create({
      apiVersion: G,
      kind: "Gateway",
      metadata: { name: "tls-redirect", namespace: NS },
      spec: {
        gatewayClassName: "edgelb",
        listeners: [
          { name: "http", port: 80, protocol: "HTTP", hostname: "redirect.example.net" },
          { name: "https", port: 443, protocol: "HTTPS", hostname: "redirect.example.net", tls: { mode: "Terminate", certificateRefs: [{ kind: "Secret", name: "cert" }] } },
        ],
      },
    });
    // The backend route is the older one: merged into one table, it would win every request, http:// included.
    w.cluster.create(route("https-route", { parentRefs: [{ name: "tls-redirect", sectionName: "https" }], rules: [{ backendRefs: [backend("infra-backend-v1")] }] }));
    w.cluster.create(route("http-filter-redirect", { parentRefs: [{ name: "tls-redirect", sectionName: "http" }], rules: [{ filters: [{ type: "RequestRedirect", requestRedirect: { scheme: "https", statusCode: 301 } }] }] }));
    // The lab's edge is reached over plain http.
    const a = await expectEventually("redirect.example.net", "/cart", { status: 301 });
    expect(a.headers.get("location")).toBe("https://redirect.example.net/cart");
  });

  it("HTTPRouteCrossNamespace with a ReferenceGrant; invalid and ClusterIP-only backends answer 500", async () => {
    w.cluster.create(route("cross", { parentRefs: [{ name: "same-namespace" }], hostnames: ["cross.example.com"], rules: [{ backendRefs: [{ name: "web-backend", namespace: "gateway-conformance-web-backend", port: 8080 }] }] }));
    w.cluster.create(route("invalid", { parentRefs: [{ name: "same-namespace" }], hostnames: ["invalid.example.com"], rules: [{ backendRefs: [backend("nonexistent")] }] }));
    w.cluster.create(route("cluster-ip", { parentRefs: [{ name: "same-namespace" }], hostnames: ["clusterip.example.com"], rules: [{ backendRefs: [backend("cluster-only")] }] }));
    await expectEventually("cross.example.com", "/", { status: 500 });
    await expectEventually("invalid.example.com", "/", { status: 500 });
    await expectEventually("clusterip.example.com", "/", { status: 500 });
    w.cluster.create({ apiVersion: "gateway.networking.k8s.io/v1beta1", kind: "ReferenceGrant", metadata: { name: "reference-grant", namespace: "gateway-conformance-web-backend" }, spec: { from: [{ group: "gateway.networking.k8s.io", kind: "HTTPRoute", namespace: NS }], to: [{ group: "", kind: "Service" }] } });
    await expectEventually("cross.example.com", "/", { status: 200, backend: "web-backend" });
    // The fix the status message names: give the Service a NodePort.
    w.cluster.patch("Service", "cluster-only", { spec: { type: "NodePort" } }, { namespace: NS });
    const port = w.cluster.get("Service", "cluster-only", NS).spec.ports[0].nodePort;
    nodePorts.set(port, "cluster-only");
    await expectEventually("clusterip.example.com", "/", { status: 200, backend: "cluster-only" });
  });
});
