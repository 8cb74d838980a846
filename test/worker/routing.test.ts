// Routing by Host against the shared nodes 127.0.0.11-13.
import { describe, expect, it } from "vitest";
import { lab, nodesOf, service, snapshot, testEdge, uniqueCluster, type Echo } from "./helpers.ts";

const [a, b, c] = lab.nodes as [(typeof lab.nodes)[0], (typeof lab.nodes)[0], (typeof lab.nodes)[0]];

describe("routing by Host", () => {
  it("matches case-insensitively, ignores the port, and supports one-label wildcards", async () => {
    const cluster = uniqueCluster();
    const edge = testEdge({ EDGELB_CLUSTERS: cluster });
    await edge.seed(
      snapshot(cluster, nodesOf([a]), [
        service({ name: "shop", hostnames: ["shop.example.com"], nodePort: lab.nodePort }),
        service({ name: "apps", hostnames: ["*.apps.example.com"], nodePort: lab.nodePort }),
      ]),
    );
    for (const host of ["shop.example.com", "SHOP.Example.COM", "shop.example.com:8443", "shop.example.com."]) {
      const res = await edge.request(host, "/");
      expect(res.status, host).toBe(200);
      expect(((await res.json()) as Echo).node).toBe(a.name);
    }
    expect((await edge.request("blog.apps.example.com", "/")).status).toBe(200);
    // A wildcard covers exactly one label, like a TLS certificate.
    const deep = await edge.request("x.blog.apps.example.com", "/");
    expect(deep.status).toBe(404);
    expect(await deep.text()).toMatch(/^edgelb: this hostname is not served here \(request /);
    expect((await edge.request("apps.example.com", "/")).status).toBe(404);
  });

  it("prefers an exact name over a wildcard", async () => {
    const cluster = uniqueCluster();
    const edge = testEdge({ EDGELB_CLUSTERS: cluster });
    await edge.seed(
      snapshot(cluster, nodesOf([a, b]), [
        service({ name: "wild", hostnames: ["*.example.com"], nodePort: lab.nodePort, trafficPolicy: "Local", endpoints: [{ node: a.name, weight: 1 }] }),
        service({ name: "api", hostnames: ["api.example.com"], nodePort: lab.nodePort, trafficPolicy: "Local", endpoints: [{ node: b.name, weight: 1 }] }),
      ]),
    );
    expect(((await (await edge.request("api.example.com")).json()) as Echo).node).toBe(b.name);
    expect(((await (await edge.request("www.example.com")).json()) as Echo).node).toBe(a.name);
  });

  it("answers 404 with a request id for an unknown host, and logs the host under that id", async () => {
    const edge = testEdge({ EDGELB_CLUSTERS: uniqueCluster() });
    const res = await edge.request("nobody.example.org:8080", "/x");
    expect(res.status).toBe(404);
    const id = res.headers.get("x-request-id")!;
    expect(await res.text()).toBe(`edgelb: this hostname is not served here (request ${id})\n`);
    expect(edge.logs.find((e) => e.event === "host.unknown")).toEqual({ level: "info", event: "host.unknown", requestId: id, host: "nobody.example.org", path: "/x" });
  });

  it("serves a hostname several clusters claim from the first in EDGELB_CLUSTERS; the second claim is refused and logged", async () => {
    const east = uniqueCluster("east");
    const west = uniqueCluster("west");
    const edge = testEdge({ EDGELB_CLUSTERS: `${east},${west}` });
    // The later cluster pushes first: order is the worker's, not the agents'.
    await edge.seed(snapshot(west, nodesOf([b, c]), [service({ hostnames: ["merged.example.com"], nodePort: lab.nodePort })]));
    await edge.seed(snapshot(east, nodesOf([a]), [service({ hostnames: ["merged.example.com"], nodePort: lab.nodePort })]));
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const echo = (await (await edge.request("merged.example.com")).json()) as Echo;
      seen.add(echo.node);
    }
    expect([...seen]).toEqual([a.name]);
    expect(edge.logs.filter((l) => l.event === "routes.claim_refused")).toEqual([
      expect.objectContaining({ level: "warn", host: "merged.example.com", cluster: west, servedBy: east }),
    ]);
  });

  it("routes only clusters listed in EDGELB_CLUSTERS", async () => {
    const served = uniqueCluster();
    const other = uniqueCluster();
    const edge = testEdge({ EDGELB_CLUSTERS: served });
    const res = await edge.push(snapshot(other, nodesOf([a]), [service({ hostnames: ["other.example.com"], nodePort: lab.nodePort })]));
    expect(res.status).toBe(200);
    const body = (await res.json()) as { routed: boolean; warning: string };
    expect(body.routed).toBe(false);
    expect(body.warning).toContain("not in this worker's EDGELB_CLUSTERS");
    expect((await edge.request("other.example.com")).status).toBe(404);
  });
});
