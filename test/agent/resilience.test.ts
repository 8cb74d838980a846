// Things break; the edge must end correct with no update lost: the API server
// going down and coming back, watches reset mid-stream, history compacted
// (410 Gone), a watch that hangs without an error, and the sink failing for a
// while. The edge here is the fake KV store (kv-api sink); what it holds is
// what the worker would serve.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Agent } from "../../sync-agent/agent.ts";
import { healthyNodes, lbService, logsMatching, startWorld, waitFor, type World } from "./harness.ts";

let w: World;
let agent: Agent;
beforeAll(async () => {
  // No periodic re-list here: recovery must come from the restart logic alone.
  w = await startWorld({ addressBase: "127.0.63", sink: "kv-api", nodes: 2, noAgent: true, config: { resyncMs: 0 } });
  agent = await w.startAgent({ health: { ...w.config.health, intervalMs: 500, timeoutMs: 400 } });
  await w.waitForSnapshot((s) => s.nodes.length === 2, "first snapshot");
});
afterAll(() => w?.stop());

const hosts = (s: { services: { hostnames: string[] }[] }) => s.services.flatMap((x) => x.hostnames).sort();

describe("resilience", () => {
  it("keeps serving through an API server outage and catches up after it", async () => {
    await w.cluster.api.stop();
    // Changes land in etcd while the agent cannot see them.
    w.cluster.create(lbService("during-outage", { hostnames: "outage.example.com" }));
    await waitFor(() => logsMatching(w.logs, /watch failed.*re-listing at/).length > 0, "agent noticed the outage");
    expect(hosts((await w.stored())!)).toEqual([]); // last good state still served
    await w.cluster.api.listen();
    await w.waitForSnapshot((s) => hosts(s).includes("outage.example.com"), "change made during the outage");
    expect(Object.values(agent.informers.restarts()).some((n) => n > 0)).toBe(true);
  });

  it("recovers from watches reset mid-stream", async () => {
    w.cluster.api.resetWatches();
    w.cluster.create(lbService("after-reset", { hostnames: "reset.example.com" }));
    await w.waitForSnapshot((s) => hosts(s).includes("reset.example.com"), "change after a watch reset");
  });

  it("re-lists after 410 Gone when history was compacted", async () => {
    await w.cluster.api.stop();
    w.cluster.delete("Service", "after-reset");
    w.cluster.create(lbService("after-compaction", { hostnames: "compacted.example.com" }));
    w.cluster.api.compact();
    await w.cluster.api.listen();
    const s = await w.waitForSnapshot((s) => hosts(s).includes("compacted.example.com"), "change behind a compaction");
    expect(hosts(s)).not.toContain("reset.example.com"); // the delete was not lost either
  });

  it("keeps the newest state while the sink fails, then writes it", async () => {
    const before = w.cf!.writes.length;
    w.cf!.fail({ status: 503, methods: ["PUT"] });
    w.cluster.delete("Service", "after-compaction");
    await waitFor(() => logsMatching(w.logs, /failed: Cloudflare API PUT answered 503/).length > 0, "a failed push");
    w.cluster.create(lbService("while-failing", { hostnames: "failing.example.com" }));
    w.cluster.node("node-2").setHealthy(false);
    await waitFor(() => agent.controller.lastDesired?.body.nodes.find((n) => n.name === "node-2")?.healthy === false, "node-2 down in desired");
    w.cf!.clear();
    const s = await w.waitForSnapshot((s) => hosts(s).includes("failing.example.com") && !hosts(s).includes("compacted.example.com"), "state after the sink recovered", 15_000);
    expect(healthyNodes(s)).toEqual(["node-1"]);
    expect(w.cf!.writes.length).toBe(before + 1);
    w.cluster.node("node-2").setHealthy(true);
    await w.waitForSnapshot((s) => healthyNodes(s).length === 2, "node-2 back");
  });
});

describe("a watch that hangs without an error", () => {
  it("is caught by the periodic re-list", async () => {
    const v = await startWorld({ addressBase: "127.0.64", sink: "kv-api", nodes: 1, config: { resyncMs: 1_000 } });
    try {
      await v.waitForSnapshot((s) => s.nodes.length === 1, "first snapshot");
      v.cluster.api.inject({ path: /\/services$/, watch: true, delayMs: 60_000 });
      v.cluster.api.closeWatches(); // the services watch reconnects and hangs
      v.cluster.create(lbService("stuck", { hostnames: "stuck.example.com" }));
      await v.waitForSnapshot((s) => hosts(s).includes("stuck.example.com"), "change seen by the re-list", 10_000);
      expect(logsMatching(v.logs, /services: fresh list after resync/).length).toBeGreaterThan(0);
    } finally {
      v.cluster.api.clearInjections();
      await v.stop();
    }
  });
});
