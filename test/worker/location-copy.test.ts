// Two isolates of one location (two Edges sharing one Cache, one clock) through
// the whole worker: a push or a deletion taken by one reaches the other
// through the location copy, and the other does not read KV for it.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ConfigKV } from "../../worker/config/index.ts";
import { lab, nodesOf, service, snapshot, testEdge, TOKEN, uniqueCluster } from "./helpers.ts";

const kv = (env as unknown as { EDGELB_KV: KVNamespace }).EDGELB_KV;
const [a] = lab.nodes as [(typeof lab.nodes)[0]];

async function twoIsolates() {
  const cluster = uniqueCluster("loccopy");
  const cache = await caches.open(uniqueCluster("kv14-cache"));
  let now = Date.now();
  let reads = 0;
  const counting: ConfigKV = {
    getWithMetadata: ((key: string, type: "text") => {
      reads++;
      return kv.getWithMetadata(key, type);
    }) as ConfigKV["getWithMetadata"],
  };
  const vars = { EDGELB_CLUSTERS: cluster, EDGELB_CACHE_TTL: "60" };
  const pusher = testEdge(vars, { cache, now: () => now });
  const other = testEdge(vars, { cache, kv: counting, now: () => now });
  const snap = (host: string, gen?: number) => snapshot(cluster, nodesOf([a]), [service({ hostnames: [host], nodePort: lab.nodePort })], gen);
  return { cluster, pusher, other, snap, reads: () => reads, advance: (ms: number) => (now += ms) };
}

describe("the location copy through the worker", () => {
  it("a push taken by one isolate is served by the location's other isolate after one check, without a KV read", async () => {
    const t = await twoIsolates();
    await t.pusher.seed(t.snap("one.example.com"));
    expect((await t.other.request("one.example.com")).status).toBe(200);
    expect(t.reads()).toBe(0); // even the cold isolate's first load came from the copy

    await t.pusher.seed(t.snap("two.example.com"));
    expect((await t.pusher.request("two.example.com")).status).toBe(200);
    t.advance(2_000);
    await t.other.request("one.example.com"); // the check runs after this answer (waitUntil)
    expect((await t.other.request("two.example.com")).status).toBe(200);
    expect(t.reads()).toBe(0);
  });

  it("a deletion taken by one isolate stops the other after one check", async () => {
    const t = await twoIsolates();
    await t.pusher.seed(t.snap("gone.example.com"));
    expect((await t.other.request("gone.example.com")).status).toBe(200);
    const del = await t.pusher.request("localhost", `/__edgelb/v1/clusters/${t.cluster}`, { method: "DELETE", headers: { authorization: `Bearer ${TOKEN}` } });
    expect(del.status).toBe(200);
    t.advance(2_000);
    await t.other.request("gone.example.com");
    expect((await t.other.request("gone.example.com")).status).toBe(404);
    expect(t.reads()).toBe(0);
  });
});
