// The control endpoints through the whole worker (hono app, KV, isolate state).
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { lab, nodesOf, service, snapshot, testEdge, TOKEN, uniqueCluster, type Echo } from "../../test/worker/helpers.ts";
import { parseTombstone } from "../config/stored.ts";
import { snapshotKey } from "../snapshot/schema.ts";

const kv = (env as unknown as { EDGELB_KV: KVNamespace }).EDGELB_KV;
const [a] = lab.nodes as [(typeof lab.nodes)[0]];

function setup(vars: Record<string, string> = {}) {
  const cluster = uniqueCluster("ctl");
  const edge = testEdge({ EDGELB_CLUSTERS: cluster, ...vars });
  const snap = (host = "app.example.com", gen?: number) =>
    snapshot(cluster, nodesOf([a]), [service({ hostnames: [host], nodePort: lab.nodePort })], gen);
  const get = (token: string | null = TOKEN) =>
    edge.request("localhost", `/__edgelb/v1/clusters/${cluster}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  return { cluster, edge, snap, get };
}

describe("GET /__edgelb/healthz", () => {
  it("answers without a token", async () => {
    const res = await testEdge().request("localhost", "/__edgelb/healthz");
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("ok\n");
  });
});

describe("authorization", () => {
  it("answers 401 to a missing or wrong token and writes nothing", async () => {
    const t = setup();
    for (const token of [null, "wrong-token", `${TOKEN}x`, TOKEN.slice(0, -1)]) {
      const res = await t.edge.push(t.snap(), { token });
      expect(res.status, String(token)).toBe(401);
      expect(((await res.json()) as { error: string }).error).toMatch(/^unauthorized/);
      expect(res.headers.get("www-authenticate")).toContain("Bearer");
    }
    expect(await kv.get(snapshotKey(t.cluster))).toBeNull();
    expect((await t.get(null)).status).toBe(401);
    expect((await t.edge.request("localhost", "/__edgelb/v1/status")).status).toBe(401);
    expect(t.edge.logs.filter((e) => e.event === "control.refused")).toHaveLength(6);
  });

  it("disables the endpoints when no token is configured", async () => {
    const t = setup({ EDGELB_PUSH_TOKEN: "" });
    const res = await t.edge.push(t.snap(), { token: "" });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: string }).error).toContain("EDGELB_PUSH_TOKEN");
    expect(await kv.get(snapshotKey(t.cluster))).toBeNull();
  });
});

describe("PUT /__edgelb/v1/clusters/:name", () => {
  it("stores the snapshot and serves it in this isolate at once", async () => {
    const t = setup();
    const s = t.snap("pushed.example.com");
    const res = await t.edge.push(s);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ accepted: true, generation: s.generation, unchanged: false, routed: true });
    expect(JSON.parse((await kv.get(snapshotKey(t.cluster)))!)).toEqual(s);
    const proxied = await t.edge.request("pushed.example.com", "/hello");
    expect(((await proxied.json()) as Echo).path).toBe("/hello");
    expect(t.edge.logs.find((e) => e.event === "push.accepted")).toMatchObject({ cluster: t.cluster, generation: s.generation });
  });

  it("answers unchanged without writing when generation and content are already stored", async () => {
    const t = setup();
    const s = t.snap();
    expect((await t.edge.push(s)).status).toBe(200);
    const storedText = await kv.get(snapshotKey(t.cluster));
    // The same snapshot, formatted differently: equal content, so KV keeps its text.
    const res = await t.edge.push(JSON.stringify(s, null, 2), { cluster: t.cluster });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ accepted: true, generation: s.generation, unchanged: true });
    expect(await kv.get(snapshotKey(t.cluster))).toBe(storedText);
  });

  it("refuses an older generation, or the same one with other content, with 409", async () => {
    const t = setup();
    const s = t.snap("v2.example.com");
    await t.edge.seed(s);
    const older = await t.edge.push(t.snap("v1.example.com", s.generation - 1));
    expect(older.status).toBe(409);
    expect(await older.json()).toEqual({
      error: `generation ${s.generation - 1} is older than the stored ${s.generation}`,
      storedGeneration: s.generation,
    });
    const same = await t.edge.push(t.snap("other.example.com", s.generation));
    expect(same.status).toBe(409);
    expect(await same.json()).toMatchObject({ storedGeneration: s.generation });
    expect(JSON.parse((await kv.get(snapshotKey(t.cluster)))!)).toEqual(s);
    expect((await t.edge.request("v2.example.com")).status).toBe(200);
    expect((await t.edge.request("v1.example.com")).status).toBe(404);
    expect(t.edge.logs.filter((e) => e.event === "push.refused" && e.status === 409)).toHaveLength(2);
  });

  it("answers 400 with a clear error for invalid bodies and names", async () => {
    const t = setup();
    const cases: [string, string | object, string?][] = [
      ["not json", "{oops", "snapshot is not valid JSON"],
      ["schema", { ...t.snap(), nodes: [{ name: "n", address: "not an address!", healthy: true }] }, "nodes.0.address"],
      ["wrong cluster", { ...t.snap(), cluster: "elsewhere" }, `snapshot is for cluster "elsewhere" but was pushed to "${t.cluster}"`],
    ];
    for (const [what, body, message] of cases) {
      const res = await t.edge.push(typeof body === "string" ? body : JSON.stringify(body), { cluster: t.cluster });
      expect(res.status, what).toBe(400);
      expect(((await res.json()) as { error: string }).error, what).toContain(message);
    }
    const badName = await t.edge.push(JSON.stringify(t.snap()), { cluster: "Bad_Name" });
    expect(badName.status).toBe(400);
    expect(((await badName.json()) as { error: string }).error).toContain(`cluster name "Bad_Name" is invalid`);
    expect(await kv.get(snapshotKey(t.cluster))).toBeNull();
  });

  it("answers 413 to a body over the limit (10 MiB by default)", async () => {
    const t = setup();
    const s = t.snap();
    const padded = JSON.stringify({ ...s, padding: "x".repeat(10 * 1024 * 1024) });
    const res = await t.edge.push(padded, { cluster: t.cluster });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: string }).error).toBe(`snapshot too large: the limit is ${10 * 1024 * 1024} bytes`);

    // A configured limit, and a body without Content-Length (streamed).
    const small = setup({ EDGELB_MAX_PUSH_BYTES: "100" });
    const body = new Blob([JSON.stringify(small.snap())]).stream();
    const chunked = await small.edge.request("localhost", `/__edgelb/v1/clusters/${small.cluster}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${TOKEN}` },
      body,
    });
    expect(chunked.status).toBe(413);
    expect(await kv.get(snapshotKey(small.cluster))).toBeNull();
  });
});

describe("GET and DELETE /__edgelb/v1/clusters/:name", () => {
  it("returns the stored snapshot, deletes it, then answers 404", async () => {
    const t = setup();
    expect((await t.get()).status).toBe(404);
    const s = t.snap("del.example.com");
    await t.edge.seed(s);
    const got = await t.get();
    expect(got.status).toBe(200);
    expect(got.headers.get("content-type")).toContain("application/json");
    expect(await got.json()).toEqual(s);

    const del = () =>
      t.edge.request("localhost", `/__edgelb/v1/clusters/${t.cluster}`, { method: "DELETE", headers: { authorization: `Bearer ${TOKEN}` } });
    const first = await del();
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ deleted: true, cluster: t.cluster });
    // What stays is a tombstone with the next generation, not the snapshot.
    expect(parseTombstone((await kv.get(snapshotKey(t.cluster)))!)).toMatchObject({ cluster: t.cluster, generation: s.generation + 1 });
    expect((await t.edge.request("del.example.com")).status).toBe(404);
    expect((await del()).status).toBe(404);
    expect((await t.get()).status).toBe(404);
    // After a delete, generations start over (the agent's uninstall, then a fresh install).
    expect((await t.edge.push(t.snap("del.example.com", 1))).status).toBe(200);
  });
});

describe("GET /__edgelb/v1/status", () => {
  it("reports clusters, generations, age and every node's state", async () => {
    const t = setup();
    const s = t.snap("status.example.com");
    s.publishedAt = new Date(Date.now() - 42_000).toISOString();
    await t.edge.seed(s);
    const res = await t.edge.request("localhost", "/__edgelb/v1/status", { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    const status = (await res.json()) as {
      clusters: { name: string; generation: number; ageSeconds: number; loadedAt: string; lastError: null; nodes: unknown[]; services: unknown[] }[];
    };
    expect(status.clusters).toHaveLength(1);
    const c = status.clusters[0]!;
    expect(c).toMatchObject({ name: t.cluster, generation: s.generation, publishedAt: s.publishedAt, source: "push", lastError: null });
    expect(c.ageSeconds).toBeGreaterThanOrEqual(42);
    expect(c.ageSeconds).toBeLessThan(60);
    expect(Date.parse(c.loadedAt)).toBeGreaterThan(Date.now() - 10_000);
    expect(c.nodes).toEqual([{ name: a.name, address: a.address, zone: null, healthy: true, origins: [] }]);
    expect(c.services).toEqual([
      expect.objectContaining({
        namespace: "default",
        name: "web",
        hostnames: ["status.example.com"],
        nodePort: lab.nodePort,
        trafficPolicy: "Cluster",
        counts: { nodes: 1, serving: 1 },
      }),
    ]);
    expect(c.services[0]).not.toHaveProperty("endpoints");
  });

  it("lists each node once per cluster, not once per Service, and a Local Service's endpoints", async () => {
    const t = setup();
    const nodes = Array.from({ length: 300 }, (_, i) => ({ name: `node-${i}`, address: `10.0.${i >> 8}.${i & 255}`, healthy: i !== 7 }));
    const services = Array.from({ length: 300 }, (_, i) => service({ name: `svc-${i}`, hostnames: [`svc-${i}.example.com`], nodePort: 30000 + i }));
    services.push(
      service({
        name: "local",
        hostnames: ["local.example.com"],
        nodePort: 32000,
        trafficPolicy: "Local",
        endpoints: [
          { node: "node-1", weight: 2, healthy: true },
          { node: "node-7", weight: 1, healthy: true },
        ],
      }),
    );
    await t.edge.seed(snapshot(t.cluster, nodes, services));
    const res = await t.edge.request("localhost", "/__edgelb/v1/status", { headers: { authorization: `Bearer ${TOKEN}` } });
    const body = await res.text();
    const c = (JSON.parse(body) as {
      clusters: {
        nodes: { name: string }[];
        services: { name: string; counts: { nodes: number; serving: number }; endpoints?: unknown[] }[];
      }[];
    }).clusters[0]!;
    expect(c.nodes).toHaveLength(300);
    expect(c.services).toHaveLength(301);
    expect(c.services[0]!.counts).toEqual({ nodes: 300, serving: 299 });
    // 300 × 300 per-service node entries would be several MB; one list stays small.
    expect(body.length).toBeLessThan(200_000);
    const local = c.services.find((s) => s.name === "local")!;
    // node-7 failed the agent's check: listed, but not serving.
    expect(local.endpoints).toEqual([
      { node: "node-1", weight: 2, healthy: true },
      { node: "node-7", weight: 1, healthy: false },
    ]);
    expect(local.counts).toEqual({ nodes: 2, serving: 1 });
  });

  it("answers JSON 404 for unknown control paths", async () => {
    const res = await testEdge().request("localhost", "/__edgelb/v1/nope", { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: "no control endpoint GET /__edgelb/v1/nope" });
  });
});

describe("tokens per role", () => {
  const READ = "read-only-token";
  const tokensFor = (east: string, west: string) => ({
    EDGELB_READ_TOKEN: READ,
    EDGELB_PUSH_TOKENS: JSON.stringify({ [east]: `push-${east}`, [west]: `push-${west}` }),
  });

  it("a cluster's push token writes and reads its own cluster only; another cluster's push or delete is 403 and changes nothing", async () => {
    const east = uniqueCluster("east");
    const west = uniqueCluster("west");
    const edge = testEdge({ EDGELB_CLUSTERS: `${east},${west}`, ...tokensFor(east, west) });
    const snapOf = (cluster: string, host: string) => snapshot(cluster, nodesOf([a]), [service({ hostnames: [host], nodePort: lab.nodePort })]);
    const call = (method: string, cluster: string, token: string, body?: string) =>
      edge.request("localhost", `/__edgelb/v1/clusters/${cluster}`, { method, headers: { authorization: `Bearer ${token}` }, ...(body ? { body } : {}) });

    expect((await edge.push(snapOf(east, "east.example.com"), { token: `push-${east}` })).status).toBe(200);
    expect((await edge.push(snapOf(west, "west.example.com"), { token: `push-${west}` })).status).toBe(200);
    const westStored = await kv.get(snapshotKey(west));

    // east's agent tries to overwrite and to delete west.
    const hijack = await edge.push(snapOf(west, "hijacked.example.com"), { token: `push-${east}` });
    expect(hijack.status).toBe(403);
    expect(await hijack.json()).toEqual({ error: `forbidden: the push token of cluster "${east}" cannot access cluster "${west}"` });
    expect((await call("DELETE", west, `push-${east}`)).status).toBe(403);
    expect((await call("GET", west, `push-${east}`)).status).toBe(403);
    expect(await kv.get(snapshotKey(west))).toBe(westStored);
    expect((await edge.request("west.example.com")).status).toBe(200);
    expect((await edge.request("hijacked.example.com")).status).toBe(404);
    // Its own cluster: read back (the agent does at start) and status is not for it.
    expect((await call("GET", east, `push-${east}`)).status).toBe(200);
    expect((await edge.request("localhost", "/__edgelb/v1/status", { headers: { authorization: `Bearer push-${east}` } })).status).toBe(403);
    expect(edge.logs.filter((e) => e.event === "control.refused" && e.status === 403)).toHaveLength(4);
    expect(edge.logs.find((e) => e.event === "control.refused")).toMatchObject({ role: "cluster", tokenCluster: east, reason: "token not allowed" });
  });

  it("the read token reads status and snapshots but cannot push or delete", async () => {
    const east = uniqueCluster("east");
    const edge = testEdge({ EDGELB_CLUSTERS: east, ...tokensFor(east, uniqueCluster("west")) });
    const s = snapshot(east, nodesOf([a]), [service({ hostnames: ["read.example.com"], nodePort: lab.nodePort })]);
    await edge.seed(s); // the single token (test binding) still does everything
    const read = { headers: { authorization: `Bearer ${READ}` } };
    expect((await edge.request("localhost", "/__edgelb/v1/status", read)).status).toBe(200);
    expect(await (await edge.request("localhost", `/__edgelb/v1/clusters/${east}`, read)).json()).toEqual(s);
    const push = await edge.push(snapshot(east, nodesOf([a]), [service({ hostnames: ["x.example.com"], nodePort: lab.nodePort })]), { token: READ });
    expect(push.status).toBe(403);
    expect(await push.json()).toEqual({ error: "forbidden: the read token cannot change snapshots" });
    expect((await edge.request("localhost", `/__edgelb/v1/clusters/${east}`, { method: "DELETE", ...read })).status).toBe(403);
    expect(JSON.parse((await kv.get(snapshotKey(east)))!)).toEqual(s);
  });

  it("a cluster token pushing an unrouted cluster is not told the other clusters' names", async () => {
    const east = uniqueCluster("east");
    const routed = uniqueCluster("secret");
    const edge = testEdge({ EDGELB_CLUSTERS: routed, ...tokensFor(east, uniqueCluster("west")) });
    const s = snapshot(east, nodesOf([a]), [service({ hostnames: ["unrouted.example.com"], nodePort: lab.nodePort })]);
    const res = await edge.push(s, { token: `push-${east}` });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { routed: boolean; warning: string };
    expect(body.routed).toBe(false);
    expect(body.warning).toContain("not in this worker's EDGELB_CLUSTERS");
    expect(body.warning).not.toContain(routed);
    // The single (admin) token still sees the list.
    const admin = (await (await edge.push({ ...s, generation: s.generation + 1 })).json()) as { warning: string };
    expect(admin.warning).toContain(routed);
  });

  it("works with only per-cluster tokens and a read token (no single token)", async () => {
    const east = uniqueCluster("east");
    const edge = testEdge({ EDGELB_CLUSTERS: east, EDGELB_PUSH_TOKEN: "", ...tokensFor(east, uniqueCluster("west")) });
    const s = snapshot(east, nodesOf([a]), [service({ hostnames: ["only.example.com"], nodePort: lab.nodePort })]);
    expect((await edge.push(s, { token: `push-${east}` })).status).toBe(200);
    expect((await edge.push(s, { token: TOKEN })).status).toBe(401);
    expect((await edge.request("localhost", "/__edgelb/v1/status", { headers: { authorization: `Bearer ${READ}` } })).status).toBe(200);
  });
});

describe("a deleted cluster installed again", () => {
  it("push gen 5, DELETE, push gen 1: served at once here, by an isolate that still had gen 5, and by a fresh one", async () => {
    const cluster = uniqueCluster("again");
    const vars = { EDGELB_CLUSTERS: cluster, EDGELB_CACHE_TTL: "0" };
    const snapOf = (host: string, gen: number) => snapshot(cluster, nodesOf([a]), [service({ hostnames: [host], nodePort: lab.nodePort })], gen);
    const edge = testEdge(vars);
    const other = testEdge(vars); // another isolate of the same worker
    await edge.seed(snapOf("old.example.com", 5));
    expect((await other.request("old.example.com")).status).toBe(200);

    const del = await edge.request("localhost", `/__edgelb/v1/clusters/${cluster}`, { method: "DELETE", headers: { authorization: `Bearer ${TOKEN}` } });
    expect(del.status).toBe(200);
    // The agent of the new install reads nothing stored, and starts at 1.
    expect((await edge.request("localhost", `/__edgelb/v1/clusters/${cluster}`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(404);
    const again = await edge.push(snapOf("new.example.com", 1));
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ accepted: true, generation: 1, unchanged: false });
    expect((await edge.request("new.example.com")).status).toBe(200);

    // The other isolate never saw the deletion; it reads generation 1 of the new install from KV.
    expect((await other.request("old.example.com")).status).toBe(200); // answered from memory, refresh in waitUntil
    expect((await other.request("new.example.com")).status).toBe(200);
    expect((await other.request("old.example.com")).status).toBe(404);

    // A fresh isolate (after a restart) serves it too; the new install goes on from 1.
    const fresh = testEdge(vars);
    expect((await fresh.request("new.example.com")).status).toBe(200);
    expect((await edge.push(snapOf("newer.example.com", 2))).status).toBe(200);
    expect((await edge.push(snapOf("older.example.com", 1))).status).toBe(409);
  });

  it("an isolate that reads the tombstone stops serving, and a stale read of the deleted snapshot is not served again", async () => {
    const cluster = uniqueCluster("tomb");
    const vars = { EDGELB_CLUSTERS: cluster, EDGELB_CACHE_TTL: "0" };
    const edge = testEdge(vars);
    const other = testEdge(vars);
    const s = snapshot(cluster, nodesOf([a]), [service({ hostnames: ["gone.example.com"], nodePort: lab.nodePort })], 7);
    await edge.seed(s);
    const staleText = await kv.getWithMetadata(snapshotKey(cluster), "text");
    expect((await other.request("gone.example.com")).status).toBe(200);
    const del = () => edge.request("localhost", `/__edgelb/v1/clusters/${cluster}`, { method: "DELETE", headers: { authorization: `Bearer ${TOKEN}` } });
    expect((await del()).status).toBe(200);
    expect((await edge.request("gone.example.com")).status).toBe(404);
    // A second DELETE finds nothing to delete (uninstall is safe to repeat).
    expect((await del()).status).toBe(404);
    await other.request("gone.example.com"); // refresh reads the tombstone
    expect((await other.request("gone.example.com")).status).toBe(404);
    expect(other.logs.find((e) => e.event === "config.removed")).toMatchObject({ cluster, generation: 7, reason: "deleted" });

    // KV is eventually consistent: the deleted value may be read again somewhere.
    await kv.put(snapshotKey(cluster), staleText.value!, { metadata: staleText.metadata });
    await other.request("gone.example.com");
    expect((await other.request("gone.example.com")).status).toBe(404);
    expect(other.logs.filter((e) => e.event === "config.stale").at(-1)?.error).toContain("was deleted");
  });
});
