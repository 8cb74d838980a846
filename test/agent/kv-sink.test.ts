// The kv-api sink end to end: simulated cluster → agent → fake Cloudflare KV
// API. Every KV write costs money (and the free tier has 1,000 a day), so the
// agent must write exactly once per real change: not for no-op updates, not
// again after a restart, and only once after the API throttled it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lbService, logsMatching, startWorld, waitFor, type World } from "./harness.ts";

let w: World;
beforeAll(async () => {
  // Slow, patient probes: under a loaded CI machine a probe timing out would be
  // a real change (a node going unhealthy) and a legitimate extra write.
  w = await startWorld({ addressBase: "127.0.62", sink: "kv-api", nodes: 2, noAgent: true });
  await w.startAgent({ minWriteIntervalMs: 300, health: { ...w.config.health, intervalMs: 1_000, timeoutMs: 800 } });
});
afterAll(() => w?.stop());

describe("kv-api sink", () => {
  it("writes the first snapshot once the cluster is synced", async () => {
    const s = await w.waitForSnapshot((s) => s.nodes.length === 2 && s.nodes.every((n) => n.healthy), "first snapshot");
    expect(s).toMatchObject({ cluster: "e2e", generation: 1, services: [] });
    expect(w.cf!.writes).toHaveLength(1);
  });

  it("writes once for a new Service and not for changes that do not matter", async () => {
    w.cluster.create(lbService("web", { hostnames: "web.example.com" }));
    await w.waitForSnapshot((s) => s.services.length === 1, "web published");
    expect(w.cf!.writes).toHaveLength(2);

    // No-op for the edge: a label on the Service, a Node annotation, a ClusterIP Service.
    w.cluster.patch("Service", "web", { metadata: { labels: { team: "shop" } } });
    w.cluster.patch("Node", "node-1", { metadata: { annotations: { note: "hello" } } }, { namespace: "" });
    w.cluster.create({ apiVersion: "v1", kind: "Service", metadata: { name: "internal", namespace: "default" }, spec: { ports: [{ port: 80 }] } });

    // The next real change is the next write: nothing was written in between.
    w.cluster.patch("Service", "web", { metadata: { annotations: { "edgelb.dev/hostnames": "web.example.com,www.example.com" } } });
    const s = await w.waitForSnapshot((s) => s.services[0]?.hostnames.length === 2, "second hostname");
    expect(w.cf!.writes).toHaveLength(3);
    expect(s.generation).toBe(3);
    const push = await waitFor(() => logsMatching(w.logs, /^pushed generation 3/)[0], "push logged");
    expect(push.msg).toMatch(/hosts \+www\.example\.com/);
    expect(push).toMatchObject({ generation: 3, services: 1, nodesHealthy: 2, nodesTotal: 2, hostsAdded: ["www.example.com"] });
  });

  it("does not rewrite an identical snapshot after a restart, and continues its generation", async () => {
    await w.stopAgents();
    const evaluated: boolean[] = [];
    const again = await w.startAgent({ minWriteIntervalMs: 300, health: { ...w.config.health, intervalMs: 1_000, timeoutMs: 800 } });
    again.controller.addHooks({ onEvaluated: () => evaluated.push(true) });
    await again.synced();
    await waitFor(() => again.controller.lastGeneration === 3 && evaluated.length > 0 && again.controller.lastDesired?.pending.length === 0, "restarted agent evaluated");
    w.cluster.delete("Service", "internal");
    w.cluster.create(lbService("api", { hostnames: "api.example.com" }));
    const s = await w.waitForSnapshot((s) => s.services.length === 2, "api published");
    expect(s.generation).toBe(4);
    expect(w.cf!.writes.map((x) => x.snapshot.generation)).toEqual([1, 2, 3, 4]);
    // Never two writes closer than the minimum write interval (KV: 1 write/s per key; 300 ms here),
    // also across the restart: publishedAt is when the agent sent each write.
    const sent = w.cf!.writes.map((x) => Date.parse(x.snapshot.publishedAt));
    expect(Math.min(...sent.slice(1).map((t, i) => t - sent[i]!))).toBeGreaterThanOrEqual(300);
  });

  it("honours 429 Retry-After, then writes the change exactly once", async () => {
    const before = w.cf!.writes.length;
    const requestsBefore = w.cf!.requests.length;
    w.cf!.fail({ status: 429, times: 2, retryAfter: "0.3", methods: ["PUT"] });
    w.cluster.delete("Service", "api");
    const s = await w.waitForSnapshot((s) => s.services.length === 1, "api removed", 10_000);
    expect(w.cf!.writes.length).toBe(before + 1);
    const puts = w.cf!.requests.slice(requestsBefore).filter((r) => r.method === "PUT");
    expect(puts.map((r) => r.status)).toEqual([429, 429, 200]);
    // Retry-After was honoured: at least 300 ms between attempts.
    expect(puts[1]!.at - puts[0]!.at).toBeGreaterThanOrEqual(290);
    expect(s.generation).toBe(5);
    const failed = await waitFor(() => logsMatching(w.logs, /push of generation 5 failed/)[0], "failure logged");
    expect(failed.msg).toMatch(/429.*next attempt at \d{4}-\d\d-\d\dT/);
  });

  it("prints what it would push in a dry run, and writes nothing", async () => {
    await w.stopAgents(); // only the dry-run agent watches now
    const writes = w.cf!.writes.length;
    const printed: { generation: number; hostsAdded: string[] }[] = [];
    const dry = await w.startAgent({ dryRun: true }, { printDryRun: (s, d) => printed.push({ generation: s.generation, hostsAdded: d.hostsAdded }) });
    await dry.synced();
    w.cluster.create(lbService("preview", { hostnames: "preview.example.com" }));
    await waitFor(() => printed.length > 0, "dry run output");
    expect(printed).toEqual([{ generation: 6, hostsAdded: ["preview.example.com"] }]);
    await dry.stop();
    expect(w.cf!.writes.length).toBe(writes);
    expect((await w.stored())?.services.map((s) => s.name)).not.toContain("preview");
  });
});
