// Issue 19: a blackholed node costs one short wait, not a connect timeout per
// request. Real blackholes on loopback (lab/cluster/blackhole.ts, set up by
// hedge.setup.ts): a connect to the dark node gets no answer; after the
// Service's connectAttemptDelayMs a second node's connect races it (RFC 8305),
// and the request goes over whichever opens first.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { inject } from "vitest";
import { describe, expect, it } from "vitest";
import type { GateGroup } from "./gate.setup.ts";
import { service, snapshot, testEdge, uniqueCluster, until, type TestEdge } from "./helpers.ts";

const hl = inject("hedgeLab");
const host = "hedge.example.com";
const [dark, dark2] = hl.dark as [{ name: string; address: string }, { name: string; address: string }];
const [b] = hl.answering as [{ name: string; address: string }];

type Node = { name: string; address: string };

async function edgeOver(nodes: Node[], policy: Record<string, unknown>, transport = "socket"): Promise<TestEdge & { cluster: string }> {
  const cluster = uniqueCluster("hedge");
  const edge = testEdge({ EDGELB_CLUSTERS: cluster, EDGELB_TRANSPORT: transport });
  await edge.seed(
    snapshot(
      cluster,
      nodes.map((n) => ({ ...n, healthy: true })),
      [service({ hostnames: [host], nodePort: hl.nodePort, policy })],
    ),
  );
  return Object.assign(edge, { cluster });
}

/** One request through the edge; `ms` is the time to its response head; `settled` waits for its background work. */
async function timed(edge: TestEdge, path: string, init: RequestInit = {}) {
  const headers = new Headers(init.headers);
  headers.set("host", host);
  if (typeof init.body === "string") headers.set("content-length", String(init.body.length));
  const ctx = createExecutionContext();
  const started = Date.now();
  const res = await edge.fetch(new Request(`https://${host}${path}`, { ...init, headers }), ctx);
  const ms = Date.now() - started;
  const body = await res.text();
  return { res, ms, body, settled: () => waitOnExecutionContext(ctx) };
}

async function seen(method: string, path: string): Promise<{ requests: Record<string, number>; connections: Record<string, number> }> {
  const res = await fetch(`${hl.control}/seen?method=${method}&path=${encodeURIComponent(path)}`);
  return (await res.json()) as { requests: Record<string, number>; connections: Record<string, number> };
}

const unique = (what: string) => `/${what}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
const CONNECT_TIMEOUT = 800;
const DELAY = 100;

describe("connect hedging (socket transport)", () => {
  it("answers a GET from the next node in about the delay, not the connect timeout; later requests avoid the dark node; its timeout ejects it", async () => {
    const edge = await edgeOver([dark, b], { connectTimeoutMs: CONNECT_TIMEOUT, connectAttemptDelayMs: DELAY });
    const first = await timed(edge, "/");
    expect(first.res.status).toBe(200);
    expect(first.res.headers.get("x-edgelb-node")).toBe(b.name);
    expect(first.ms).toBeGreaterThanOrEqual(DELAY - 5);
    expect(first.ms).toBeLessThan(CONNECT_TIMEOUT);
    expect(edge.logs.filter((l) => l.event === "proxy.hedge")).toEqual([
      expect.objectContaining({ slow: dark.name, hedge: b.name, answered: b.name, delayMs: DELAY }),
    ]);
    // While the dark node's connect is pending past its delay, new requests do not pick it: no second hedge.
    for (let i = 0; i < 4; i++) {
      const next = await timed(edge, "/");
      expect(next.res.headers.get("x-edgelb-node")).toBe(b.name);
    }
    expect(edge.logs.filter((l) => l.event === "proxy.hedge")).toHaveLength(1);
    expect(edge.logs.some((l) => l.event === "node.ejected")).toBe(false);
    // The slow connect ran on to its own timeout (kept alive past the answer): that ejects the node.
    await first.settled();
    expect(edge.logs.find((l) => l.event === "node.ejected")).toMatchObject({ node: dark.name, kind: "connect-timeout" });
    const after = await timed(edge, "/");
    expect(after.res.headers.get("x-edgelb-node")).toBe(b.name);
    expect(edge.logs.filter((l) => l.event === "proxy.hedge")).toHaveLength(1);
  });

  it("sends a POST to exactly one node, once, in about the delay", async () => {
    const edge = await edgeOver([dark, b], { connectTimeoutMs: CONNECT_TIMEOUT, connectAttemptDelayMs: DELAY });
    const path = unique("post");
    const post = await timed(edge, path, { method: "POST", body: "run me once" });
    expect(post.res.status).toBe(200);
    expect(JSON.parse(post.body)).toMatchObject({ node: b.name, method: "POST", bodyBytes: 11 });
    expect(post.ms).toBeLessThan(CONNECT_TIMEOUT);
    expect((await seen("POST", path)).requests).toEqual({ [b.address]: 1 });
    await post.settled();
    expect((await seen("POST", path)).requests).toEqual({ [b.address]: 1 });
  });

  it("closes a losing connection that opens late without sending a byte: the POST still ran once", async () => {
    const late = (await (await fetch(`${hl.control}/late`, { method: "POST" })).json()) as Node & { id: number };
    // Long enough for the kernel's first SYN retransmission (1 s) to reach the node once it opens.
    const edge = await edgeOver([late, b], { connectTimeoutMs: 4_000, connectAttemptDelayMs: DELAY });
    const path = unique("late");
    const post = await timed(edge, path, { method: "POST", body: "once" });
    expect(JSON.parse(post.body)).toMatchObject({ node: b.name });
    expect(await (await fetch(`${hl.control}/late/${late.id}/open`, { method: "POST" })).json()).toEqual({ ok: true });
    // The slow connect opens now (its SYN is retransmitted) and is closed unused.
    await until(async () => ((await seen("POST", path)).connections[late.address] ?? 0) > 0 || undefined, "the late connect to open", 8_000);
    await post.settled();
    expect((await seen("POST", path)).requests).toEqual({ [b.address]: 1 });
    // It opened, so it is not a failure: the node is not ejected.
    expect(edge.logs.some((l) => l.event === "node.ejected")).toBe(false);
  });

  it("GET takes the fast start under the hedge: a primary that opens late after the second won is closed, and the client's answer comes from the second node once", async () => {
    const late = (await (await fetch(`${hl.control}/late`, { method: "POST" })).json()) as Node & { id: number };
    const edge = await edgeOver([late, b], { connectTimeoutMs: 4_000, connectAttemptDelayMs: DELAY });
    const path = unique("late-get");
    const get = await timed(edge, path);
    expect(get.res.status).toBe(200);
    expect(JSON.parse(get.body)).toMatchObject({ node: b.name, method: "GET", path });
    expect(get.ms).toBeGreaterThanOrEqual(DELAY - 5);
    expect(get.ms).toBeLessThan(1_000);
    expect((await seen("GET", path)).requests).toEqual({ [b.address]: 1 });
    expect(await (await fetch(`${hl.control}/late/${late.id}/open`, { method: "POST" })).json()).toEqual({ ok: true });
    await until(async () => ((await seen("GET", path)).connections[late.address] ?? 0) > 0 || undefined, "the late connect to open", 8_000);
    await get.settled();
    const { requests } = await seen("GET", path);
    // The second node answered once; the late one may have got the queued head before it was
    // closed (a GET is safe: that is why only GET, HEAD and OPTIONS take this path), at most once.
    expect(requests[b.address]).toBe(1);
    expect(requests[late.address] ?? 0).toBeLessThanOrEqual(1);
    expect(edge.logs.filter((l) => l.event === "proxy.hedge")).toEqual([expect.objectContaining({ slow: late.name, hedge: b.name, answered: b.name })]);
    // It opened, so it is not a failure: the node is not ejected, and nothing was retried.
    expect(edge.logs.some((l) => l.event === "node.ejected" || l.event === "proxy.retry")).toBe(false);
  });

  it("fails after the connect timeout with the usual 502 when every node is dark, with one hedge only", async () => {
    const edge = await edgeOver([dark, dark2], { connectTimeoutMs: 400, connectAttemptDelayMs: DELAY });
    const res = await timed(edge, "/");
    expect(res.res.status).toBe(502);
    expect(res.body).toMatch(/^edgelb: the site could not be reached \(request [\w-]+\)\n$/);
    // The second connect started at the delay and timed out 400 ms later: about the delay plus the timeout.
    expect(res.ms).toBeGreaterThanOrEqual(400);
    expect(res.ms).toBeLessThan(400 + DELAY + 800);
    expect(edge.logs.filter((l) => l.event === "proxy.hedge")).toEqual([expect.objectContaining({ slow: dark.name, hedge: dark2.name, answered: undefined })]);
    expect(edge.logs.find((l) => l.event === "proxy.failed")).toMatchObject({ kind: "ConnectError", tried: [dark.name, dark2.name].map((n) => expect.stringContaining(n)) });
    await res.settled();
    // Both connect timeouts count: each dark node is ejected (within the Service's ejection cap).
    expect(edge.logs.filter((l) => l.event === "node.ejected" || l.event === "node.ejection_capped").map((l) => l.node).sort()).toEqual([dark.name, dark2.name].sort());
  });

  it("hedges behind node gates too: the second node's gate gets a request signed for it", async () => {
    const gl = inject("gateLab");
    const group = (await (await fetch(`${gl.control}/groups`, { method: "POST", body: JSON.stringify({ count: 2 }) })).json()) as GateGroup;
    try {
      // A powered-off node: its gate's port drops SYNs too.
      const darkGate = (await (await fetch(`${hl.control}/dark?port=${group.gatePort}`, { method: "POST" })).json()) as Node;
      const edge = testEdge({ EDGELB_CLUSTERS: group.cluster, EDGELB_GATE_KEY: `k1:${gl.secret}` } as Record<string, string>);
      const snap = snapshot(group.cluster, [darkGate, ...group.nodes].map((n) => ({ ...n, healthy: true })), [
        service({ hostnames: [host], nodePort: group.nodePort, policy: { connectTimeoutMs: CONNECT_TIMEOUT, connectAttemptDelayMs: DELAY } }),
      ]);
      await edge.seed({ ...snap, origins: { mode: "gate", port: group.gatePort } });
      const post = await timed(edge, "/gated", { method: "POST", body: "signed for b" });
      expect(post.res.status).toBe(200);
      const echo = JSON.parse(post.body) as { node: string; body: string };
      expect(group.nodes.map((n) => n.name)).toContain(echo.node);
      expect(echo.body).toBe("signed for b");
      expect(post.ms).toBeLessThan(CONNECT_TIMEOUT);
      expect(edge.logs.filter((l) => l.event === "proxy.hedge")).toEqual([expect.objectContaining({ slow: darkGate.name, answered: echo.node })]);
      // The gate verified a signature naming its own node: no refusal, no retry.
      expect(edge.logs.filter((l) => l.event === "proxy.gate_refused" || l.event === "proxy.retry")).toEqual([]);
      await post.settled();
      expect(edge.logs.find((l) => l.event === "node.ejected")).toMatchObject({ node: darkGate.name, kind: "connect-timeout" });
    } finally {
      await fetch(`${gl.control}/groups/${group.id}`, { method: "DELETE" });
    }
  });

  it("hedges a GET behind node gates over the fast start: the second node's gate gets a head signed for it", async () => {
    const gl = inject("gateLab");
    const group = (await (await fetch(`${gl.control}/groups`, { method: "POST", body: JSON.stringify({ count: 2 }) })).json()) as GateGroup;
    try {
      // A powered-off node: its gate's port drops SYNs too.
      const darkGate = (await (await fetch(`${hl.control}/dark?port=${group.gatePort}`, { method: "POST" })).json()) as Node;
      const edge = testEdge({ EDGELB_CLUSTERS: group.cluster, EDGELB_GATE_KEY: `k1:${gl.secret}` } as Record<string, string>);
      const snap = snapshot(group.cluster, [darkGate, ...group.nodes].map((n) => ({ ...n, healthy: true })), [
        service({ hostnames: [host], nodePort: group.nodePort, policy: { connectTimeoutMs: CONNECT_TIMEOUT, connectAttemptDelayMs: DELAY } }),
      ]);
      await edge.seed({ ...snap, origins: { mode: "gate", port: group.gatePort } });
      const get = await timed(edge, "/gated-get");
      expect(get.res.status).toBe(200);
      const echo = JSON.parse(get.body) as { node: string };
      expect(group.nodes.map((n) => n.name)).toContain(echo.node);
      expect(get.ms).toBeLessThan(CONNECT_TIMEOUT);
      expect(edge.logs.filter((l) => l.event === "proxy.hedge")).toEqual([expect.objectContaining({ slow: darkGate.name, answered: echo.node })]);
      // The gate verified a signature naming its own node: no refusal, no retry.
      expect(edge.logs.filter((l) => l.event === "proxy.gate_refused" || l.event === "proxy.retry")).toEqual([]);
      await get.settled();
      expect(edge.logs.find((l) => l.event === "node.ejected")).toMatchObject({ node: darkGate.name, kind: "connect-timeout" });
    } finally {
      await fetch(`${gl.control}/groups/${group.id}`, { method: "DELETE" });
    }
  });

  it("is off with connectAttemptDelayMs 0: the request waits the connect timeout", async () => {
    const edge = await edgeOver([dark, b], { connectTimeoutMs: 300, connectAttemptDelayMs: 0 });
    const res = await timed(edge, "/");
    expect(res.res.headers.get("x-edgelb-node")).toBe(b.name);
    expect(res.ms).toBeGreaterThanOrEqual(300);
    expect(edge.logs.some((l) => l.event === "proxy.hedge")).toBe(false);
    expect(edge.logs.find((l) => l.event === "proxy.retry")).toMatchObject({ node: dark.name, kind: "ConnectError" });
  });

  it("refuses a snapshot with a delay below RFC 8305's 10 ms floor, and keeps serving the last good one", async () => {
    const edge = await edgeOver([dark, b], { connectTimeoutMs: CONNECT_TIMEOUT, connectAttemptDelayMs: DELAY });
    const cluster = edge.cluster;
    for (const bad of [5, -1, 2.5, "250"]) {
      const res = await edge.push(snapshot(cluster, [{ ...b, healthy: true }], [service({ hostnames: ["bad.example.com"], nodePort: hl.nodePort, policy: { connectAttemptDelayMs: bad as number } })]));
      expect(res.status).toBe(400);
      expect(await res.text()).toMatch(/connectAttemptDelayMs/);
    }
    expect((await timed(edge, "/")).res.status).toBe(200);
  });
});
