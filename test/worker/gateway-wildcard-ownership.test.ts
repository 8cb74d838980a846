// Issue 18 ownership for HTTPRoute hostnames, as for Services: the first cluster
// in EDGELB_CLUSTERS owns every name under its `*.suffix` route. A later
// cluster's exact name (or longer wildcard) under it is refused, logged once per
// change (gateway.hostname_conflict) and shown on the status page; before, the
// later cluster's exact table won the lookup and took the name (audit hb18-9).
import { describe, expect, it } from "vitest";
import type { GatewaySectionInput } from "../../worker/snapshot/gateway.ts";
import { lab, nodesOf, service, snapshot, testEdge, TOKEN, uniqueCluster, type Echo } from "./helpers.ts";

const [a, b] = lab.nodes as [(typeof lab.nodes)[0], (typeof lab.nodes)[0]];
const NS = "own";
const backend = (node: string): GatewaySectionInput["backends"] => [{ namespace: NS, name: "bk", port: 8080, nodePort: lab.nodePort, trafficPolicy: "Local" as const, endpoints: [{ node, weight: 1 }] }];
const route = (name: string, hostnames: string[]) =>
  ({ namespace: NS, name, creationTimestamp: "2026-12-01T10:00:00Z", gateway: `${NS}/g`, listener: "http", hostnames, rules: [{ backendRefs: [{ namespace: NS, name: "bk", port: 8080 }] }] }) as GatewaySectionInput["routes"][number];

async function servedBy(edge: ReturnType<typeof testEdge>, host: string): Promise<string> {
  const res = await edge.request(host, "/");
  return res.status === 200 ? ((await res.json()) as Echo).node : `status ${res.status}`;
}

describe("HTTPRoute hostnames under an earlier cluster's wildcard route", () => {
  it("an exact name and a longer wildcard of a later cluster are refused: the earlier cluster serves them, the log and the status page say why", async () => {
    const first = uniqueCluster("first");
    const second = uniqueCluster("second");
    const edge = testEdge({ EDGELB_CLUSTERS: `${first},${second}` });
    await edge.seed({ ...snapshot(first, nodesOf([a]), []), gateway: { backends: backend(a.name), routes: [route("wild", ["*.example.com"])] } });
    await edge.seed({ ...snapshot(second, nodesOf([b]), []), gateway: { backends: backend(b.name), routes: [route("pay", ["pay.example.com", "*.eu.example.com", "second-only.test"])] } });

    expect(await servedBy(edge, "pay.example.com")).toBe(a.name);
    expect(await servedBy(edge, "x.eu.example.com")).toBe(a.name);
    // A name outside the wildcard stays the later cluster's.
    expect(await servedBy(edge, "second-only.test")).toBe(b.name);

    const logged = edge.logs.filter((l) => l.event === "gateway.hostname_conflict");
    expect(logged).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ hostname: "pay.example.com", kept: first, dropped: second, under: "*.example.com" }),
        expect.objectContaining({ hostname: "*.eu.example.com", kept: first, dropped: second, under: "*.example.com" }),
      ]),
    );
    expect(logged.some((l) => l.hostname === "second-only.test")).toBe(false);

    const res = await edge.request("localhost", "/__edgelb/v1/status", { headers: { authorization: `Bearer ${TOKEN}` } });
    const body = (await res.json()) as { clusters: { name: string; gateway?: { refused: { route: string; reason: string }[] } }[] };
    const refused = body.clusters.find((c) => c.name === second)?.gateway?.refused ?? [];
    expect(refused).toContainEqual({
      route: "every route for pay.example.com",
      gateway: null,
      reason: `hostname pay.example.com is under *.example.com, which cluster ${first} serves and comes first in EDGELB_CLUSTERS`,
    });
    expect(refused.map((r) => r.route)).toContain("every route for *.eu.example.com");
  });

  it("the earlier cluster's exact name is not taken by a later cluster's wildcard (and Services behave the same: control)", async () => {
    const first = uniqueCluster("first");
    const second = uniqueCluster("second");
    const edge = testEdge({ EDGELB_CLUSTERS: `${first},${second}` });
    await edge.seed({ ...snapshot(first, nodesOf([a]), []), gateway: { backends: backend(a.name), routes: [route("pay", ["pay.example.com"])] } });
    await edge.seed({ ...snapshot(second, nodesOf([b]), []), gateway: { backends: backend(b.name), routes: [route("wild", ["*.example.com"])] } });
    expect(await servedBy(edge, "pay.example.com")).toBe(a.name);
    expect(await servedBy(edge, "shop.example.com")).toBe(b.name);
    expect(edge.logs.filter((l) => l.event === "gateway.hostname_conflict")).toEqual([]);

    const s1 = uniqueCluster("first");
    const s2 = uniqueCluster("second");
    const services = testEdge({ EDGELB_CLUSTERS: `${s1},${s2}` });
    await services.seed(snapshot(s1, nodesOf([a]), [service({ hostnames: ["*.example.com"], nodePort: lab.nodePort })]));
    await services.seed(snapshot(s2, nodesOf([b]), [service({ hostnames: ["pay.example.com"], nodePort: lab.nodePort })]));
    expect(await servedBy(services, "pay.example.com")).toBe(a.name);
  });
});
