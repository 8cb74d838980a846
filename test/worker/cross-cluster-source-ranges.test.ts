// Audit hb18 item 6: each cluster's Service has its own
// loadBalancerSourceRanges, and a request that moves to the next cluster
// (cross-cluster failover inside the request) must obey that cluster's ranges,
// not the first one's. Against real nodes on loopback, two clusters behind one
// hostname with failover [eu, us]: eu allows 198.51.100.0/24, us 203.0.113.0/24.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { SimGroup } from "./global-setup.ts";
import { nodesOf, service, setBehavior, simGroup, snapshot, testEdge, uniqueCluster, type Echo, type TestEdge } from "./helpers.ts";

type Group = SimGroup & { release(): Promise<void> };
let eu: Group;
let us: Group;
beforeAll(async () => {
  [eu, us] = await Promise.all([simGroup(1), simGroup(1)]);
});
afterAll(async () => {
  await Promise.all([eu?.release(), us?.release()]);
});
beforeEach(async () => {
  await Promise.all([...eu.nodes, ...us.nodes].map((n) => setBehavior(n.name, { mode: "ok" })));
});

const host = "ranges.example.com";
const EU_CLIENT = "198.51.100.7";
const US_CLIENT = "203.0.113.9";

async function pair(): Promise<{ edge: TestEdge; euName: string; usName: string }> {
  const euName = uniqueCluster("eu");
  const usName = uniqueCluster("us");
  const edge = testEdge({ EDGELB_CLUSTERS: `${euName},${usName}`, EDGELB_STEERING: JSON.stringify({ [host]: { policy: "failover", clusters: [euName, usName] } }) });
  await edge.seed(snapshot(euName, nodesOf(eu.nodes), [service({ hostnames: [host], nodePort: eu.nodePort, sourceRanges: ["198.51.100.0/24"] })]));
  await edge.seed(snapshot(usName, nodesOf(us.nodes), [service({ hostnames: [host], nodePort: us.nodePort, sourceRanges: ["203.0.113.0/24"] })]));
  return { edge, euName, usName };
}

const usNodes = () => new Set(us.nodes.map((n) => n.name));
const euNodes = () => new Set(eu.nodes.map((n) => n.name));

describe("loadBalancerSourceRanges across clusters", () => {
  it("a request that fails over is not served by a next cluster whose Service refuses the client", async () => {
    const p = await pair();
    await Promise.all(eu.nodes.map((n) => setBehavior(n.name, { mode: "refuse" })));
    const res = await p.edge.request(host, "/", { headers: { "cf-connecting-ip": EU_CLIENT } });
    const body = await res.text();
    // Before the fix: 200 from us's node (log proxy.next_cluster from=eu to=us).
    expect(res.status, body).toBe(502);
    expect(body).not.toContain(us.nodes[0]!.name);
    expect(p.edge.logs.some((l) => l.event === "proxy.next_cluster" && l.to === p.usName)).toBe(false);
    expect(p.edge.logs.some((l) => l.event === "proxy.next_cluster_refused" && l.cluster === p.usName)).toBe(true);
    // The next cluster still takes the clients its own ranges allow when eu is down.
    const allowed = await p.edge.request(host, "/", { headers: { "cf-connecting-ip": US_CLIENT } });
    expect(allowed.status).toBe(200);
    expect(usNodes().has(((await allowed.json()) as Echo).node)).toBe(true);
  });

  it("a client the first cluster refuses is served by a listed cluster that allows it (not 403)", async () => {
    const p = await pair();
    const res = await p.edge.request(host, "/", { headers: { "cf-connecting-ip": US_CLIENT } });
    // Before the fix: 403 from eu's ranges although us allows the client.
    expect(res.status).toBe(200);
    expect(usNodes().has(((await res.json()) as Echo).node)).toBe(true);
    // eu's own clients are still served by eu first, and a client no cluster allows gets the 403.
    const euRes = await p.edge.request(host, "/", { headers: { "cf-connecting-ip": EU_CLIENT } });
    expect(euRes.status).toBe(200);
    expect(euNodes().has(((await euRes.json()) as Echo).node)).toBe(true);
    const nobody = await p.edge.request(host, "/", { headers: { "cf-connecting-ip": "192.0.2.1" } });
    expect(nobody.status).toBe(403);
    expect(await nobody.text()).toContain("192.0.2.1 is not allowed");
  });
});
