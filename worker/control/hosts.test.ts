// Which hostnames serve /__edgelb/* (status page, control API) and which belong
// to the apps, through the whole worker; and what clients are told when a host
// is not served or the configuration could not be read yet.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { lab, nodesOf, service, snapshot, testEdge, TOKEN, uniqueCluster, type Echo, type TestEdge } from "../../test/worker/helpers.ts";
import { snapshotKey } from "../snapshot/schema.ts";
import type { ConfigKV } from "../config/index.ts";

const kv = (env as unknown as { EDGELB_KV: KVNamespace }).EDGELB_KV;
const [a] = lab.nodes as [(typeof lab.nodes)[0]];
const auth = { headers: { authorization: `Bearer ${TOKEN}` } };

async function withApp(vars: Record<string, string> = {}, hosts = ["shop.example.com"]): Promise<TestEdge & { cluster: string }> {
  const cluster = uniqueCluster("hosts");
  const edge = testEdge({ EDGELB_CLUSTERS: cluster, ...vars });
  await edge.seed(snapshot(cluster, nodesOf([a]), [service({ hostnames: hosts, nodePort: lab.nodePort })]));
  return Object.assign(edge, { cluster });
}

describe("control hostnames", () => {
  it("on a hostname a snapshot routes, /__edgelb/* belongs to the app: page, status, healthz and pushes reach the node", async () => {
    const edge = await withApp();
    for (const [method, path] of [
      ["GET", "/__edgelb/"],
      ["GET", "/__edgelb/status.js"],
      ["GET", "/__edgelb/v1/status"],
      ["GET", "/__edgelb/healthz"],
      ["GET", "/__edgelb"],
    ] as const) {
      const res = await edge.request("shop.example.com", path, { method, ...auth });
      expect(res.status, path).toBe(200);
      expect((await res.json()) as Echo, path).toMatchObject({ node: a.name, path });
    }
    const before = await kv.get(snapshotKey(edge.cluster));
    const put = await edge.request("shop.example.com", `/__edgelb/v1/clusters/${edge.cluster}`, { method: "PUT", body: "{}", ...auth });
    expect(((await put.json()) as Echo).method).toBe("PUT");
    expect(await kv.get(snapshotKey(edge.cluster))).toBe(before);
    // The worker's own hostnames still serve it.
    expect((await edge.request("localhost", "/__edgelb/")).headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect((await edge.request("localhost", "/__edgelb/v1/status", auth)).status).toBe(200);
  });

  it("EDGELB_CONTROL_HOSTS: only those hostnames serve control, and a Service that claims one is not proxied there", async () => {
    const edge = await withApp({ EDGELB_CONTROL_HOSTS: "localhost, edge.example.net" }, ["shop.example.com", "edge.example.net"]);
    expect((await edge.request("edge.example.net", "/__edgelb/v1/status", auth)).status).toBe(200);
    expect((await edge.request("EDGE.example.net.", "/__edgelb/")).headers.get("content-type")).toBe("text/html; charset=utf-8");
    // Not the app's, though the snapshot lists it.
    const root = await edge.request("edge.example.net", "/");
    expect(root.status).toBe(404);
    expect(edge.logs.find((e) => e.event === "host.reserved")).toMatchObject({ host: "edge.example.net", services: [`${edge.cluster}/default/web`] });
    // Another hostname no snapshot routes does not serve control now.
    const elsewhere = await edge.request("other.example.org", "/__edgelb/v1/status", auth);
    expect(elsewhere.status).toBe(404);
    expect(await elsewhere.text()).toMatch(/^edgelb: this hostname is not served here/);
    expect(((await (await edge.request("shop.example.com", "/__edgelb/")).json()) as Echo).node).toBe(a.name);
  });

  it("on a control hostname, the status of a fresh isolate shows the snapshots in KV", async () => {
    const cluster = uniqueCluster("hosts");
    await kv.put(snapshotKey(cluster), JSON.stringify(snapshot(cluster, nodesOf([a]), [service({ hostnames: ["fresh.example.com"], nodePort: lab.nodePort })], 3)));
    const edge = testEdge({ EDGELB_CLUSTERS: cluster, EDGELB_CONTROL_HOSTS: "localhost" });
    const status = (await (await edge.request("localhost", "/__edgelb/v1/status", auth)).json()) as { clusters: { name: string; generation: number }[] };
    expect(status.clusters).toEqual([expect.objectContaining({ name: cluster, generation: 3 })]);
  });

  it("without EDGELB_CONTROL_HOSTS, an app hostname that drops out of the snapshot does not serve control; loopback and *.workers.dev do", async () => {
    const edge = await withApp();
    // The Service leaves the snapshot: shop.example.com is routed by nothing now.
    await edge.seed(snapshot(edge.cluster, nodesOf([a]), []));
    for (const path of ["/__edgelb/", "/__edgelb/v1/status", `/__edgelb/v1/clusters/${edge.cluster}`]) {
      const res = await edge.request("shop.example.com", path, auth);
      expect(res.status, path).toBe(404);
      expect(await res.text(), path).toMatch(/^edgelb: this hostname is not served here/);
    }
    const put = await edge.request("shop.example.com", `/__edgelb/v1/clusters/${edge.cluster}`, { method: "PUT", body: "{}", ...auth });
    expect(put.status).toBe(404);
    for (const host of ["localhost", "127.0.0.1:8787", "[::1]:8787", "edgelb.someone.workers.dev"]) {
      expect((await edge.request(host, "/__edgelb/v1/status", auth)).status, host).toBe(200);
    }
  });

  it("a *.workers.dev name is the worker's own: never proxied to an app that lists it", async () => {
    const edge = await withApp({}, ["edgelb.someone.workers.dev"]);
    expect((await edge.request("edgelb.someone.workers.dev", "/")).status).toBe(404);
    expect((await edge.request("edgelb.someone.workers.dev", "/__edgelb/v1/status", auth)).status).toBe(200);
  });
});

describe("error bodies name nothing of the configuration", () => {
  it("404 for a hostname no snapshot routes carries only a message and the request id", async () => {
    const edge = await withApp();
    const res = await edge.request("unknown.example.com", "/", { headers: { "x-request-id": "rid-404" } });
    expect(res.status).toBe(404);
    expect(res.headers.get("x-request-id")).toBe("rid-404");
    const body = await res.text();
    expect(body).toBe("edgelb: this hostname is not served here (request rid-404)\n");
    expect(body).not.toContain("unknown.example.com");
    expect(edge.logs.find((e) => e.requestId === "rid-404")).toMatchObject({ event: "host.unknown", host: "unknown.example.com" });
  });
});

describe("the first KV read of a fresh isolate fails", () => {
  /** KV that fails while `failing` is true, as a read over the daily quota does. */
  function flakyKv() {
    const state = { failing: true, reads: 0 };
    const wrapped: ConfigKV = {
      getWithMetadata: ((key: string, type: "text") => {
        state.reads++;
        if (state.failing) return Promise.reject(new Error("KV GET failed: 429 Too Many Requests"));
        return kv.getWithMetadata(key, type);
      }) as ConfigKV["getWithMetadata"],
    };
    return { state, kv: wrapped };
  }

  it("answers 503 with Retry-After (not 404) and serves as soon as a retry after a short backoff reads KV", async () => {
    const cluster = uniqueCluster("kvfail");
    await kv.put(snapshotKey(cluster), JSON.stringify(snapshot(cluster, nodesOf([a]), [service({ hostnames: ["app.example.com"], nodePort: lab.nodePort })])));
    let now = Date.now();
    const flaky = flakyKv();
    const edge = testEdge({ EDGELB_CLUSTERS: cluster, EDGELB_CACHE_TTL: "60" }, { kv: flaky.kv, now: () => now });

    const first = await edge.request("app.example.com", "/", { headers: { "x-request-id": "rid-503" } });
    expect(first.status).toBe(503);
    expect(first.headers.get("retry-after")).toBe("1");
    const body = await first.text();
    expect(body).toBe("edgelb: this hostname's configuration is not available yet; try again shortly (request rid-503)\n");
    expect(body).not.toContain(cluster);
    expect(edge.logs.find((e) => e.event === "config.read_failed")).toMatchObject({ cluster });
    expect(edge.logs.find((e) => e.requestId === "rid-503")).toMatchObject({ event: "config.unavailable_answered", host: "app.example.com" });
    // Within the backoff: no new KV read, still 503.
    const reads = flaky.state.reads;
    expect((await edge.request("app.example.com")).status).toBe(503);
    expect(flaky.state.reads).toBe(reads);

    // KV answers again: the first request after the backoff (far below the 60 s TTL) reads it and is served.
    flaky.state.failing = false;
    now += 1_000;
    const served = await edge.request("app.example.com");
    expect(served.status).toBe(200);
    expect(((await served.json()) as Echo).node).toBe(a.name);
    expect((await edge.request("unknown.example.com")).status).toBe(404);
  });

  it("backs off while KV keeps failing, and a push to a control hostname serves at once", async () => {
    const cluster = uniqueCluster("kvfail");
    let now = Date.now();
    const flaky = flakyKv();
    // With EDGELB_CONTROL_HOSTS the control API needs no config read; without it, it
    // answers the same 503 (a hostname of the unread cluster could be an app's).
    const edge = testEdge({ EDGELB_CLUSTERS: cluster, EDGELB_CONTROL_HOSTS: "localhost" }, { kv: flaky.kv, now: () => now });
    const retryAfter: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await edge.request("app.example.com");
      expect(res.status).toBe(503);
      retryAfter.push(res.headers.get("retry-after")!);
      now += 10_000; // past any backoff: each request retries once
    }
    expect(edge.logs.filter((e) => e.event === "config.unavailable").map((e) => e.retryInMs)).toEqual([250, 500, 1000, 2000, 4000]);
    expect(retryAfter).toEqual(["1", "1", "1", "2", "4"]);
    // The agent's push does not need the failing read: the cluster is known from then on.
    expect((await edge.push(snapshot(cluster, nodesOf([a]), [service({ hostnames: ["app.example.com"], nodePort: lab.nodePort })]))).status).toBe(200);
    expect((await edge.request("app.example.com")).status).toBe(200);
    expect((await edge.request("unknown.example.com")).status).toBe(404);
  });
});
