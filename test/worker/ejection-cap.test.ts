// Passive ejection like Envoy's outlier detection, through the whole worker
// against nodes of a group of this file's own: connection failures eject
// quickly, 5xx answers only after a streak, and never more than half of a
// Service's nodes at once.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { SimGroup } from "./global-setup.ts";
import { edgeWithService, nodesOf, setBehavior, simGroup, type Echo } from "./helpers.ts";

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

const host = "outlier.example.com";
const names = () => group.nodes.map((n) => n.name) as [string, string, string];
const edge = (vars: Record<string, string> = {}) => edgeWithService({ hostnames: [host], nodePort: group.nodePort }, nodesOf(group.nodes), vars);

describe("ejection that clients cannot abuse", () => {
  it("a path answering 504 on every node ejects one node of three, not all of them", async () => {
    await Promise.all(names().map((n) => setBehavior(n, { mode: "error", status: 504 })));
    const e = await edge();
    for (let i = 0; i < 20; i++) expect((await e.request(host, `/slow?i=${i}`)).status).toBe(504);
    const cluster = e.status().clusters[0]!;
    const ejected = cluster.nodes.filter((n) => n.origins.some((o) => o.port === group.nodePort && o.ejected));
    expect(ejected).toHaveLength(1);
    expect(cluster.services[0]!.counts).toEqual({ nodes: 3, serving: 2 });
    expect(e.logs.filter((l) => l.event === "node.ejected")).toHaveLength(1);
    // The others were held back, with one line saying why.
    expect(e.logs.filter((l) => l.event === "node.ejection_capped")).toHaveLength(1);

    // The app recovers: the two nodes left in service take the traffic, nothing fails open.
    await Promise.all(names().map((n) => setBehavior(n, { mode: "ok" })));
    const failOpens = () => e.logs.filter((l) => l.event === "proxy.fail_open").length;
    const before = failOpens();
    const served = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const res = await e.request(host);
      expect(res.status).toBe(200);
      served.add(((await res.json()) as Echo).node);
    }
    expect(served.size).toBe(2);
    expect(failOpens()).toBe(before);
  });

  it.each([
    { mode: "refuse", kind: "connection", after: 3 },
    { mode: "error", kind: "status", after: 5 },
  ])("ejects a node after $after failures when it does $mode", async ({ mode, kind, after }) => {
    const [a] = names();
    await setBehavior(a, { mode, status: 503 });
    const e = await edge();
    for (let i = 0; i < 24; i++) {
      const res = await e.request(host, `/?i=${i}`);
      expect(res.status).toBe(200);
      expect(((await res.json()) as Echo).node).not.toBe(a);
    }
    const ejections = e.logs.filter((l) => l.event === "node.ejected");
    expect(ejections).toHaveLength(1);
    expect(ejections[0]).toMatchObject({ node: a, kind, consecutiveFailures: after });
    // Each failure cost one retry until the ejection, none after it.
    expect(e.logs.filter((l) => l.event === "proxy.retry")).toHaveLength(after);
  });

  it("takes a shorter 5xx streak and a higher cap from worker vars", async () => {
    await Promise.all(names().map((n) => setBehavior(n, { mode: "error", status: 504 })));
    const e = await edge({ EDGELB_EJECT_CONSECUTIVE_5XX: "2", EDGELB_MAX_EJECTION_PERCENT: "100" });
    for (let i = 0; i < 2; i++) expect((await e.request(host)).status).toBe(504);
    const ejections = e.logs.filter((l) => l.event === "node.ejected");
    expect(ejections.map((l) => l.node).sort()).toEqual([...names()].sort());
    expect(ejections.every((l) => l.consecutiveFailures === 2 && l.kind === "status")).toBe(true);
  });
});
