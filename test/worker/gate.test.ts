// The edge in gate mode: the snapshot says the cluster's origins sit behind
// node gates (test/worker/gate.setup.ts runs real ones, 127.23.<n>.x), the
// worker connects to nodeIP:gatePort and signs the real NodePort. Failover and
// ejection stay keyed per node and Service NodePort.
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import type { Env } from "../../worker/env/index.ts";
import type { GatewaySectionInput } from "../../worker/snapshot/gateway.ts";
import type { GateGroup } from "./gate.setup.ts";
import { nodesOf, service, snapshot, testEdge, uniqueCluster, until, type Echo } from "./helpers.ts";
import { TRANSPORTS } from "./transports.ts";
import { WsClient } from "./websocket-client.ts";

const gl = inject("gateLab");
const host = "gated.example.com";

async function control(path: string, method = "POST", body?: unknown): Promise<unknown> {
  const res = await fetch(`${gl.control}${path}`, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const json = await res.json();
  if (!res.ok) throw new Error(`gate control ${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

let group: GateGroup;
beforeAll(async () => {
  group = (await control("/groups", "POST", { count: 3 })) as GateGroup;
});
afterAll(async () => {
  if (group) await control(`/groups/${group.id}`, "DELETE");
});
beforeEach(async () => {
  await Promise.all(group.nodes.map((n) => control(`/nodes/${n.name}/behavior`, "POST", { mode: "ok" })));
  await Promise.all(group.nodes.map((n) => control(`/nodes/${n.name}/gate`, "POST", { up: true })));
});

async function gatedEdge(vars: Partial<Env> & Record<string, string> = {}, policy: Record<string, unknown> = {}, mode: "gate" | "direct" = "gate") {
  // The group's gates accept only requests signed for their cluster.
  const cluster = group.cluster;
  const edge = testEdge({ EDGELB_CLUSTERS: cluster, EDGELB_GATE_KEY: `k1:${gl.secret}`, ...vars } as Partial<Env>);
  const snap = snapshot(cluster, nodesOf(group.nodes), [service({ hostnames: [host], nodePort: group.nodePort, policy })]);
  await edge.seed(mode === "gate" ? { ...snap, origins: { mode: "gate", port: group.gatePort } } : snap);
  return Object.assign(edge, { cluster });
}

describe("the edge in gate mode", () => {
  it("reaches every node through its gate with a signed request; the app sees the client's Host and no signature", async () => {
    const e = await gatedEdge();
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const res = await e.request(host, `/path?i=${i}`, { method: i % 2 ? "POST" : "GET", ...(i % 2 ? { body: `body ${i}` } : {}) });
      expect(res.status).toBe(200);
      const echo = (await res.json()) as Echo;
      seen.add(echo.node);
      expect(echo.path).toBe("/path");
      expect(echo.headers.host).toBe(host);
      expect(echo.headers["x-edgelb-signature"]).toBeUndefined();
      if (i % 2) expect(echo.body).toBe(`body ${i}`);
    }
    expect(seen.size).toBe(3);
    // The status endpoint says how the cluster is reached.
    expect(e.status().clusters[0]!.origins).toEqual({ mode: "gate", port: group.gatePort });
  });

  it("answers 502 (not the gates' 403) and logs proxy.gate_refused when every gate refuses the edge's key", async () => {
    const e = await gatedEdge({ EDGELB_GATE_KEY: `k1:${"another-secret-".repeat(3)}` });
    const res = await e.request(host);
    expect(res.status).toBe(502);
    expect(res.headers.get("x-edgelb-gate")).toBeNull();
    expect(e.logs.filter((l) => l.event === "proxy.gate_refused").length).toBeGreaterThan(0);
  });

  it("every node out in a gated cluster: the fail-open line and a failed request's line name the gates (mode, port) as the hop to check", async () => {
    const cluster = group.cluster;
    const e = testEdge({ EDGELB_CLUSTERS: cluster, EDGELB_GATE_KEY: `k1:${gl.secret}` } as Partial<Env>);
    await e.seed({ ...snapshot(cluster, nodesOf(group.nodes, false), [service({ hostnames: [host], nodePort: group.nodePort })]), origins: { mode: "gate", port: group.gatePort } });
    expect((await e.request(host)).status).toBe(200);
    const open = e.logs.find((l) => l.event === "proxy.fail_open")!;
    expect(open).toMatchObject({ cluster, origins: "gate", gatePort: group.gatePort });
    expect(open.via).toBe(`the node gates (edgelb-node-gate) on port ${group.gatePort} of cluster ${cluster}'s nodes`);
    // Every gate refusing the worker's key: the request fails, and its line says the gates were the hop.
    const refused = testEdge({ EDGELB_CLUSTERS: cluster, EDGELB_GATE_KEY: `k1:${"another-secret-".repeat(3)}` } as Partial<Env>);
    await refused.seed({ ...snapshot(cluster, nodesOf(group.nodes), [service({ hostnames: [host], nodePort: group.nodePort })]), origins: { mode: "gate", port: group.gatePort } });
    expect((await refused.request(host)).status).toBe(502);
    const failed = refused.logs.filter((l) => l.event === "proxy.failed").at(-1)!;
    expect(failed).toMatchObject({ origins: "gate", gatePort: group.gatePort });
  });

  it("a direct cluster's fail-open line says nothing of gates", async () => {
    const e = await gatedEdge({}, {}, "direct");
    await e.seed({ ...snapshot(group.cluster, nodesOf(group.nodes, false), [service({ hostnames: [host], nodePort: group.nodePort })]) });
    await e.request(host);
    const open = e.logs.find((l) => l.event === "proxy.fail_open")!;
    expect(open).toBeDefined();
    expect(open.origins).toBeUndefined();
    expect(open.gatePort).toBeUndefined();
  });

  it("one node's gate with a different key: every request still 200, that node is ejected and logged (proxy.gate_refused)", async () => {
    const [a] = group.nodes.map((n) => n.name) as [string];
    await control(`/nodes/${a}/gate`, "POST", { up: true, secret: "a-different-gate-secret-0123456789abcdef" });
    try {
      const e = await gatedEdge();
      for (let i = 0; i < 12; i++) {
        // POSTs too: a gate's refusal means nothing reached the app.
        const res = await e.request(host, `/?i=${i}`, i % 2 ? { method: "POST", body: `p${i}` } : {});
        expect(res.status).toBe(200);
        expect(((await res.json()) as Echo).node).not.toBe(a);
      }
      const refused = e.logs.filter((l) => l.event === "proxy.gate_refused");
      expect(refused.length).toBeGreaterThan(0);
      expect(refused.every((l) => l.node === a)).toBe(true);
      const origin = e.status().clusters[0]!.nodes.find((n) => n.name === a)!.origins.find((o) => o.port === group.nodePort)!;
      expect(origin.ejected).toBe(true);
    } finally {
      await control(`/nodes/${a}/gate`, "POST", { up: true, secret: gl.secret });
    }
  });

  it("answers 502 and says why in the log when a gated cluster has no key", async () => {
    const e = await gatedEdge({ EDGELB_GATE_KEY: "" });
    const res = await e.request(host);
    expect(res.status).toBe(502);
    expect(e.logs.find((l) => l.event === "proxy.gate_unsigned")).toMatchObject({ cluster: e.cluster });
  });

  it("a hostname listed by two clusters, the first gated with no key in this worker: the second cluster serves (no 502), and the missing key is logged", async () => {
    const first = uniqueCluster("gated-nokey");
    const second = group.cluster;
    const e = testEdge({
      EDGELB_CLUSTERS: `${first},${second}`,
      EDGELB_GATE_KEY: "",
      EDGELB_GATE_KEYS: JSON.stringify({ [second]: `k1:${gl.secret}` }),
      EDGELB_STEERING: JSON.stringify({ [host]: { policy: "failover", clusters: [first, second] } }),
    } as Partial<Env>);
    const svc = service({ hostnames: [host], nodePort: group.nodePort });
    await e.seed({ ...snapshot(first, nodesOf(group.nodes), [svc]), origins: { mode: "gate", port: group.gatePort } });
    await e.seed({ ...snapshot(second, nodesOf(group.nodes), [svc]), origins: { mode: "gate", port: group.gatePort } });
    for (let i = 0; i < 4; i++) {
      const res = await e.request(host, `/?i=${i}`, i % 2 ? { method: "POST", body: `p${i}` } : {});
      expect(res.status).toBe(200);
      expect(((await res.json()) as Echo).headers["x-edgelb-signature"]).toBeUndefined();
    }
    expect(e.logs.filter((l) => l.event === "proxy.gate_unsigned").every((l) => l.cluster === first)).toBe(true);
    expect(e.logs.some((l) => l.event === "proxy.gate_unsigned")).toBe(true);
    expect(e.logs.some((l) => l.event === "proxy.next_cluster" && l.from === first && l.to === second)).toBe(true);
  });

  it.each(TRANSPORTS)("a hostname whose gated cluster refuses, then a direct cluster (EDGELB_TRANSPORT=%s): the direct nodes get no signature meant for a gate", async (transport) => {
    // The first cluster's requests are signed for it, so this group's gates (another cluster's) refuse every one.
    const first = uniqueCluster("gated-refused");
    const second = group.cluster;
    const e = testEdge({
      EDGELB_TRANSPORT: transport,
      EDGELB_CLUSTERS: `${first},${second}`,
      EDGELB_GATE_KEY: `k1:${gl.secret}`,
      EDGELB_STEERING: JSON.stringify({ [host]: { policy: "failover", clusters: [first, second] } }),
    } as Partial<Env>);
    const svc = service({ hostnames: [host], nodePort: group.nodePort });
    await e.seed({ ...snapshot(first, nodesOf(group.nodes), [svc]), origins: { mode: "gate", port: group.gatePort } });
    await e.seed(snapshot(second, nodesOf(group.nodes), [svc]));
    for (let i = 0; i < 3; i++) {
      const res = await e.request(host, `/?i=${i}`);
      expect(res.status).toBe(200);
      expect(((await res.json()) as Echo).headers["x-edgelb-signature"]).toBeUndefined();
    }
    expect(e.logs.some((l) => l.event === "proxy.gate_refused")).toBe(true);
    expect(e.logs.some((l) => l.event === "proxy.next_cluster" && l.from === first && l.to === second)).toBe(true);
  });

  it("another cluster's snapshot naming these nodes (one key shared by both clusters) gets nothing through their gates: 502, proxy.gate_refused", async () => {
    // Cluster "intruder" (its agent compromised, or a hostile admin) publishes this group's nodes and NodePort as its own.
    const intruder = uniqueCluster("intruder");
    const e = testEdge({ EDGELB_CLUSTERS: intruder, EDGELB_GATE_KEY: `k1:${gl.secret}` } as Partial<Env>);
    await e.seed({ ...snapshot(intruder, nodesOf(group.nodes), [service({ hostnames: [host], nodePort: group.nodePort })]), origins: { mode: "gate", port: group.gatePort } });
    const res = await e.request(host, "/admin", { method: "POST", body: "x" });
    expect(res.status).toBe(502);
    expect(e.logs.filter((l) => l.event === "proxy.gate_refused").length).toBeGreaterThan(0);
  });

  it("a client's own signature header does not get through the edge", async () => {
    const e = await gatedEdge();
    const res = await e.request(host, "/", { headers: { "x-edgelb-signature": "v3;k=k1;t=1;n=AAAAAAAAAAAAAAAAAAAAAA;p=1;c=gated-1;d=gated-1-a;s=" + "A".repeat(43) } });
    expect(res.status).toBe(200);
  });

  it("relays a WebSocket through the gate", async () => {
    const e = await gatedEdge();
    const res = await e.request(host, "/ws", { headers: { upgrade: "websocket" } });
    expect(res.status).toBe(101);
    const c = new WsClient(res.webSocket!);
    c.ws.send("through edge and gate");
    expect(await c.next()).toBe("through edge and gate");
    expect((await c.close()).code).toBe(1000);
  });
});

describe("Gateway API routes in gate mode", () => {
  it("reach their backends through the node gates with signed requests, like LoadBalancer Services", async () => {
    const cluster = group.cluster;
    const e = testEdge({ EDGELB_CLUSTERS: cluster, EDGELB_GATE_KEY: `k1:${gl.secret}` } as Partial<Env>);
    const [a] = group.nodes as [GateGroup["nodes"][number]];
    const gateway: GatewaySectionInput = {
      backends: [{ namespace: "shop", name: "api", port: 8080, nodePort: group.nodePort, trafficPolicy: "Local", endpoints: [{ node: a.name, weight: 1 }] }],
      routes: [{ namespace: "shop", name: "api", creationTimestamp: "2026-12-01T10:00:00Z", gateway: "shop/web", listener: "http", hostnames: ["shop.example.com"], rules: [{ matches: [{ path: { type: "PathPrefix", value: "/api" } }], backendRefs: [{ namespace: "shop", name: "api", port: 8080 }] }] }],
    };
    await e.seed({ ...snapshot(cluster, nodesOf(group.nodes), []), origins: { mode: "gate", port: group.gatePort }, gateway });
    for (let i = 0; i < 3; i++) {
      const res = await e.request("shop.example.com", `/api/cart?i=${i}`);
      expect(res.status).toBe(200);
      const echo = (await res.json()) as Echo;
      expect(echo.node).toBe(a.name);
      expect(echo.path).toBe("/api/cart");
      expect(echo.headers["x-edgelb-signature"]).toBeUndefined();
    }
    // The same route with the gate refusing this edge's key: nothing reaches the app behind it.
    await control(`/nodes/${a.name}/gate`, "POST", { up: true, secret: "a-different-gate-secret-0123456789abcdef" });
    try {
      expect((await e.request("shop.example.com", "/api/cart")).status).toBe(502);
      expect(e.logs.some((l) => l.event === "proxy.gate_refused" && l.node === a.name)).toBe(true);
    } finally {
      await control(`/nodes/${a.name}/gate`, "POST", { up: true, secret: gl.secret });
    }
  });
});

// Gate mode always takes the socket transport (fetch() rewrites the signed Host): the same results whatever EDGELB_TRANSPORT says.
describe.each(TRANSPORTS)("failover in gate mode (EDGELB_TRANSPORT=%s)", (transport) => {
  const names = () => group.nodes.map((n) => n.name);

  it("serves every GET and POST while one node's gate is down, and ejects that node at the Service's NodePort", async () => {
    const [a, b, c] = names() as [string, string, string];
    await control(`/nodes/${a}/gate`, "POST", { up: false });
    const e = await gatedEdge({ EDGELB_TRANSPORT: transport });
    const seen = new Map<string, number>();
    for (let i = 0; i < 30; i++) {
      const post = i % 3 === 0;
      const res = await e.request(host, `/?i=${i}`, post ? { method: "POST", body: `p${i}` } : {});
      expect(res.status).toBe(200);
      const echo = (await res.json()) as Echo;
      seen.set(echo.node, (seen.get(echo.node) ?? 0) + 1);
    }
    expect(seen.has(a)).toBe(false);
    expect(seen.get(b)! + seen.get(c)!).toBe(30);
    // Three refused connections to a's gate eject it (retries elsewhere on a loaded machine are not this test's business).
    const retries = e.logs.filter((l) => l.event === "proxy.retry" && l.node === a);
    expect(retries.map((r) => [r.kind, r.transport])).toEqual(Array(3).fill(["ConnectError", "socket"]));
    const origin = e.status().clusters[0]!.nodes.find((n) => n.name === a)!.origins.find((o) => o.port === group.nodePort)!;
    expect(origin).toMatchObject({ ejected: true, consecutiveFailures: 3 });
  });

  it("retries the GETs and opted-in POSTs a hung node drops when it comes back, as without the gate", async () => {
    const [a] = names() as [string];
    await control(`/nodes/${a}/behavior`, "POST", { mode: "hang" });
    const e = await gatedEdge({ EDGELB_TRANSPORT: transport }, { retryNonIdempotent: true });
    const pending = Array.from({ length: 9 }, (_, i) => e.request(host, `/?i=${i}`, i % 3 === 2 ? { method: "POST", body: `p${i}` } : {}));
    // Every third request is held by the hung node; let it drop them once they are all there.
    await until(async () => ((e.status().clusters[0]!.nodes.find((n) => n.name === a)?.origins[0]?.inFlight ?? 0) >= 3 ? true : undefined), "requests held by the hung node");
    await control(`/nodes/${a}/behavior`, "POST", { mode: "ok" });
    const answers = await Promise.all(pending);
    expect(answers.map((r) => r.status)).toEqual(Array(9).fill(200));
  });

  it("a node that died behind a live gate (its NodePort refuses; the gate answers 502 upstream-unreachable): every GET and plain POST is served elsewhere, the node is ejected", async () => {
    const [a] = names() as [string];
    await control(`/nodes/${a}/behavior`, "POST", { mode: "refuse" });
    const e = await gatedEdge({ EDGELB_TRANSPORT: transport });
    for (let i = 0; i < 12; i++) {
      // POSTs without the retry-non-idempotent opt-in: the gate sent nothing upstream, so they may move on.
      const res = await e.request(host, `/?i=${i}`, i % 2 ? { method: "POST", body: `p${i}` } : {});
      expect(res.status).toBe(200);
      expect(((await res.json()) as Echo).node).not.toBe(a);
    }
    const retries = e.logs.filter((l) => l.event === "proxy.retry" && l.node === a);
    expect(retries.map((r) => r.kind)).toEqual(Array(3).fill("gate_upstream_unreachable"));
    expect(e.logs.filter((l) => l.event === "proxy.gate_upstream_unreachable" && l.node === a).length).toBe(3);
    expect(e.logs.some((l) => l.event === "proxy.retry_budget_spent")).toBe(false);
    const origin = e.status().clusters[0]!.nodes.find((n) => n.name === a)!.origins.find((o) => o.port === group.nodePort)!;
    expect(origin).toMatchObject({ ejected: true, consecutiveFailures: 3 });
  });
  it("a NodePort that drops connections behind a live gate (rv-proxy 6): the gate's 502 says connect-timeout, every request is served elsewhere and the node is ejected at the first one", async () => {
    const [a] = names() as [string];
    await control(`/nodes/${a}/gate`, "POST", { up: true, dropNodePort: true });
    const e = await gatedEdge({ EDGELB_TRANSPORT: transport });
    for (let i = 0; i < 6; i++) {
      const res = await e.request(host, `/?i=${i}`, i % 2 ? { method: "POST", body: `p${i}` } : {});
      expect(res.status).toBe(200);
      expect(((await res.json()) as Echo).node).not.toBe(a);
    }
    const origin = e.status().clusters[0]!.nodes.find((n) => n.name === a)!.origins.find((o) => o.port === group.nodePort)!;
    // Ejected after one timeout (as a direct connect timeout is), not after the 5 failures a refusal takes.
    expect(origin).toMatchObject({ ejected: true, consecutiveFailures: 1 });
    expect(e.logs.filter((l) => l.event === "proxy.gate_upstream_unreachable" && l.node === a).length).toBe(1);
  });
});

// Issue 15: the signature names the node, not an address, so a node the edge reaches through NAT (or by
// another of its addresses) is served. This group's gates (127.62.<n>.11…) see connections arrive at their
// own address while the edge dialled 127.62.<n>.111… (test/worker/gate.setup.ts, {nat: true}).
describe("the edge in gate mode, nodes behind NAT", () => {
  let natGroup: GateGroup;
  beforeAll(async () => {
    natGroup = (await control("/groups", "POST", { count: 2, nat: true })) as GateGroup;
  });
  afterAll(async () => {
    if (natGroup) await control(`/groups/${natGroup.id}`, "DELETE");
  });

  it("serves every request through each node's gate although the address it was dialled at is not its own", async () => {
    const cluster = natGroup.cluster;
    const e = testEdge({ EDGELB_CLUSTERS: cluster, EDGELB_GATE_KEY: `k1:${gl.secret}` } as Partial<Env>);
    await e.seed({ ...snapshot(cluster, nodesOf(natGroup.nodes), [service({ hostnames: [host], nodePort: natGroup.nodePort })]), origins: { mode: "gate", port: natGroup.gatePort } });
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const res = await e.request(host, `/nat?i=${i}`, i % 2 ? { method: "POST", body: `n${i}` } : {});
      expect(res.status).toBe(200);
      seen.add(((await res.json()) as Echo).node);
    }
    expect([...seen].sort()).toEqual(natGroup.nodes.map((n) => n.name).sort());
    expect(e.logs.filter((l) => l.event === "proxy.gate_refused")).toEqual([]);
  });
});

