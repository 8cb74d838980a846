// A Cluster-policy Service scaled to 0: the agent publishes `endpoints: []`
// (no ready endpoint anywhere), and the edge answers 503 "no server is
// ready" at once — no node is tried (each would refuse: 502 after trying
// them all), nothing is ejected, and no cache may keep the answer.
import { describe, expect, it } from "vitest";
import type { GatewaySectionInput } from "../../worker/snapshot/gateway.ts";
import { lab, nodesOf, snapshot, service, testEdge, uniqueCluster } from "./helpers.ts";
import { edge, hits, host, origins, tag } from "./request-path.ts";

describe("a Cluster-policy Service with no ready endpoint", () => {
  it("answers 503 without trying a node, uncacheable, and serves again once endpoints come back", async () => {
    const e = await edge("socket");
    const cluster = e.cluster;
    const scaled = (endpoints?: []) =>
      snapshot(cluster, nodesOf(origins.nodes), [service({ hostnames: [host], nodePort: origins.port, ...(endpoints ? { endpoints } : {}) })]);

    await e.seed(scaled([]));
    const t = tag("scaled-to-0");
    const res = await e.request(host, `/echo?tag=${t}`, { headers: { "x-request-id": "req-zero" } });
    expect(res.status).toBe(503);
    expect(await res.text()).toBe("edgelb: no server is ready for this site (request req-zero)\n");
    expect(res.headers.get("retry-after")).toBe("10");
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect((await hits(t)).count).toBe(0);
    expect(e.logs.find((l) => l.event === "proxy.no_origins")).toMatchObject({ requestId: "req-zero", services: expect.stringContaining("default/") });
    expect(e.logs.some((l) => l.event === "proxy.retry" || l.event === "proxy.failed")).toBe(false);
    // The status page says no node serves it, as the router does.
    expect(e.status().clusters[0]!.services[0]!.counts).toEqual({ nodes: origins.nodes.length, serving: 0 });

    // Scaled back up: the agent drops the empty list, and every node serves again.
    await e.seed(scaled());
    const back = tag("scaled-up");
    expect((await e.request(host, `/echo?tag=${back}`)).status).toBe(200);
    expect((await hits(back)).count).toBe(1);
    expect(e.status().clusters[0]!.services[0]!.counts).toEqual({ nodes: origins.nodes.length, serving: origins.nodes.length });
  });

  it("does not empty a hostname another Service of the cluster still serves", async () => {
    const e = await edge("fetch");
    await e.seed(
      snapshot(e.cluster, nodesOf(origins.nodes), [
        service({ name: "old", hostnames: [host], nodePort: origins.port, endpoints: [] }),
        service({ name: "new", hostnames: [host], nodePort: origins.port }),
      ]),
    );
    for (let i = 0; i < 4; i++) {
      const t = tag("shared");
      expect((await e.request(host, `/echo?tag=${t}`)).status).toBe(200);
      expect((await hits(t)).count).toBe(1);
    }
  });

  it("as an HTTPRoute backend too: 503 for the rule whose Service has no endpoint, the others serve", async () => {
    const cluster = uniqueCluster("gw0");
    const e = testEdge({ EDGELB_CLUSTERS: cluster });
    const backend = (name: string, endpoints?: []) => ({ namespace: "apps", name, port: 80, nodePort: lab.nodePort, ...(endpoints ? { endpoints } : {}) });
    const gateway: GatewaySectionInput = {
      backends: [backend("api", []), backend("web")],
      routes: [
        {
          namespace: "apps",
          name: "split",
          creationTimestamp: "2026-12-01T10:00:00Z",
          gateway: "apps/edge",
          listener: "http",
          hostnames: ["app.example.com"],
          rules: [
            { matches: [{ path: { type: "PathPrefix", value: "/api" } }], backendRefs: [{ namespace: "apps", name: "api", port: 80 }] },
            { backendRefs: [{ namespace: "apps", name: "web", port: 80 }] },
          ],
        },
      ],
    };
    await e.seed({ ...snapshot(cluster, nodesOf(lab.nodes), []), gateway });
    const api = await e.request("app.example.com", "/api/cart");
    expect(api.status).toBe(503);
    expect(await api.text()).toMatch(/^edgelb: no server is ready for this site/);
    expect(api.headers.get("cache-control")).toBe("no-store");
    expect((await e.request("app.example.com", "/")).status).toBe(200);
  });
});
