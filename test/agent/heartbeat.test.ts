// The agent's heartbeat (issue 18): while nothing changes, the agent tells the
// edge every --heartbeat-interval that its cluster is alive, so the edge's
// staleness limit (EDGELB_STALE_AFTER) counts from the last heartbeat, dated by
// the worker's clock. Through the worker it costs no snapshot upload and no KV
// write of the agent's; through the kv-api sink each heartbeat is one KV write.
import { afterAll, describe, expect, it } from "vitest";
import { lbService, startWorld, waitFor, type World } from "./harness.ts";

const worlds: World[] = [];
afterAll(() => Promise.all(worlds.map((w) => w.stop())));

const probes = (w: World) => ({ health: { ...w.config.health, intervalMs: 1_000, timeoutMs: 800 } });

describe("heartbeat through the worker's push endpoint", () => {
  it("is sent while nothing changes, recorded by the worker's clock, and writes no snapshot", async () => {
    const w = await startWorld({ addressBase: "127.66.1", sink: "worker", nodes: 1, noAgent: true });
    worlds.push(w);
    const agent = await w.startAgent({ heartbeatMs: 400, ...probes(w) });
    w.cluster.create(lbService("web", { hostnames: "web.example.com" }));
    const published = await w.waitForSnapshot((s) => s.services.length === 1 && s.nodes.every((n) => n.healthy), "web published");
    await waitFor(() => agent.controller.lastGeneration === published.generation, "the push accepted");
    const writes = agent.controller.writes;
    const generation = published.generation;
    const status = async () => {
      const res = await fetch(`${w.edge!.url}/__edgelb/v1/status`, { headers: { authorization: `Bearer ${w.config.pushToken}` } });
      return ((await res.json()) as { clusters: { name: string; heartbeatAt: string | null; generation: number | null }[] }).clusters.find((c) => c.name === w.config.cluster)!;
    };
    const first = Date.parse((await status()).heartbeatAt!);
    const sentBefore = agent.heartbeat.sent;
    await waitFor(() => agent.heartbeat.sent >= sentBefore + 3, "three heartbeats", 15_000);
    const later = await waitFor(async () => {
      const s = await status();
      return Date.parse(s.heartbeatAt!) > first ? s : undefined;
    }, "a newer heartbeat at the worker");
    expect(later.generation).toBe(generation);
    // Nothing changed: no snapshot was pushed, and none of the heartbeats was a KV write of the agent's.
    expect(agent.controller.writes).toBe(writes);
    expect(agent.heartbeat.kvWrites).toBe(0);
    // The worker dates it with its own clock (the KV metadata it wrote, rate-limited: not per heartbeat).
    const kv = await w.edge!.mf.getKVNamespace("EDGELB_KV");
    const stored = await kv.getWithMetadata(`cluster/${w.config.cluster}`);
    const meta = stored.metadata as { heartbeatAt?: number } | null;
    expect(meta?.heartbeatAt).toBeGreaterThan(0);
    expect(meta!.heartbeatAt!).toBeLessThanOrEqual(Date.now());
  });
});

describe("heartbeat through the kv-api sink", () => {
  it("rewrites the unchanged value with a new heartbeatAt: one KV write per heartbeat (144 a day at the 10 min default)", async () => {
    const w = await startWorld({ addressBase: "127.66.2", sink: "kv-api", nodes: 1, noAgent: true });
    worlds.push(w);
    const agent = await w.startAgent({ heartbeatMs: 400, ...probes(w) });
    const first = await w.waitForSnapshot((s) => s.nodes.every((n) => n.healthy), "first snapshot");
    await waitFor(() => agent.controller.lastGeneration === first.generation, "the write accepted");
    const writes = w.cf!.writes.length;
    const generation = first.generation;
    await waitFor(() => agent.heartbeat.sent >= 2, "two heartbeats", 15_000);
    const beats = w.cf!.writes.slice(writes);
    expect(beats.length).toBe(agent.heartbeat.kvWrites);
    expect(agent.heartbeat.kvWrites).toBeGreaterThanOrEqual(2);
    // The same generation again, dated by the agent's clock in the KV metadata (the worker bounds it by its own).
    for (const b of beats) expect(b.snapshot.generation).toBe(generation);
    const at = beats.map((b) => (b.metadata as { heartbeatAt: number }).heartbeatAt);
    expect(at[1]!).toBeGreaterThan(at[0]!);
    expect(agent.controller.lastGeneration).toBe(generation);
  });
});
