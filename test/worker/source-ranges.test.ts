// loadBalancerSourceRanges through the whole worker: the snapshot carries the
// Service's ranges, the edge answers 403 for a client outside them before any
// origin is contacted, and serves a client inside them.
import { describe, expect, it } from "vitest";
import { defaultTransports, type Transports } from "../../worker/transport/index.ts";
import type { OriginRequest } from "../../worker/transport/types.ts";
import { lab, nodesOf, service, snapshot, testEdge, uniqueCluster, type Echo } from "./helpers.ts";

function counting(): { transports: Transports; sent: string[] } {
  const sent: string[] = [];
  const wrap = (t: Transports["fetch"]) => ({
    name: t.name,
    send(req: OriginRequest) {
      sent.push(req.origin.node);
      return t.send(req);
    },
  });
  return { transports: { fetch: wrap(defaultTransports.fetch), socket: wrap(defaultTransports.socket) }, sent };
}

describe("loadBalancerSourceRanges at the edge", () => {
  it("403 before any origin connection for clients outside the ranges; served inside them", async () => {
    const cluster = uniqueCluster();
    const { transports, sent } = counting();
    const edge = testEdge({ EDGELB_CLUSTERS: cluster }, { transports });
    const node = lab.nodes[0]!;
    await edge.seed(
      snapshot(cluster, nodesOf([node]), [
        service({ name: "admin", hostnames: ["admin.example.com"], nodePort: lab.nodePort, sourceRanges: ["203.0.113.0/24", "2001:db8:1::/48"] }),
        service({ name: "www", hostnames: ["www.example.com"], nodePort: lab.nodePort }),
      ]),
    );

    const outside = await edge.request("admin.example.com", "/", { headers: { "cf-connecting-ip": "198.51.100.7" } });
    expect(outside.status).toBe(403);
    expect(await outside.text()).toContain("198.51.100.7 is not allowed");
    const noClient = await edge.request("admin.example.com", "/");
    expect(noClient.status).toBe(403);
    expect(sent).toEqual([]);

    for (const ip of ["203.0.113.50", "2001:db8:1:2::9"]) {
      const inside = await edge.request("admin.example.com", "/", { headers: { "cf-connecting-ip": ip } });
      expect(inside.status, ip).toBe(200);
      expect(((await inside.json()) as Echo).node).toBe(node.name);
    }
    // A Service without ranges stays open to everyone.
    const open = await edge.request("www.example.com", "/", { headers: { "cf-connecting-ip": "198.51.100.7" } });
    expect(open.status).toBe(200);
    await open.body?.cancel();
    expect(sent).toHaveLength(3);
  });

  it("the push endpoint refuses a snapshot with an invalid range (the last good one keeps serving)", async () => {
    const cluster = uniqueCluster();
    const edge = testEdge({ EDGELB_CLUSTERS: cluster });
    const node = lab.nodes[0]!;
    await edge.seed(snapshot(cluster, nodesOf([node]), [service({ hostnames: ["r.example.com"], nodePort: lab.nodePort, sourceRanges: ["203.0.113.0/24"] })]));
    const bad = await edge.push(snapshot(cluster, nodesOf([node]), [service({ hostnames: ["r.example.com"], nodePort: lab.nodePort, sourceRanges: ["203.0.113.0/33"] })]));
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain("sourceRanges");
    expect((await edge.request("r.example.com", "/", { headers: { "cf-connecting-ip": "198.51.100.1" } })).status).toBe(403);
  });
});
