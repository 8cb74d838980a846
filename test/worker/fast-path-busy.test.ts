// Who makes a location "busy" (rv-proxy 5): only a request that goes to an origin of a served
// cluster starts the fast path's check at the generations object. An unknown hostname, a control
// path or an answer from the edge itself (404, 403 source range) never does: anyone on the
// internet can send those from many places, and each busy location costs object requests a day.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { lab, nodesOf, service, snapshot, testEdge, uniqueCluster } from "./helpers.ts";

const real = (env as unknown as { EDGELB_GENERATIONS: DurableObjectNamespace }).EDGELB_GENERATIONS;

/** The generations namespace, counting calls to the object (the fast path takes a new stub per call). */
function countingGenerations() {
  let calls = 0;
  const ns = {
    idFromName: (name: string) => real.idFromName(name),
    get: (id: DurableObjectId) => {
      calls++;
      return real.get(id);
    },
  } as unknown as DurableObjectNamespace;
  return { ns, calls: () => calls };
}

async function busyEdge(holdS: string) {
  const cluster = uniqueCluster("busy");
  const gens = countingGenerations();
  let now = Date.now();
  const cache = await caches.open(uniqueCluster("busy-cache"));
  const edge = testEdge({ EDGELB_CLUSTERS: cluster, EDGELB_FAST_HOLD: holdS, EDGELB_FAST_CHECK: "5", EDGELB_GENERATIONS: gens.ns }, { cache, now: () => now });
  const node = lab.nodes[0]!;
  await edge.seed(
    snapshot(cluster, nodesOf([node]), [
      service({ name: "www", hostnames: ["www.example.com"], nodePort: lab.nodePort }),
      service({ name: "admin", hostnames: ["admin.example.com"], nodePort: lab.nodePort, sourceRanges: ["203.0.113.0/24"] }),
    ]),
  );
  const afterSeed = gens.calls(); // the push's publish
  /** What the internet can send without going to an origin: each answered by the edge itself. */
  const unrouted = async () => {
    for (let i = 0; i < 10; i++) {
      now += 6_000; // past the check interval and any lease each time
      expect((await edge.request(`nobody-${i}.example.net`)).status).toBe(404);
      expect((await edge.request("admin.example.com", "/", { headers: { "cf-connecting-ip": "198.51.100.7" } })).status).toBe(403);
      expect((await edge.request("localhost", "/__edgelb/")).status).toBeLessThan(500);
    }
  };
  return { edge, objectCalls: () => gens.calls() - afterSeed, unrouted, advance: (ms: number) => (now += ms) };
}

describe("the fast path's location is made busy by routed requests only", () => {
  it("held checks: requests to unknown hosts, refused by source ranges or to control paths start none; one routed request starts one", async () => {
    const t = await busyEdge("25");
    await t.unrouted();
    expect(t.objectCalls()).toBe(0);
    // The isolate knows no versions from the object yet: its first check is answered at once (not held 25 s).
    const res = await t.edge.request("www.example.com");
    expect(res.status).toBe(200);
    await res.body?.cancel();
    expect(t.objectCalls()).toBe(1);
    expect(t.edge.logs.filter((e) => e.event === "host.unknown").length).toBe(10);
  });

  it("polling (EDGELB_FAST_HOLD 0): unrouted requests never ask the object; after a routed request the next refresh does", async () => {
    const t = await busyEdge("0");
    await t.unrouted();
    expect(t.objectCalls()).toBe(0);
    const res = await t.edge.request("www.example.com");
    expect(res.status).toBe(200);
    await res.body?.cancel();
    t.advance(6_000);
    expect((await t.edge.request("nobody.example.net")).status).toBe(404); // its refresh asks: the location was busy
    expect(t.objectCalls()).toBe(1);
  });
});
