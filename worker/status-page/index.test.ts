// The status page through the whole worker: served without a token, carries
// no data, locked down by headers; the control endpoints behind it unchanged.
import { describe, expect, it } from "vitest";
import { storefrontSnapshot } from "../../test/fixtures/gateway-snapshot.ts";
import { testEdge } from "../../test/worker/helpers.ts";
import { SNAPSHOT_SCHEMA, type SnapshotInput } from "../snapshot/schema.ts";

describe("GET /__edgelb/", () => {
  it("serves the page without a token, on a control hostname (loopback by default), with no data in it", async () => {
    const res = await testEdge().request("localhost", "/__edgelb/");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const html = await res.text();
    expect(html).toContain('<script src="/__edgelb/status.js" defer></script>');
    expect(html).toContain('<form id="login" hidden>');
    expect(html).not.toMatch(/generation|node-\d/);
  });

  it("forbids inline script, framing, caching and referrers", async () => {
    const res = await testEdge().request("localhost", "/__edgelb/");
    const csp = res.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain("unsafe-inline");
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("referrer-policy")).toBe("no-referrer");
    expect(res.headers.get("x-frame-options")).toBe("DENY");
  });

  it("redirects /__edgelb to /__edgelb/ and serves its script and stylesheet", async () => {
    const edge = testEdge();
    const redirect = await edge.request("localhost", "/__edgelb");
    expect(redirect.status).toBe(301);
    expect(redirect.headers.get("location")).toBe("/__edgelb/");
    const js = await edge.request("localhost", "/__edgelb/status.js");
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    const script = await js.text();
    expect(script).toContain('"/__edgelb/v1/status"');
    expect(script).toContain('"Bearer " + token');
    // The token travels in a header or the fragment, never in a URL a server logs.
    expect(script).not.toMatch(/\?token=|[?&]token=" \+/);
    const css = await edge.request("localhost", "/__edgelb/status.css");
    expect(css.headers.get("content-type")).toBe("text/css; charset=utf-8");
  });

  it("leaves the control endpoints as they were: status still needs the token", async () => {
    const edge = testEdge();
    expect((await edge.request("localhost", "/__edgelb/v1/status")).status).toBe(401);
    expect((await edge.request("localhost", "/__edgelb/healthz")).status).toBe(200);
    expect((await edge.request("localhost", "/__edgelb/status.json")).status).toBe(404);
    // Other methods on the page's path reach the control app, not the page.
    expect((await edge.request("localhost", "/__edgelb/", { method: "POST" })).status).toBe(404);
  });
});

describe("GET /__edgelb/v1/status: Gateway API routes", () => {
  it("lists hostname → routes with matches and backends, and the routes the agent refused with why", async () => {
    const edge = testEdge();
    await edge.seed(
      storefrontSnapshot({
        cluster: "default",
        generation: 1,
        nodeAddress: "127.65.3.11",
        rule: { matches: [{ path: { type: "PathPrefix", value: "/api" }, method: "POST" }], backendRefs: [{ namespace: "shop", name: "web", port: 80, weight: 3 }] },
        refused: [{ namespace: "shop", name: "too-many", gateway: "edge/public", reason: "UnsupportedValue: not served: the edge's route tables are full" }],
      }),
    );
    const res = await edge.request("localhost", "/__edgelb/v1/status", { headers: { authorization: "Bearer test-push-token" } });
    const body = (await res.json()) as { clusters: { name: string; gateway?: unknown }[] };
    expect(body.clusters.find((c) => c.name === "default")?.gateway).toEqual({
      routes: 1,
      hostnames: [
        {
          hostname: "shop.example.com",
          routes: [{ route: "shop/storefront", gateway: "edge/public", listener: "http", rules: [{ matches: ["PathPrefix /api · method POST"], backends: [{ backend: "shop/web:80", weight: 3, invalid: null }], filters: [] }] }],
          moreRoutes: 0,
        },
      ],
      moreHostnames: 0,
      refused: [{ route: "shop/too-many", gateway: "edge/public", reason: "UnsupportedValue: not served: the edge's route tables are full" }],
      moreRefused: 0,
    });
  });
});

describe("GET /__edgelb/v1/status: a route hostname two clusters claim", () => {
  it("shows, in the cluster that lost it, which cluster serves the hostname", async () => {
    const edge = testEdge();
    const snap = (cluster: string): SnapshotInput => ({
      schema: SNAPSHOT_SCHEMA,
      cluster,
      generation: 2, // the test before stored generation 1 of "default" in this file's KV
      publishedAt: new Date().toISOString(),
      nodes: [{ name: "n1", address: "127.65.3.12", healthy: true }],
      services: [],
      gateway: {
        backends: [{ namespace: "shop", name: "web", port: 80, nodePort: 30080 }],
        routes: [{ namespace: "shop", name: "storefront", creationTimestamp: "2026-12-01T00:00:00Z", gateway: "edge/public", hostnames: ["both.example.com"], rules: [{ backendRefs: [{ namespace: "shop", name: "web", port: 80 }] }] }],
      },
    });
    // EDGELB_CLUSTERS is "default,east,west": default comes first and keeps the hostname.
    await edge.seed(snap("east"));
    await edge.seed(snap("default"));
    const res = await edge.request("localhost", "/__edgelb/v1/status", { headers: { authorization: "Bearer test-push-token" } });
    const body = (await res.json()) as { clusters: { name: string; gateway?: { refused: unknown[] } }[] };
    expect(body.clusters.find((c) => c.name === "east")?.gateway?.refused).toEqual([
      { route: "every route for both.example.com", gateway: null, reason: "hostname both.example.com is served by cluster default, which comes first in EDGELB_CLUSTERS" },
    ]);
    expect(body.clusters.find((c) => c.name === "default")?.gateway?.refused).toEqual([]);
  });
});
