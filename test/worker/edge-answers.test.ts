// A route's ResponseHeaderModifier edits the app's answers, never the edge's own (wx18, rv-attack §6b):
// a rule setting Cache-Control for its assets must not make the scale-to-zero 503 cacheable.
import { describe, expect, it } from "vitest";
import type { GatewaySectionInput } from "../../worker/snapshot/gateway.ts";
import { lab, nodesOf, snapshot, testEdge, uniqueCluster } from "./helpers.ts";

const [a] = lab.nodes as [(typeof lab.nodes)[0]];
const NS = "edge-answers";

describe("route response edits and the edge's own answers", () => {
  it("the no-store 503 of a backend with no ready endpoint keeps no-store and Retry-After; an origin answer gets the edits", async () => {
    const cluster = uniqueCluster("ea");
    const edge = testEdge({ EDGELB_CLUSTERS: cluster });
    const backends: GatewaySectionInput["backends"] = [
      { namespace: NS, name: "scaled", port: 8080, nodePort: lab.nodePort, trafficPolicy: "Local", endpoints: [] },
      { namespace: NS, name: "up", port: 8080, nodePort: lab.nodePort, trafficPolicy: "Local", endpoints: [{ node: a.name, weight: 1 }] },
    ];
    const edits = { type: "ResponseHeaderModifier", responseHeaderModifier: { set: [{ name: "Cache-Control", value: "public, max-age=86400" }], remove: ["Retry-After"] } } as const;
    const rule = (path: string, name: string) => ({ matches: [{ path: { type: "PathPrefix" as const, value: path } }], filters: [edits], backendRefs: [{ namespace: NS, name, port: 8080 }] });
    await edge.seed({
      ...snapshot(cluster, nodesOf([a]), []),
      gateway: { backends, routes: [{ namespace: NS, name: "r", creationTimestamp: "2026-12-01T10:00:00Z", gateway: `${NS}/gw`, listener: "http", hostnames: ["*"], rules: [rule("/scaled", "scaled"), rule("/up", "up")] }] },
    } as never);
    const down = await edge.request("shop.example.com", "/scaled/");
    expect(down.status).toBe(503);
    expect(down.headers.get("cache-control")).toBe("no-store");
    expect(down.headers.get("retry-after")).toBe("10");
    const up = await edge.request("shop.example.com", "/up/");
    expect(up.status).toBe(200);
    expect(up.headers.get("cache-control")).toBe("public, max-age=86400");
  });
});
