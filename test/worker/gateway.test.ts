// Gateway API at the edge, through the whole worker against real origins on
// loopback: the core HTTPRoute conformance tests (sigs.k8s.io/gateway-api
// conformance/tests) translated to snapshots the agent would publish. Backends
// infra-backend-v1/v2/v3 are Local Services whose endpoints sit on the shared
// nodes a, b, c, so the echo's `node` tells which backend served a request.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, inject, it } from "vitest";
import type { ConfigKV } from "../../worker/config/index.ts";
import { snapshotKey } from "../../worker/snapshot/schema.ts";
import type { GatewaySectionInput } from "../../worker/snapshot/gateway.ts";
import { lab, nodesOf, service, snapshot, testEdge, uniqueCluster, type Echo } from "./helpers.ts";
import { WsClient } from "./websocket-client.ts";

const [a, b, c] = lab.nodes as [(typeof lab.nodes)[0], (typeof lab.nodes)[0], (typeof lab.nodes)[0]];
const NS = "gateway-conformance-infra";
type RouteInput = GatewaySectionInput["routes"][number];
type RuleInput = RouteInput["rules"][number];

const backends: GatewaySectionInput["backends"] = [a, b, c].map((node, i) => ({
  namespace: NS,
  name: `infra-backend-v${i + 1}`,
  port: 8080,
  nodePort: lab.nodePort,
  trafficPolicy: "Local" as const,
  endpoints: [{ node: node.name, weight: 1 }],
}));
const nodeOf: Record<string, string> = { [a.name]: "v1", [b.name]: "v2", [c.name]: "v3" };

const to = (v: 1 | 2 | 3, weight?: number) => ({ namespace: NS, name: `infra-backend-v${v}`, port: 8080, ...(weight === undefined ? {} : { weight }) });

function route(name: string, rules: RuleInput[], over: Partial<RouteInput> = {}): RouteInput {
  return { namespace: NS, name, creationTimestamp: "2026-12-01T10:00:00Z", gateway: `${NS}/same-namespace`, listener: "http", hostnames: ["*"], rules, ...over };
}

async function gatewayEdge(routes: RouteInput[], opts: { random?: () => number; services?: Parameters<typeof snapshot>[2]; nodes?: Parameters<typeof snapshot>[1] } = {}) {
  const cluster = uniqueCluster("gw");
  const edge = testEdge({ EDGELB_CLUSTERS: cluster }, opts.random ? { random: opts.random } : {});
  await edge.seed({ ...snapshot(cluster, opts.nodes ?? nodesOf([a, b, c]), opts.services ?? []), gateway: { backends, routes } });
  const backendOf = async (host: string, path = "/", init: RequestInit = {}) => {
    const res = await edge.request(host, path, init);
    if (res.status !== 200) return `status ${res.status}`;
    return nodeOf[((await res.json()) as Echo).node];
  };
  return Object.assign(edge, { cluster, backendOf });
}

describe("Gateway API conformance at the edge (core HTTPRoute)", () => {
  it("HTTPRouteSimpleSameNamespace: a route with no hostnames on a listener with none serves any host", async () => {
    const edge = await gatewayEdge([route("gateway-conformance-infra-test", [{ backendRefs: [to(1)] }])]);
    expect(await edge.backendOf("anything.example.com", "/")).toBe("v1");
  });

  it("HTTPRouteMatching: path and header matches, longest prefix first", async () => {
    const edge = await gatewayEdge([
      route("matching", [
        { matches: [{ path: { type: "PathPrefix", value: "/" } }, { headers: [{ type: "Exact", name: "version", value: "one" }] }], backendRefs: [to(1)] },
        { matches: [{ path: { type: "PathPrefix", value: "/v2" } }, { headers: [{ type: "Exact", name: "version", value: "two" }] }], backendRefs: [to(2)] },
      ]),
    ]);
    const h = "example.com";
    expect(await edge.backendOf(h, "/")).toBe("v1");
    expect(await edge.backendOf(h, "/example")).toBe("v1");
    expect(await edge.backendOf(h, "/", { headers: { version: "one" } })).toBe("v1");
    expect(await edge.backendOf(h, "/v2")).toBe("v2");
    expect(await edge.backendOf(h, "/v2/example")).toBe("v2");
    expect(await edge.backendOf(h, "/", { headers: { version: "two" } })).toBe("v2");
    expect(await edge.backendOf(h, "/v2x")).toBe("v1");
    expect(await edge.backendOf(h, "/foo/v2/example")).toBe("v1");
  });

  it("HTTPRouteHeaderMatching, HTTPRouteQueryParamMatching, HTTPRouteMethodMatching", async () => {
    const edge = await gatewayEdge([
      route("match-kinds", [
        { matches: [{ headers: [{ type: "Exact", name: "version", value: "one" }] }], backendRefs: [to(1)] },
        { matches: [{ headers: [{ type: "Exact", name: "version", value: "two" }, { type: "RegularExpression", name: "color", value: "(orange|red)" }] }], backendRefs: [to(2)] },
        { matches: [{ queryParams: [{ type: "Exact", name: "animal", value: "whale" }] }], backendRefs: [to(3)] },
        { matches: [{ method: "POST" }], backendRefs: [to(2)] },
      ]),
    ]);
    const h = "example.com";
    expect(await edge.backendOf(h, "/", { headers: { Version: "one" } })).toBe("v1");
    expect(await edge.backendOf(h, "/", { headers: { version: "two", color: "red" } })).toBe("v2");
    expect(await edge.backendOf(h, "/", { headers: { version: "two", color: "blue" } })).toBe("status 404");
    expect(await edge.backendOf(h, "/?animal=whale")).toBe("v3");
    expect(await edge.backendOf(h, "/?ANIMAL=whale")).toBe("status 404");
    expect(await edge.backendOf(h, "/", { method: "POST", body: "x" })).toBe("v2");
    const miss = await edge.request(h, "/nothing");
    expect(miss.status).toBe(404);
    expect(await miss.text()).toMatch(/^edgelb: no route matches this request \(request /);
    expect(edge.logs.findLast((e) => e.event === "gateway.no_match")).toMatchObject({ host: h, path: "/nothing", hostnames: "*" });
  });

  it("HTTPRouteMatchingAcrossRoutes: precedence across routes, ties to the older route", async () => {
    const edge = await gatewayEdge([
      route(
        "matching-part2",
        [{ matches: [{ path: { type: "PathPrefix", value: "/v2" } }, { headers: [{ type: "Exact", name: "version", value: "two" }] }], backendRefs: [to(2)] }],
        { hostnames: ["example.com"], creationTimestamp: "2026-12-01T09:00:00Z" },
      ),
      route(
        "matching-part1",
        [
          { matches: [{ path: { type: "PathPrefix", value: "/" } }], backendRefs: [to(1)] },
          { matches: [{ path: { type: "Exact", value: "/example" } }, { headers: [{ type: "Exact", name: "version", value: "one" }] }], backendRefs: [to(1)] },
        ],
        { hostnames: ["example.com", "example.net"] },
      ),
      // Same match as part2's /v2 but newer: never wins.
      route("newer", [{ matches: [{ path: { type: "PathPrefix", value: "/v2" } }], backendRefs: [to(3)] }], { hostnames: ["example.com"], creationTimestamp: "2026-12-01T11:00:00Z" }),
    ]);
    expect(await edge.backendOf("example.com", "/")).toBe("v1");
    expect(await edge.backendOf("example.net", "/example")).toBe("v1");
    expect(await edge.backendOf("example.com", "/v2")).toBe("v2");
    expect(await edge.backendOf("example.com", "/", { headers: { version: "two" } })).toBe("v2");
    expect(await edge.backendOf("example.net", "/v2")).toBe("v1");
  });

  it("HTTPRouteListenerHostnameMatching: exact listener names, then the longest wildcard; no match is 404", async () => {
    const edge = await gatewayEdge([
      route("backend-v1", [{ backendRefs: [to(1)] }], { hostnames: ["bar.com"], listener: "listener-1" }),
      route("backend-v2", [{ backendRefs: [to(2)] }], { hostnames: ["foo.bar.com"], listener: "listener-2" }),
      route("backend-v3", [{ backendRefs: [to(3)] }], { hostnames: ["*.bar.com", "*.foo.com"], listener: "listener-3" }),
    ]);
    expect(await edge.backendOf("bar.com")).toBe("v1");
    expect(await edge.backendOf("foo.bar.com")).toBe("v2");
    expect(await edge.backendOf("baz.bar.com")).toBe("v3");
    expect(await edge.backendOf("boo.bar.com")).toBe("v3");
    expect(await edge.backendOf("multiple.prefixes.bar.com")).toBe("v3");
    expect(await edge.backendOf("multiple.prefixes.foo.com")).toBe("v3");
    expect(await edge.backendOf("foo.com")).toBe("status 404");
    expect(await edge.backendOf("no.matching.host")).toBe("status 404");
  });

  it("HTTPRouteHostnameIntersection: each route serves only its hostnames intersected with its listener's", async () => {
    // Listeners very.specific.com, *.wildcard.io, *.anotherwildcard.io; the hostnames are the intersections the agent publishes.
    const s = (path: string) => [{ path: { type: "PathPrefix" as const, value: path } }];
    const edge = await gatewayEdge([
      route("specific-host-matches-listener-specific-host", [{ matches: s("/s1"), backendRefs: [to(1)] }], { hostnames: ["very.specific.com"] }),
      route("specific-host-matches-listener-wildcard-host", [{ matches: s("/s2"), backendRefs: [to(2)] }], { hostnames: ["foo.wildcard.io", "bar.wildcard.io", "foo.bar.wildcard.io"] }),
      route("wildcard-host-matches-listener-specific-host", [{ matches: s("/s3"), backendRefs: [to(3)] }], { hostnames: ["very.specific.com"] }),
      route("wildcard-host-matches-listener-wildcard-host", [{ matches: s("/s4"), backendRefs: [to(1)] }], { hostnames: ["*.anotherwildcard.io"] }),
    ]);
    const cases: [string, string, string][] = [
      ["very.specific.com", "/s1", "v1"],
      ["non.matching.com", "/s1", "status 404"],
      ["foo.nonmatchingwildcard.io", "/s1", "status 404"],
      ["foo.wildcard.io", "/s1", "status 404"],
      ["very.specific.com", "/non-matching-prefix", "status 404"],
      ["foo.wildcard.io", "/s2", "v2"],
      ["bar.wildcard.io", "/s2", "v2"],
      ["foo.bar.wildcard.io", "/s2", "v2"],
      ["non.matching.com", "/s2", "status 404"],
      ["wildcard.io", "/s2", "status 404"],
      ["very.specific.com", "/s2", "status 404"],
      ["foo.wildcard.io", "/non-matching-prefix", "status 404"],
      ["very.specific.com", "/s3", "v3"],
      ["non.matching.com", "/s3", "status 404"],
      ["foo.specific.com", "/s3", "status 404"],
      ["foo.wildcard.io", "/s3", "status 404"],
      ["foo.anotherwildcard.io", "/s4", "v1"],
      ["bar.anotherwildcard.io", "/s4", "v1"],
      ["foo.bar.anotherwildcard.io", "/s4", "v1"],
      ["anotherwildcard.io", "/s4", "status 404"],
      ["foo.wildcard.io", "/s4", "status 404"],
      ["very.specific.com", "/s4", "status 404"],
      ["foo.anotherwildcard.io", "/non-matching-prefix", "status 404"],
    ];
    for (const [host, path, want] of cases) expect(await edge.backendOf(host, path), `${host}${path}`).toBe(want);
  });

  it("HTTPRouteWeight: traffic splits by weight and weight 0 gets none", async () => {
    let i = 0;
    const steps = 20;
    // Evenly spaced draws: the split is exact, not statistical.
    const random = () => ((i++ % steps) + 0.5) / steps;
    const edge = await gatewayEdge([route("weighted-backends", [{ backendRefs: [to(1, 7), to(2, 3), to(3, 0)] }])], { random });
    const seen: Record<string, number> = {};
    for (let n = 0; n < steps; n++) {
      const got = (await edge.backendOf("example.com"))!;
      seen[got] = (seen[got] ?? 0) + 1;
    }
    expect(seen).toEqual({ v1: 14, v2: 6 });
  });

  it("HTTPRouteRequestHeaderModifier and HTTPRouteResponseHeaderModifier; edge fields stay the edge's", async () => {
    const edge = await gatewayEdge([
      route("request-header-modifier", [
        {
          filters: [
            {
              type: "RequestHeaderModifier",
              requestHeaderModifier: {
                set: [{ name: "X-Header-Set", value: "set-overwrites-values" }, { name: "X-Forwarded-For", value: "6.6.6.6" }],
                add: [{ name: "X-Header-Add", value: "add-appends-values" }],
                remove: ["X-Header-Remove"],
              },
            },
            {
              type: "ResponseHeaderModifier",
              responseHeaderModifier: { set: [{ name: "X-Header-Set", value: "set-overwrites-values" }], add: [{ name: "X-Header-Add", value: "add-appends-values" }], remove: ["Content-Type"] },
            },
          ],
          backendRefs: [to(1)],
        },
      ]),
    ]);
    const res = await edge.request("example.com", "/", {
      headers: { "x-header-set": "some-other-value", "x-header-add": "something", "x-header-remove": "val", "cf-connecting-ip": "203.0.113.7" },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-header-set")).toBe("set-overwrites-values");
    expect(res.headers.get("x-header-add")).toBe("add-appends-values");
    expect(res.headers.has("content-type")).toBe(false);
    const echo = (await res.json()) as Echo;
    expect(echo.headers["x-header-set"]).toBe("set-overwrites-values");
    expect(echo.headers["x-header-add"]).toBe("something, add-appends-values");
    expect(echo.headers["x-header-remove"]).toBeUndefined();
    expect(echo.headers["x-forwarded-for"]).toBe("203.0.113.7");
    expect(edge.logs.find((e) => e.event === "gateway.filter_ignored")?.problem).toContain("x-forwarded-for is set by the edge");
  });

  it("HTTPRouteRedirectHostAndStatus, HTTPRouteRedirectPath, HTTPRouteRedirectPortAndScheme", async () => {
    const redirect = (path: string, requestRedirect: Record<string, unknown>): RuleInput => ({
      matches: [{ path: { type: "PathPrefix", value: path } }],
      filters: [{ type: "RequestRedirect", requestRedirect } as NonNullable<RuleInput["filters"]>[number]],
    });
    const edge = await gatewayEdge([
      route("redirect", [
        redirect("/hostname-redirect", { hostname: "example.org" }),
        redirect("/host-and-status", { hostname: "example.org", statusCode: 301 }),
        redirect("/original-prefix", { path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/replacement-prefix" } }),
        redirect("/full/path/original", { path: { type: "ReplaceFullPath", replaceFullPath: "/full-path-replacement" } }),
        redirect("/scheme-and-port", { scheme: "http", port: 8080 }),
        redirect("/scheme-only", { scheme: "http" }),
      ]),
    ]);
    const go = async (path: string) => {
      const res = await edge.request("gw.example.com", path);
      return [res.status, res.headers.get("location")];
    };
    expect(await go("/hostname-redirect?q=1")).toEqual([302, "https://example.org/hostname-redirect?q=1"]);
    expect(await go("/host-and-status")).toEqual([301, "https://example.org/host-and-status"]);
    expect(await go("/original-prefix/lemon")).toEqual([302, "https://gw.example.com/replacement-prefix/lemon"]);
    expect(await go("/full/path/original")).toEqual([302, "https://gw.example.com/full-path-replacement"]);
    expect(await go("/scheme-and-port")).toEqual([302, "http://gw.example.com:8080/scheme-and-port"]);
    expect(await go("/scheme-only")).toEqual([302, "http://gw.example.com/scheme-only"]);
  });

  it("HTTPRouteRewritePath and HTTPRouteRewriteHost", async () => {
    const rewrite = (path: GatewaySectionInput["routes"][number]["rules"][number]["matches"], urlRewrite: Record<string, unknown>): RuleInput => ({
      matches: path,
      filters: [{ type: "URLRewrite", urlRewrite } as NonNullable<RuleInput["filters"]>[number]],
      backendRefs: [to(1)],
    });
    const edge = await gatewayEdge([
      route("rewrite-path", [
        rewrite([{ path: { type: "PathPrefix", value: "/prefix/one" } }], { path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/one" } }),
        rewrite([{ path: { type: "PathPrefix", value: "/full/one" } }], { path: { type: "ReplaceFullPath", replaceFullPath: "/one" } }),
        rewrite([{ path: { type: "PathPrefix", value: "/strip-prefix" } }], { path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/" } }),
        rewrite([{ path: { type: "PathPrefix", value: "/host" } }], { hostname: "two.example.org" }),
      ]),
    ]);
    const echo = async (path: string) => (await (await edge.request("rewrite.example.com", path)).json()) as Echo;
    expect((await echo("/prefix/one/two")).path).toBe("/one/two");
    expect((await echo("/full/one/two")).path).toBe("/one");
    expect((await echo("/strip-prefix/three?x=1")).path).toBe("/three");
    expect((await echo("/strip-prefix/three?x=1")).query).toBe("x=1");
    expect((await echo("/strip-prefix")).path).toBe("/");
    expect((await echo("/host")).headers.host).toBe("two.example.org");
    // A body streams through a rewritten request unchanged.
    const posted = (await (await edge.request("rewrite.example.com", "/prefix/one/upload", { method: "POST", body: "hello gateway" })).json()) as Echo;
    expect([posted.method, posted.path, posted.body]).toEqual(["POST", "/one/upload", "hello gateway"]);
  });

  it("HTTPRouteExactPathMatching: Exact matches the whole path, case-sensitively, without a trailing slash", async () => {
    const exact = (value: string) => [{ path: { type: "Exact" as const, value } }];
    const edge = await gatewayEdge([route("exact-matching", [{ matches: exact("/one"), backendRefs: [to(1)] }, { matches: exact("/two"), backendRefs: [to(2)] }])]);
    const cases: [string, string][] = [
      ["/one", "v1"],
      ["/two", "v2"],
      ["/", "status 404"],
      ["/one/example", "status 404"],
      ["/two/", "status 404"],
      ["/Two", "status 404"],
    ];
    for (const [path, want] of cases) expect(await edge.backendOf("example.com", path), path).toBe(want);
  });

  it("HTTPRoutePathMatchOrder: Exact before PathPrefix, then the longest prefix, whatever the rule order", async () => {
    const m = (type: "Exact" | "PathPrefix", value: string) => [{ path: { type, value } }];
    const edge = await gatewayEdge([
      route("path-matching-order", [
        { matches: m("Exact", "/match"), backendRefs: [to(1)] },
        { matches: m("Exact", "/match/exact"), backendRefs: [to(2)] },
        { matches: m("Exact", "/match/exact/one"), backendRefs: [to(3)] },
        { matches: m("PathPrefix", "/match/"), backendRefs: [to(3)] },
        { matches: m("PathPrefix", "/match/prefix/"), backendRefs: [to(1)] },
        { matches: m("PathPrefix", "/match/prefix/one"), backendRefs: [to(2)] },
      ]),
    ]);
    const cases: [string, string][] = [
      ["/match/exact/one", "v3"],
      ["/match/exact", "v2"],
      ["/match", "v1"],
      ["/match/prefix/one/any", "v2"],
      ["/match/prefix/any", "v1"],
      ["/match/any", "v3"],
    ];
    for (const [path, want] of cases) expect(await edge.backendOf("example.com", path), path).toBe(want);
  });

  it("HTTPRouteRedirectPort, HTTPRouteRedirectScheme, HTTPRoute303Redirect, HTTPRoute307Redirect, HTTPRoute308Redirect", async () => {
    const redirect = (path: string, requestRedirect: Record<string, unknown>): RuleInput => ({
      matches: [{ path: { type: "PathPrefix", value: path } }],
      filters: [{ type: "RequestRedirect", requestRedirect } as NonNullable<RuleInput["filters"]>[number]],
    });
    const edge = await gatewayEdge([
      route("redirect-port", [
        redirect("/port", { port: 8083 }),
        redirect("/port-and-host", { hostname: "example.org", port: 8083 }),
        redirect("/port-and-status", { port: 8083, statusCode: 301 }),
        redirect("/port-and-host-and-status", { port: 8083, hostname: "example.org", statusCode: 302 }),
      ]),
      route("redirect-scheme", [
        redirect("/scheme", { scheme: "http" }),
        redirect("/scheme-and-host", { hostname: "example.org", scheme: "http" }),
        redirect("/scheme-and-status", { scheme: "http", statusCode: 301 }),
        redirect("/scheme-and-host-and-status", { scheme: "http", statusCode: 302, hostname: "example.org" }),
      ]),
      route("status-codes", [redirect("/see-other", { statusCode: 303 }), redirect("/temporary", { statusCode: 307 }), redirect("/permanent", { statusCode: 308 })]),
    ]);
    // The edge is reached over https here, so the scheme cases redirect to http (upstream's run the other way).
    const go = async (path: string, method = "GET") => {
      const res = await edge.request("gw.example.com", path, method === "GET" ? {} : { method, body: "form=1" });
      return [res.status, res.headers.get("location")];
    };
    expect(await go("/port")).toEqual([302, "https://gw.example.com:8083/port"]);
    expect(await go("/port-and-host")).toEqual([302, "https://example.org:8083/port-and-host"]);
    expect(await go("/port-and-status")).toEqual([301, "https://gw.example.com:8083/port-and-status"]);
    expect(await go("/port-and-host-and-status")).toEqual([302, "https://example.org:8083/port-and-host-and-status"]);
    expect(await go("/scheme")).toEqual([302, "http://gw.example.com/scheme"]);
    expect(await go("/scheme-and-host")).toEqual([302, "http://example.org/scheme-and-host"]);
    expect(await go("/scheme-and-status")).toEqual([301, "http://gw.example.com/scheme-and-status"]);
    expect(await go("/scheme-and-host-and-status")).toEqual([302, "http://example.org/scheme-and-host-and-status"]);
    expect(await go("/see-other", "POST")).toEqual([303, "https://gw.example.com/see-other"]);
    expect(await go("/temporary")).toEqual([307, "https://gw.example.com/temporary"]);
    expect(await go("/permanent")).toEqual([308, "https://gw.example.com/permanent"]);
  });

  it("URLRewrite hostname: the origin's Host is the rewritten one, X-Forwarded-Host keeps the client's", async () => {
    const edge = await gatewayEdge([
      route("rewrite-host", [
        { matches: [{ path: { type: "PathPrefix", value: "/one" } }], filters: [{ type: "URLRewrite", urlRewrite: { hostname: "one.example.org" } }], backendRefs: [to(1)] },
        {
          matches: [{ path: { type: "PathPrefix", value: "/both" } }],
          filters: [{ type: "URLRewrite", urlRewrite: { hostname: "two.example.org", path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/two" } } }],
          backendRefs: [to(2)],
        },
      ]),
    ]);
    // A client forging forwarding fields gets none of them through.
    const forged = { "x-forwarded-host": "evil.example", forwarded: "host=evil.example;proto=http", "x-forwarded-proto": "http" };
    const one = (await (await edge.request("public.example.com", "/one", { headers: forged })).json()) as Echo;
    expect(one.headers.host).toBe("one.example.org");
    expect(one.headers["x-forwarded-host"]).toBe("public.example.com");
    // The client's forged Forwarded is dropped, and the edge sets none (EDGELB_FORWARDED off).
    expect(one.headers.forwarded).toBeUndefined();
    expect(one.headers["x-forwarded-proto"]).toBe("https");
    const both = (await (await edge.request("public.example.com", "/both/x", { headers: forged })).json()) as Echo;
    expect([both.headers.host, both.path, both.headers["x-forwarded-host"]]).toEqual(["two.example.org", "/two/x", "public.example.com"]);
  });

  it("HTTP and HTTPS listeners on one hostname: each scheme gets its own listener's routes, so the HTTP→HTTPS redirect does not loop", async () => {
    const edge = await gatewayEdge([
      route("http-filter-redirect", [{ filters: [{ type: "RequestRedirect", requestRedirect: { scheme: "https", statusCode: 301 } }] }], { hostnames: ["redirect.example.com"], listener: "http", protocol: "HTTP" }),
      route("https-route", [{ backendRefs: [to(1)] }], { hostnames: ["redirect.example.com"], listener: "https", protocol: "HTTPS" }),
      // One protocol on a hostname: its routes serve both schemes (TLS ends at Cloudflare).
      route("http-only", [{ backendRefs: [to(2)] }], { hostnames: ["plain.example.com"], listener: "http", protocol: "HTTP" }),
    ]);
    const overHttp = async (host: string, path: string) => {
      const ctx = createExecutionContext();
      const res = await edge.fetch(new Request(`http://${host}${path}`, { headers: { host } }), ctx);
      await waitOnExecutionContext(ctx);
      return res;
    };
    const insecure = await overHttp("redirect.example.com", "/cart?x=1");
    expect([insecure.status, insecure.headers.get("location")]).toEqual([301, "https://redirect.example.com/cart?x=1"]);
    expect(await edge.backendOf("redirect.example.com", "/cart")).toBe("v1");
    expect(await edge.backendOf("plain.example.com")).toBe("v2");
    expect(((await (await overHttp("plain.example.com", "/")).json()) as Echo).node).toBe(b.name);
  });

  it("HTTPRouteHTTPSListener: routes of HTTPS listeners serve their hostnames; an unknown host is 404", async () => {
    const edge = await gatewayEdge([
      route("httproute-https-test", [{ backendRefs: [to(1)] }], { hostnames: ["example.org"], gateway: `${NS}/same-namespace-with-https-listener`, listener: "https", protocol: "HTTPS" }),
      route("httproute-https-test-no-hostname", [{ backendRefs: [to(2)] }], { hostnames: ["second-example.org"], gateway: `${NS}/same-namespace-with-https-listener`, listener: "https-with-hostname", protocol: "HTTPS" }),
    ]);
    expect(await edge.backendOf("example.org")).toBe("v1");
    expect(await edge.backendOf("unknown-example.org")).toBe("status 404");
    expect(await edge.backendOf("second-example.org")).toBe("v2");
  });

  it("GatewayHTTPListenerIsolation: a request reaches only the routes of the most specific listener for its host", async () => {
    const at = (name: string, hostnames: string[], path: string) =>
      route(name, [{ matches: [{ path: { type: "PathPrefix", value: path } }], backendRefs: [to(1)] }], { hostnames, gateway: `${NS}/http-listener-isolation`, listener: name, protocol: "HTTP" });
    const edge = await gatewayEdge([
      at("empty-hostname", ["*"], "/empty-hostname"),
      at("wildcard-example-com", ["*.example.com"], "/wildcard-example-com"),
      at("wildcard-foo-example-com", ["*.foo.example.com"], "/wildcard-foo-example-com"),
      at("abc-foo-example-com", ["abc.foo.example.com"], "/abc-foo-example-com"),
    ]);
    const served: Record<string, string> = { "bar.com": "/empty-hostname", "bar.example.com": "/wildcard-example-com", "bar.foo.example.com": "/wildcard-foo-example-com", "abc.foo.example.com": "/abc-foo-example-com" };
    for (const host of Object.keys(served)) {
      for (const path of Object.values(served)) expect(await edge.backendOf(host, path), `${host}${path}`).toBe(path === served[host] ? "v1" : "status 404");
    }
  });

  it("HTTPRouteNoBackendRefs: a rule without backendRefs (omitted or empty) answers 500; the others forward", async () => {
    const edge = await gatewayEdge([
      route("omitted-backendrefs", [
        { matches: [{ path: { type: "Exact", value: "/omitted-no-forward" } }] },
        { matches: [{ path: { type: "Exact", value: "/empty-no-forward" } }], backendRefs: [] },
        { matches: [{ path: { type: "PathPrefix", value: "/" } }], backendRefs: [to(1)] },
      ]),
    ]);
    expect(await edge.backendOf("example.com", "/forward")).toBe("v1");
    expect(await edge.backendOf("example.com", "/omitted-no-forward")).toBe("status 500");
    expect(await edge.backendOf("example.com", "/empty-no-forward")).toBe("status 500");
  });

  it("HTTPRouteNamedRule: named and unnamed rules both route", async () => {
    const edge = await gatewayEdge([
      route("http-named-rules", [
        { name: "named-rule", matches: [{ path: { type: "PathPrefix", value: "/named" } }], backendRefs: [to(1)] },
        { matches: [{ path: { type: "PathPrefix", value: "/unnamed" } }], backendRefs: [to(2)] },
      ]),
    ]);
    expect(await edge.backendOf("example.com", "/named")).toBe("v1");
    expect(await edge.backendOf("example.com", "/unnamed")).toBe("v2");
  });

  it("HTTPRouteBackendProtocolWebSocket: a WebSocket reaches the backend; text and binary frames come back", async () => {
    const o = inject("socketOrigins");
    const cluster = uniqueCluster("gw");
    const edge = testEdge({ EDGELB_CLUSTERS: cluster });
    await edge.seed({
      ...snapshot(cluster, [{ name: "ws-node", address: o.ws.address, healthy: true }], []),
      gateway: {
        backends: [{ namespace: NS, name: "infra-backend-v1", port: 8082, nodePort: o.ws.port }],
        routes: [route("backend-protocol-ws", [{ backendRefs: [{ namespace: NS, name: "infra-backend-v1", port: 8082 }] }])],
      },
    });
    const res = await edge.request("gw.example.com", "/ws", { headers: { upgrade: "websocket" } });
    expect(res.status).toBe(101);
    const c = new WsClient(res.webSocket!);
    c.ws.send("Websocket Support!");
    expect(await c.next()).toBe("Websocket Support!");
    c.ws.send(new Uint8Array([1, 2, 3, 4, 5, 6, 7]));
    expect([...new Uint8Array((await c.next()) as ArrayBuffer)]).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect((await c.close()).code).toBe(1000);
  });

  it("HTTPRouteInvalidBackendRefUnknownKind / HTTPRouteInvalidNonExistentBackendRef: 500, and only the invalid share gets it", async () => {
    let i = 0;
    const random = () => ((i++ % 4) + 0.5) / 4;
    const edge = await gatewayEdge([
      route("invalid", [
        { matches: [{ path: { type: "PathPrefix", value: "/only-invalid" } }], backendRefs: [{ invalid: "BackendNotFound: Service nonexistent not found" }] },
        { matches: [{ path: { type: "PathPrefix", value: "/half" } }], backendRefs: [to(1), { invalid: "InvalidKind", weight: 1 }] },
        { matches: [{ path: { type: "PathPrefix", value: "/none" } }] },
      ]),
    ], { random });
    const res = await edge.request("example.com", "/only-invalid");
    expect(res.status).toBe(500);
    expect(await res.text()).toMatch(/^edgelb: this route has no valid backend \(request /);
    expect(edge.logs.find((e) => e.event === "gateway.invalid_backend")).toMatchObject({ route: `${NS}/invalid`, reason: "BackendNotFound: Service nonexistent not found" });
    const statuses = [];
    for (let n = 0; n < 4; n++) statuses.push((await edge.request("example.com", "/half")).status);
    expect(statuses.sort()).toEqual([200, 200, 500, 500]);
    expect((await edge.request("example.com", "/none")).status).toBe(500);
  });

  it("a Service's own hostname beats a catch-all route; an exact route beats a Service's wildcard", async () => {
    const edge = await gatewayEdge(
      [route("catch-all", [{ backendRefs: [to(3)] }]), route("exact", [{ backendRefs: [to(2)] }], { hostnames: ["api.example.com"] })],
      {
        services: [
          service({ name: "shop", hostnames: ["shop.example.com"], nodePort: lab.nodePort, trafficPolicy: "Local", endpoints: [{ node: a.name, weight: 1 }] }),
          service({ name: "wild", hostnames: ["*.example.com"], nodePort: lab.nodePort, trafficPolicy: "Local", endpoints: [{ node: a.name, weight: 1 }] }),
        ],
      },
    );
    expect(await edge.backendOf("shop.example.com")).toBe("v1");
    expect(await edge.backendOf("www.example.com")).toBe("v1");
    expect(await edge.backendOf("api.example.com")).toBe("v2");
    expect(await edge.backendOf("elsewhere.test")).toBe("v3");
  });

  it("failover is unchanged: a backend with a dead node still answers from the live one", async () => {
    const cluster = uniqueCluster("gw");
    const edge = testEdge({ EDGELB_CLUSTERS: cluster });
    await edge.seed({
      ...snapshot(cluster, [{ name: "dead", address: lab.deadAddress, healthy: true }, ...nodesOf([a])], []),
      gateway: {
        backends: [{ namespace: NS, name: "svc", port: 80, nodePort: lab.nodePort }],
        routes: [route("failover", [{ backendRefs: [{ namespace: NS, name: "svc", port: 80 }] }])],
      },
    });
    for (let n = 0; n < 4; n++) {
      const res = await edge.request("example.com", "/");
      expect(res.status).toBe(200);
      expect(((await res.json()) as Echo).node).toBe(a.name);
    }
  });

  it("tables are compiled once per snapshot change: requests reuse them, a push replaces them", async () => {
    const edge = await gatewayEdge([route("first", [{ backendRefs: [to(1)] }])]);
    const compiled = edge.config.gateways;
    expect(await edge.backendOf("example.com")).toBe("v1");
    expect(await edge.backendOf("example.com", "/again")).toBe("v1");
    expect(edge.config.gateways).toBe(compiled);
    await edge.seed({ ...snapshot(edge.cluster, nodesOf([a, b, c]), []), gateway: { backends, routes: [route("second", [{ backendRefs: [to(2)] }])] } });
    expect(edge.config.gateways).not.toBe(compiled);
    expect(await edge.backendOf("example.com")).toBe("v2");
  });

  it("a snapshot whose route holds a catastrophic regex is refused and the last good one keeps serving", async () => {
    const edge = await gatewayEdge([route("good", [{ backendRefs: [to(1)] }])]);
    const bad = {
      ...snapshot(edge.cluster, nodesOf([a, b, c]), []),
      gateway: { backends, routes: [route("bad", [{ matches: [{ path: { type: "RegularExpression", value: "(a)\\1" } }], backendRefs: [to(2)] }])] },
    };
    const res = await edge.push(bad);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("not an RE2 regular expression");
    expect(await edge.backendOf("example.com")).toBe("v1");
  });
});

describe("a Service and a Gateway API route of different clusters on one hostname (issue 18)", () => {
  // Cluster `first` has the Service for shop.example.com on node a; cluster `second` an HTTPRoute for it to node c.
  async function twoClusters(order: "service-first" | "route-first", steering?: (svc: string, gw: string) => unknown) {
    const svcCluster = uniqueCluster("svc");
    const gwCluster = uniqueCluster("gw");
    const clusters = order === "service-first" ? [svcCluster, gwCluster] : [gwCluster, svcCluster];
    const edge = testEdge({
      EDGELB_CLUSTERS: clusters.join(","),
      ...(steering ? { EDGELB_STEERING: JSON.stringify({ "shop.example.com": steering(svcCluster, gwCluster) }) } : {}),
    });
    await edge.seed(snapshot(svcCluster, nodesOf([a]), [service({ hostnames: ["shop.example.com"], nodePort: lab.nodePort })]));
    await edge.seed({ ...snapshot(gwCluster, nodesOf([c]), []), gateway: { backends, routes: [route("shop", [{ backendRefs: [to(3)] }], { hostnames: ["shop.example.com"] })] } });
    return async () => {
      const res = await edge.request("shop.example.com", "/");
      expect(res.status).toBe(200);
      return ((await res.json()) as Echo).node === a.name ? "service" : "route";
    };
  }

  it("without steering, the cluster listed first in EDGELB_CLUSTERS serves, whichever kind it has", async () => {
    expect(await (await twoClusters("service-first"))()).toBe("service");
    expect(await (await twoClusters("route-first"))()).toBe("route");
  });

  it("a steering rule decides: a cluster it does not list never serves", async () => {
    const onlyGw = await twoClusters("service-first", (_svc, gw) => ({ policy: "failover", clusters: [gw] }));
    expect(await onlyGw()).toBe("route");
    const onlySvc = await twoClusters("route-first", (svc) => ({ policy: "failover", clusters: [svc] }));
    expect(await onlySvc()).toBe("service");
  });
});

describe("Service wildcard vs route wildcard (reviewer finding 4)", () => {
  it("the longer wildcard wins: a route's *.a.example.com beats a Service's *.example.com, and not the other way round", async () => {
    const edge = await gatewayEdge(
      [route("deep", [{ backendRefs: [to(2)] }], { hostnames: ["*.a.example.com"] }), route("shallow", [{ backendRefs: [to(3)] }], { hostnames: ["*.example.org"] })],
      {
        services: [
          service({ name: "wild", hostnames: ["*.example.com"], nodePort: lab.nodePort, trafficPolicy: "Local", endpoints: [{ node: a.name, weight: 1 }] }),
          service({ name: "deep-svc", hostnames: ["*.b.example.org"], nodePort: lab.nodePort, trafficPolicy: "Local", endpoints: [{ node: a.name, weight: 1 }] }),
        ],
      },
    );
    expect(await edge.backendOf("x.a.example.com")).toBe("v2");
    expect(await edge.backendOf("x.example.com")).toBe("v1");
    expect(await edge.backendOf("x.b.example.org")).toBe("v1");
    expect(await edge.backendOf("x.example.org")).toBe("v3");
  });
});

describe("a cluster that was never read (reviewer finding 3)", () => {
  it("a catch-all `*` route of another cluster does not answer for it: 503, not the catch-all", async () => {
    const kv = (env as unknown as { EDGELB_KV: KVNamespace }).EDGELB_KV;
    const readable = uniqueCluster("gw-any");
    const unread = uniqueCluster("gw-unread");
    await kv.put(snapshotKey(readable), JSON.stringify({ ...snapshot(readable, nodesOf([a, b, c]), []), gateway: { backends, routes: [route("catch-all", [{ backendRefs: [to(1)] }])] } }));
    // The unread cluster's key always fails (as KV over its quota does).
    const failing: ConfigKV = {
      getWithMetadata: ((key: string, type: "text") =>
        key === snapshotKey(unread) ? Promise.reject(new Error("KV GET failed: 429 Too Many Requests")) : kv.getWithMetadata(key, type)) as ConfigKV["getWithMetadata"],
    };
    const edge = testEdge({ EDGELB_CLUSTERS: `${readable},${unread}` }, { kv: failing });
    const res = await edge.request("app.example.com", "/");
    // app.example.com may be the unread cluster's Service: "try again", never the other cluster's catch-all.
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).not.toBeNull();
  });
});
