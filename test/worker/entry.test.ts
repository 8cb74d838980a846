// The deployed entry point (worker/index.ts) with the bindings from
// wrangler.toml and the test vars (EDGELB_PUSH_TOKEN, EDGELB_CLUSTERS).
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { lab, nodesOf, service, snapshot, TOKEN, testEdge, type Echo } from "./helpers.ts";

const worker = (exports as unknown as { default: { fetch(req: Request): Promise<Response> } }).default;

describe("worker entry point", () => {
  it("serves healthz, accepts a push for a served cluster and proxies with it", async () => {
    expect((await worker.fetch(new Request("https://localhost/__edgelb/healthz"))).status).toBe(200);
    const snap = snapshot("east", nodesOf(lab.nodes), [service({ hostnames: ["entry.example.com"], nodePort: lab.nodePort })]);
    const pushed = await worker.fetch(
      new Request("https://localhost/__edgelb/v1/clusters/east", {
        method: "PUT",
        headers: { authorization: `Bearer ${TOKEN}` },
        body: JSON.stringify(snap),
      }),
    );
    expect(await pushed.json()).toMatchObject({ accepted: true, routed: true });
    const res = await worker.fetch(new Request("https://entry.example.com/x?y=1"));
    expect(res.status).toBe(200);
    expect((await res.json()) as Echo).toMatchObject({ path: "/x", query: "y=1" });
  });
});

describe("request logs", () => {
  it("writes one JSON line per proxied request only when EDGELB_REQUEST_LOGS is true", async () => {
    const cluster = "logs-" + Date.now().toString(36);
    const snap = snapshot(cluster, nodesOf(lab.nodes), [service({ hostnames: ["logs.example.com"], nodePort: lab.nodePort })]);
    const on = testEdge({ EDGELB_CLUSTERS: cluster, EDGELB_REQUEST_LOGS: "true" });
    await on.seed(snap);
    await (await on.request("logs.example.com", "/p?q=1", { headers: { "x-request-id": "rid-1" } })).text();
    expect(on.logs.filter((l) => l.event === "request")).toEqual([
      expect.objectContaining({ level: "info", requestId: "rid-1", method: "GET", host: "logs.example.com", path: "/p", status: 200, attempt: 1 }),
    ]);
    const off = testEdge({ EDGELB_CLUSTERS: cluster, EDGELB_REQUEST_LOGS: "false" });
    await (await off.request("logs.example.com", "/p")).text();
    expect(off.logs.filter((l) => l.event === "request")).toEqual([]);
  });
});

describe("background refresh through the request path", () => {
  it("serves the copy in memory while KV is re-read in waitUntil, then the new one", async () => {
    const cluster = "ttl-" + Date.now().toString(36);
    const e = testEdge({ EDGELB_CLUSTERS: cluster, EDGELB_CACHE_TTL: "0" });
    await e.seed(snapshot(cluster, nodesOf(lab.nodes), [service({ hostnames: ["before.example.com"], nodePort: lab.nodePort })]));
    // The first request loads every served cluster from KV (and waits for it).
    expect((await e.request("before.example.com")).status).toBe(200);
    const kv = (env as unknown as { EDGELB_KV: KVNamespace }).EDGELB_KV;
    await kv.put(
      `cluster/${cluster}`,
      JSON.stringify(snapshot(cluster, nodesOf(lab.nodes), [service({ hostnames: ["after.example.com"], nodePort: lab.nodePort })])),
    );
    // This request is answered from memory; its waitUntil re-reads KV.
    expect((await e.request("before.example.com")).status).toBe(200);
    expect((await e.request("after.example.com")).status).toBe(200);
    expect((await e.request("before.example.com")).status).toBe(404);
    expect(e.logs.filter((l) => l.event === "config.loaded").map((l) => l.source)).toEqual(["push", "kv"]);
  });
});
