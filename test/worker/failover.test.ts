// Failover, passive ejection and fail-open against nodes this file breaks on
// purpose (a group of its own, 127.0.<n>.11-13), over every transport.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { SimGroup } from "./global-setup.ts";
import { edgeWithService, lab, nodesOf, setBehavior, simGroup, until, type Echo, type TestEdge } from "./helpers.ts";
import { TRANSPORTS } from "./transports.ts";

let group: SimGroup & { release(): Promise<void> };
beforeAll(async () => {
  group = await simGroup(3);
});
afterAll(async () => {
  await group?.release();
});
beforeEach(async () => {
  await Promise.all(group.nodes.map((n) => setBehavior(n.name, { mode: "ok" })));
});

const names = () => group.nodes.map((n) => n.name);
const host = "app.example.com";

async function nodeOf(res: Response): Promise<string> {
  expect(res.status).toBe(200);
  return ((await res.json()) as Echo).node;
}

describe.each(TRANSPORTS)("failover over the %s transport", (transport) => {
  const vars = { EDGELB_TRANSPORT: transport };
  const edge = (policy: Record<string, unknown> = {}, nodes = nodesOf(group.nodes)) =>
    edgeWithService({ hostnames: [host], nodePort: group.nodePort, policy }, nodes, vars);

  it("serves a stream of GETs without a single failure while one of three nodes is down", async () => {
    const [a, b, c] = names() as [string, string, string];
    await setBehavior(a, { mode: "refuse" });
    const e = await edge();
    const seen = new Map<string, number>();
    for (let i = 0; i < 60; i++) {
      const node = await nodeOf(await e.request(host, `/?i=${i}`));
      seen.set(node, (seen.get(node) ?? 0) + 1);
    }
    expect(seen.has(a)).toBe(false);
    expect(seen.get(b)! + seen.get(c)!).toBe(60);
    // The dead node was retried away from, then ejected: no retries after that.
    const retries = e.logs.filter((l) => l.event === "proxy.retry");
    expect(retries.length).toBe(3);
    // fetch() cannot tell a refused connection from a reset one: "may have run", still fine for a GET.
    const kind = transport === "socket" ? "ConnectError" : "UpstreamResetError";
    expect(retries.every((r) => r.node === a && r.kind === kind)).toBe(true);
    expect(e.logs.find((l) => l.event === "node.ejected")).toMatchObject({ node: a, ejections: 1, consecutiveFailures: 3 });
    // Ejection is per origin (node + NodePort), listed under the cluster's node.
    const node = e.status().clusters[0]!.nodes.find((n) => n.name === a)!.origins.find((o) => o.port === group.nodePort)!;
    expect(node).toMatchObject({ ejected: true, ejections: 1, consecutiveFailures: 3 });
    expect(e.status().clusters[0]!.services[0]!.counts).toEqual({ nodes: group.nodes.length, serving: group.nodes.length - 1 });
    expect(Date.parse(node.ejectedUntil!)).toBeGreaterThan(Date.now());
  });

  it("fails over from an address where nothing listens", async () => {
    const e = await edge({}, [{ name: "ghost", address: lab.deadAddress, healthy: true }, ...nodesOf(group.nodes)]);
    for (let i = 0; i < 8; i++) expect(names()).toContain(await nodeOf(await e.request(host)));
  });

  it("retries a POST body refused by a node (socket), small or streamed", async () => {
    const [a] = names() as [string];
    await setBehavior(a, { mode: "refuse" });
    // Round-robin starts at the first node, the dead one.
    const small = await edge();
    const res = await small.request(host, "/", { method: "POST", body: "x".repeat(60 * 1024) });
    if (transport === "socket") {
      // Nothing reached the node: any method moves on.
      const echo = (await res.json()) as Echo;
      expect(echo.node).not.toBe(a);
      expect(echo.bodyBytes).toBe(60 * 1024);
    } else {
      // fetch() cannot say whether the POST went out: it is not sent to a second node.
      expect(res.status).toBe(502);
      expect(small.logs.find((l) => l.event === "proxy.failed")).toMatchObject({ kind: "UpstreamResetError", noRetry: "POST is not idempotent and may have run" });
    }

    const large = await edge();
    const big = await large.request(host, "/", { method: "POST", body: "x".repeat(65 * 1024) });
    if (transport === "socket") {
      // Refused before a byte of the streamed body was read: the untouched stream goes to the next node.
      expect(((await big.json()) as Echo).bodyBytes).toBe(65 * 1024);
    } else {
      expect(big.status).toBe(502);
      expect(large.logs.filter((l) => l.event === "proxy.retry")).toHaveLength(0);
    }
  });

  it("retries GETs away from a node that answers 503 (the POSTs between them land elsewhere), and ejects it", async () => {
    const [a] = names() as [string];
    await setBehavior(a, { mode: "error", status: 503 });
    const e = await edge();
    const statuses = new Map<number, number>();
    for (let i = 0; i < 30; i++) {
      const res =
        i % 2 === 0 ? await e.request(host, `/?i=${i}`) : await e.request(host, "/", { method: "POST", body: `post ${i}` });
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status !== 200) continue;
      const echo = (await res.json()) as Echo;
      expect(echo.node).not.toBe(a);
      if (i % 2 === 1) expect(echo.body).toBe(`post ${i}`);
    }
    expect(Object.fromEntries(statuses)).toEqual({ 200: 30 });
    // 5xx answers eject after a streak of 5 (connection failures after 3).
    const retries = e.logs.filter((l) => l.event === "proxy.retry");
    expect(retries.length).toBe(5);
    expect(retries.every((r) => r.node === a && r.kind === "status" && r.status === 503)).toBe(true);
    expect(e.logs.find((l) => l.event === "node.ejected")).toMatchObject({ node: a, ejections: 1, error: "status 503" });
  });

  it("passes the origin's own 503 on when every node answers 503", async () => {
    await Promise.all(names().map((n) => setBehavior(n, { mode: "error", status: 503 })));
    const e = await edge();
    const res = await e.request(host);
    expect(res.status).toBe(503);
    expect(await res.text()).toMatch(/simulated 503/);
    expect(e.logs.filter((l) => l.event === "proxy.retry")).toHaveLength(2);
  });

  it("never retries a large streamed POST on a 503", async () => {
    const [a] = names() as [string];
    await setBehavior(a, { mode: "error", status: 503 });
    // Round-robin starts at the first node, the one answering 503.
    const e = await edge();
    const res = await e.request(host, "/", { method: "POST", body: "x".repeat(65 * 1024) });
    expect(res.status).toBe(503);
    expect(await res.text()).toBe(`${a}: simulated 503\n`);
    expect(e.logs.filter((l) => l.event === "proxy.retry")).toHaveLength(0);
  });

  it("moves a GET away from a node that accepts but never answers", async () => {
    const [a] = names() as [string];
    await setBehavior(a, { mode: "hang" });
    // The deadlines also bound the healthy nodes' answers: 300 ms was too little for them with two test files on
    // busy cores (load 16); the hung node never answers, whatever the deadline.
    const e = await edge({ responseTimeoutMs: 1_000, connectTimeoutMs: 1_000 });
    for (let i = 0; i < 4; i++) expect(await nodeOf(await e.request(host))).not.toBe(a);
    expect(e.logs.find((l) => l.event === "proxy.retry")).toMatchObject({ node: a, kind: "ResponseTimeoutError" });
    // A POST may already have been acted on: not retried, 504.
    const e2 = await edge({ responseTimeoutMs: 1_000 });
    const post = await e2.request(host, "/", { method: "POST", body: "once" });
    expect(post.status).toBe(504);
    // The node is named in the log line, not to the client.
    expect(await post.text()).not.toContain(a);
    expect(e2.logs.find((l) => l.event === "proxy.failed")).toMatchObject({ node: a, kind: "ResponseTimeoutError" });
  });

  it("moves on when connecting to a node times out (a powered-off node)", async () => {
    // The black hole listens on the shared nodes' NodePort but never completes a handshake.
    const nodes = [{ name: "powered-off", address: lab.blackhole, healthy: true }, ...nodesOf(lab.nodes)];
    // Without connect hedging (connect-hedge.test.ts), which would move on before the timeout.
    const e = await edgeWithService(
      { hostnames: [host], nodePort: lab.nodePort, policy: { connectTimeoutMs: 300, responseTimeoutMs: 600, connectAttemptDelayMs: 0 } },
      nodes,
      vars,
    );
    const started = Date.now();
    const node = await nodeOf(await e.request(host));
    expect(node).not.toBe("powered-off");
    expect(Date.now() - started).toBeLessThan(3_000);
    const retry = e.logs.find((l) => l.event === "proxy.retry");
    // fetch() exposes no connect phase: there the wait is bounded by responseTimeoutMs.
    expect(retry).toMatchObject({ node: "powered-off", kind: transport === "socket" ? "ConnectError" : "ResponseTimeoutError" });
    if (transport === "socket") {
      // Nothing reached the node, so even a POST moves on.
      const post = await (await edgeWithService({ hostnames: [host], nodePort: lab.nodePort, policy: { connectTimeoutMs: 300, connectAttemptDelayMs: 0 } }, nodes, vars)).request(
        host,
        "/",
        { method: "POST", body: "once" },
      );
      expect(((await post.json()) as Echo).body).toBe("once");
    }
  });

  it("answers 502 with a clear body when no node can be reached", async () => {
    await Promise.all(names().map((n) => setBehavior(n, { mode: "refuse" })));
    const e = await edge();
    const res = await e.request(host);
    expect(res.status).toBe(502);
    const text = await res.text();
    expect(text).toMatch(/^edgelb: the site could not be reached \(request [\w-]+\)\n$/);
    // Node addresses stay in the log.
    expect(text).not.toContain(group.nodes[0]!.address);
    expect(text).not.toContain("default/web");
    expect(e.logs.find((l) => l.event === "proxy.failed")).toBeDefined();
  });

  it("fails open when every node is ejected, and restores nodes that answer again", async () => {
    await Promise.all(names().map((n) => setBehavior(n, { mode: "refuse" })));
    // By default at most half of a Service's nodes are ejected; this operator allows all.
    const e = await edgeWithService({ hostnames: [host], nodePort: group.nodePort }, nodesOf(group.nodes), vars, { health: { maxEjectionPercent: 100 } });
    for (let i = 0; i < 3; i++) expect((await e.request(host)).status).toBe(502);
    const cluster = e.status().clusters[0]!;
    expect(cluster.nodes.every((n) => n.origins.some((o) => o.port === group.nodePort && o.ejected))).toBe(true);
    expect(cluster.services[0]!.counts.serving).toBe(0);
    await Promise.all(names().map((n) => setBehavior(n, { mode: "ok" })));
    // Everything is ejected, yet trying beats refusing.
    expect(names()).toContain(await nodeOf(await e.request(host)));
    expect(e.logs.some((l) => l.event === "proxy.fail_open")).toBe(true);
    // Success is judged when the body has been piped to the end (in-flight accounting): a moment later.
    await until(() => (e.logs.some((l) => l.event === "node.restored") ? true : undefined), "node.restored logged");
  });

  it("avoids nodes the agent reports unhealthy, and fails open when all are", async () => {
    const [a, b, c] = group.nodes as [SimGroup["nodes"][0], SimGroup["nodes"][0], SimGroup["nodes"][0]];
    const some = await edge({}, [...nodesOf([a, b], false), ...nodesOf([c])]);
    for (let i = 0; i < 6; i++) expect(await nodeOf(await some.request(host))).toBe(c.name);
    const all = await edge({}, nodesOf(group.nodes, false));
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add(await nodeOf(await all.request(host)));
    expect(seen.size).toBe(3);
  });
});

describe("no origins", () => {
  it("answers 503 with Retry-After and a body naming nothing internal", async () => {
    const e: TestEdge = await edgeWithService(
      { name: "checkout", namespace: "shop", hostnames: [host], nodePort: group.nodePort, trafficPolicy: "Local", endpoints: [] },
      nodesOf(group.nodes),
    );
    const res = await e.request(host);
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("10");
    expect(await res.text()).not.toContain("shop/checkout");
    expect(e.logs.find((l) => l.event === "proxy.no_origins")).toMatchObject({ services: expect.stringContaining("shop/checkout") });
  });
});
