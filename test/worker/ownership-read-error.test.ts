// Review finding 6 (issue 18): an isolate whose KV read of the earlier cluster
// failed must not hand that cluster's hostname to a later claimer.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ConfigKV } from "../../worker/config/index.ts";
import { snapshotKey } from "../../worker/snapshot/schema.ts";
import { lab, nodesOf, service, snapshot, testEdge, uniqueCluster, type Echo } from "./helpers.ts";

describe("hostname ownership when an earlier cluster cannot be read", () => {
  it("a KV read error on the first cluster does not move its hostname to the second", async () => {
    const [a, b] = lab.nodes as [(typeof lab.nodes)[0], (typeof lab.nodes)[0]];
    const first = uniqueCluster("first");
    const second = uniqueCluster("second");
    const vars = { EDGELB_CLUSTERS: `${first},${second}`, EDGELB_CACHE_TTL: "0" };
    const seeder = testEdge(vars);
    await seeder.seed(snapshot(first, nodesOf([a]), [service({ hostnames: ["owned.example.com"], nodePort: lab.nodePort })]));
    await seeder.seed(snapshot(second, nodesOf([b]), [service({ hostnames: ["owned.example.com"], nodePort: lab.nodePort })]));

    const real = (env as unknown as { EDGELB_KV: KVNamespace }).EDGELB_KV;
    const kv = {
      getWithMetadata: ((key: string, type: "text") =>
        key === snapshotKey(first) ? Promise.reject(new Error("KV GET failed: 503")) : real.getWithMetadata(key, type)) as ConfigKV["getWithMetadata"],
    } as ConfigKV;
    const isolate = testEdge(vars, { kv });
    const res = await isolate.request("owned.example.com", "/");
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).not.toBeNull();

    // The seeding isolate, which read both, serves the first cluster's node.
    const ok = await seeder.request("owned.example.com", "/");
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as Echo).node).toBe(a.name);
  });

  it("nor to a later cluster's exact HTTPRoute for it", async () => {
    const [a, b] = lab.nodes as [(typeof lab.nodes)[0], (typeof lab.nodes)[0]];
    const first = uniqueCluster("first");
    const second = uniqueCluster("second");
    const vars = { EDGELB_CLUSTERS: `${first},${second}`, EDGELB_CACHE_TTL: "0" };
    const seeder = testEdge(vars);
    await seeder.seed(snapshot(first, nodesOf([a]), [service({ hostnames: ["routed.example.com"], nodePort: lab.nodePort })]));
    await seeder.seed({
      ...snapshot(second, nodesOf([b]), []),
      gateway: {
        backends: [{ namespace: "default", name: "web", port: 80, nodePort: lab.nodePort }],
        routes: [
          {
            namespace: "default",
            name: "r",
            creationTimestamp: "2026-12-01T10:00:00Z",
            gateway: "default/gw",
            listener: "http",
            hostnames: ["routed.example.com"],
            rules: [{ backendRefs: [{ namespace: "default", name: "web", port: 80 }] }],
          },
        ],
      },
    });
    const real = (env as unknown as { EDGELB_KV: KVNamespace }).EDGELB_KV;
    const kv = {
      getWithMetadata: ((key: string, type: "text") =>
        key === snapshotKey(first) ? Promise.reject(new Error("KV GET failed: 503")) : real.getWithMetadata(key, type)) as ConfigKV["getWithMetadata"],
    } as ConfigKV;
    const res = await testEdge(vars, { kv }).request("routed.example.com", "/");
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).not.toBeNull();
  });

  it("an earlier cluster's catch-all `*` HTTPRoute does not take a later cluster's Service hostname", async () => {
    const [a, b] = lab.nodes as [(typeof lab.nodes)[0], (typeof lab.nodes)[0]];
    const first = uniqueCluster("first");
    const second = uniqueCluster("second");
    const edge = testEdge({ EDGELB_CLUSTERS: `${first},${second}` });
    await edge.seed({
      ...snapshot(first, nodesOf([a]), []),
      gateway: {
        backends: [{ namespace: "default", name: "bk", port: 8080, nodePort: lab.nodePort, trafficPolicy: "Local", endpoints: [{ node: a.name, weight: 1 }] }],
        routes: [{ namespace: "default", name: "catch-all", creationTimestamp: "2026-12-01T10:00:00Z", gateway: "default/g", listener: "http", hostnames: ["*"], rules: [{ backendRefs: [{ namespace: "default", name: "bk", port: 8080 }] }] }],
      },
    });
    await edge.seed(snapshot(second, nodesOf([b]), [service({ hostnames: ["b.example.com"], nodePort: lab.nodePort })]));
    const res = await edge.request("b.example.com", "/");
    expect(res.status).toBe(200);
    expect(((await res.json()) as Echo).node).toBe(b.name);
  });
});
