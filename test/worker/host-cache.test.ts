// The entry's memo of plain hostnames (worker/config/host-cache): a push that
// adds, removes or moves a hostname, or restricts it, is served right on the
// very next request, whatever that hostname's earlier requests left behind.
// Each test serves a hostname twice first (the second answer comes from the
// memo), then pushes, then asks once.
import { describe, expect, it } from "vitest";
import type { GatewaySectionInput } from "../../worker/snapshot/gateway.ts";
import { lab, nodesOf, service, snapshot, testEdge, uniqueCluster, type Echo } from "./helpers.ts";

const [a, b] = lab.nodes as [(typeof lab.nodes)[0], (typeof lab.nodes)[0]];

const on = (node: { name: string }) => ({ trafficPolicy: "Local" as const, endpoints: [{ node: node.name, weight: 1 }] });

async function nodeOf(res: Response): Promise<string> {
  expect(res.status).toBe(200);
  return ((await res.json()) as Echo).node;
}

async function servedTwice(edge: ReturnType<typeof testEdge>, host: string, node: string) {
  for (let i = 0; i < 2; i++) expect(await nodeOf(await edge.request(host))).toBe(node);
}

describe("the entry's memo of plain hostnames", () => {
  it("a hostname moved to another Service's nodes is served there on the next request, in any spelling of the Host", async () => {
    const cluster = uniqueCluster();
    const edge = testEdge({ EDGELB_CLUSTERS: cluster });
    await edge.seed(snapshot(cluster, nodesOf([a, b]), [service({ name: "one", hostnames: ["m.example.com"], nodePort: lab.nodePort, ...on(a) })]));
    await servedTwice(edge, "m.example.com", a.name);
    await servedTwice(edge, "M.Example.COM:8443", a.name);
    await edge.seed(snapshot(cluster, nodesOf([a, b]), [service({ name: "two", hostnames: ["m.example.com"], nodePort: lab.nodePort, ...on(b) })]));
    expect(await nodeOf(await edge.request("m.example.com"))).toBe(b.name);
    expect(await nodeOf(await edge.request("M.Example.COM:8443"))).toBe(b.name);
  });

  it("a hostname a push removes is not served on the next request (404)", async () => {
    const cluster = uniqueCluster();
    const edge = testEdge({ EDGELB_CLUSTERS: cluster });
    await edge.seed(snapshot(cluster, nodesOf([a]), [service({ hostnames: ["gone.example.com", "kept.example.com"], nodePort: lab.nodePort })]));
    await servedTwice(edge, "gone.example.com", a.name);
    await edge.seed(snapshot(cluster, nodesOf([a]), [service({ hostnames: ["kept.example.com"], nodePort: lab.nodePort })]));
    expect((await edge.request("gone.example.com")).status).toBe(404);
    expect(await nodeOf(await edge.request("kept.example.com"))).toBe(a.name);
  });

  it("an exact name a push adds beside the wildcard that served it wins on the next request", async () => {
    const cluster = uniqueCluster();
    const edge = testEdge({ EDGELB_CLUSTERS: cluster });
    const wild = service({ name: "wild", hostnames: ["*.w.example.com"], nodePort: lab.nodePort, ...on(a) });
    await edge.seed(snapshot(cluster, nodesOf([a, b]), [wild]));
    await servedTwice(edge, "x.w.example.com", a.name);
    await edge.seed(snapshot(cluster, nodesOf([a, b]), [wild, service({ name: "x", hostnames: ["x.w.example.com"], nodePort: lab.nodePort, ...on(b) })]));
    expect(await nodeOf(await edge.request("x.w.example.com"))).toBe(b.name);
    expect(await nodeOf(await edge.request("y.w.example.com"))).toBe(a.name);
  });

  it("source ranges a push adds to a served hostname refuse the next request (403)", async () => {
    const cluster = uniqueCluster();
    const edge = testEdge({ EDGELB_CLUSTERS: cluster });
    await edge.seed(snapshot(cluster, nodesOf([a]), [service({ hostnames: ["r.example.com"], nodePort: lab.nodePort })]));
    await servedTwice(edge, "r.example.com", a.name);
    await edge.seed(snapshot(cluster, nodesOf([a]), [service({ hostnames: ["r.example.com"], nodePort: lab.nodePort, sourceRanges: ["203.0.113.0/24"] })]));
    const refused = await edge.request("r.example.com", "/", { headers: { "cf-connecting-ip": "198.51.100.7" } });
    expect(refused.status).toBe(403);
    expect(await nodeOf(await edge.request("r.example.com", "/", { headers: { "cf-connecting-ip": "203.0.113.9" } }))).toBe(a.name);
  });

  it("an HTTPRoute a push adds for a name a Service's wildcard served takes it on the next request", async () => {
    const cluster = uniqueCluster();
    const edge = testEdge({ EDGELB_CLUSTERS: cluster });
    const wild = service({ name: "wild", hostnames: ["*.g.example.com"], nodePort: lab.nodePort, ...on(a) });
    await edge.seed(snapshot(cluster, nodesOf([a, b]), [wild]));
    await servedTwice(edge, "x.g.example.com", a.name);
    const NS = "gw";
    const gateway: GatewaySectionInput = {
      backends: [{ namespace: NS, name: "v2", port: 8080, nodePort: lab.nodePort, ...on(b) }],
      routes: [
        {
          namespace: NS,
          name: "exact",
          creationTimestamp: "2026-12-01T10:00:00Z",
          gateway: `${NS}/gw`,
          listener: "http",
          hostnames: ["x.g.example.com"],
          rules: [{ backendRefs: [{ namespace: NS, name: "v2", port: 8080 }] }],
        },
      ],
    };
    await edge.seed({ ...snapshot(cluster, nodesOf([a, b]), [wild]), gateway });
    expect(await nodeOf(await edge.request("x.g.example.com"))).toBe(b.name);
    expect(await nodeOf(await edge.request("y.g.example.com"))).toBe(a.name);
  });
});
