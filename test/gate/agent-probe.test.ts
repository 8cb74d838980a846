// Issue 15: in gate mode the agent's health check for a node is its node gate's /healthz (and then the
// usual kube-proxy check), so the edge never sends signed traffic to a node whose gate cannot take it.
// Real gates on simulated nodes (127.62.2.x), the real agent (client-node) against the fake API server,
// the fake Cloudflare KV API as the edge's store.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Agent } from "../../sync-agent/agent.ts";
import type { Gate } from "../../sync-agent/gate/main.ts";
import { healthyNodes, lbService, logsMatching, startWorld, waitFor, type World } from "../agent/harness.ts";
import { gateFor, SECRET_1 } from "./harness.ts";

const INTERVAL_MS = 1_000;
let w: World;
let agent: Agent;
let gatePort: number;
const gates = new Map<string, Gate>();
const keyDirs = new Map<string, string>();

/** A gate on the node's address, reading its keys from the node's own directory (the mounted Secret). */
async function openGate(name: string): Promise<Gate> {
  const node = w.cluster.node(name);
  const gate = await gateFor(node.address, { nodeName: name, keysDir: keyDirs.get(name)!, keysReloadMs: 50, metricsAddress: "", listen: `${node.address}:${gatePort ?? 0}` });
  gates.set(name, gate);
  return gate;
}

beforeAll(async () => {
  w = await startWorld({ addressBase: "127.62.2", sink: "kv-api", nodes: 3, noAgent: true });
  for (const n of w.cluster.nodes) {
    const dir = mkdtempSync(join(tmpdir(), `edgelb-gate-probe-${n.name}-`));
    writeFileSync(join(dir, "k1"), SECRET_1);
    keyDirs.set(n.name, dir);
    const gate = await openGate(n.name);
    gatePort ??= gate.port;
  }
  w.cluster.create(lbService("web", { hostnames: "web.example.com" }));
  agent = await w.startAgent({
    origins: { mode: "gate", port: gatePort },
    health: { ...w.config.health, intervalMs: INTERVAL_MS, timeoutMs: 400, rise: 1, fall: 1 },
  });
  await w.waitForSnapshot((s) => healthyNodes(s).length === 3 && s.services.length === 1, "three nodes with ready gates");
});
afterAll(async () => {
  await w?.stop();
  for (const g of gates.values()) await g.close();
  for (const d of keyDirs.values()) rmSync(d, { recursive: true, force: true });
});

const failures = (name: string) => agent.health.states().find((s) => s.key === `node/${name}`)?.state.failures ?? 0;

describe("the agent in gate mode", () => {
  it("publishes origins mode gate while every node's gate is ready", async () => {
    const s = (await w.stored())!;
    expect(s.origins).toEqual({ mode: "gate", port: gatePort });
    expect(healthyNodes(s)).toEqual(["node-1", "node-2", "node-3"]);
  });

  it("gate stopped → the node leaves rotation within two probe intervals; up without a key → still out; key loaded → back", async () => {
    // Stopped: connection refused on nodeIP:gatePort.
    await gates.get("node-2")!.close();
    const stopped = Date.now();
    await w.waitForSnapshot((s) => !healthyNodes(s).includes("node-2"), "node-2 out of rotation", 2 * INTERVAL_MS + 2_000);
    expect(Date.now() - stopped).toBeLessThan(2 * INTERVAL_MS);
    expect(healthyNodes((await w.stored())!)).toEqual(["node-1", "node-3"]);
    const out = logsMatching(w.logs, /node node-2 failed its health check/);
    expect(out).toHaveLength(1);
    expect(out[0]!.msg).toContain(`gate 127.62.2.12:${gatePort}: ECONNREFUSED`);

    // Up again, but its Secret has no key yet: /healthz says 503 "no key loaded".
    rmSync(join(keyDirs.get("node-2")!, "k1"));
    await openGate("node-2");
    await waitFor(() => logsMatching(w.logs, /node-2 still fails its health check, now: .*no key loaded/).length > 0, "the new reason logged");
    // Several more probes: still out, and the reason was said once, not once per probe.
    const seen = failures("node-2");
    await waitFor(() => failures("node-2") >= seen + 2, "two more failed probes", 4 * INTERVAL_MS);
    expect(healthyNodes((await w.stored())!)).toEqual(["node-1", "node-3"]);
    expect(logsMatching(w.logs, /node-2 still fails its health check, now: gate 127\.62\.2\.12:\d+: HTTP 503 \(no key loaded\)/)).toHaveLength(1);

    // The key arrives (Secret updated): the gate loads it, the agent puts the node back.
    writeFileSync(join(keyDirs.get("node-2")!, "k1"), SECRET_1);
    await w.waitForSnapshot((s) => healthyNodes(s).length === 3, "node-2 back in rotation", 4 * INTERVAL_MS);
    expect(logsMatching(w.logs, /node node-2 passed its health check again/)).toHaveLength(1);
  });

  it("a node whose kube-proxy fails is out even with a ready gate (the gate forwards through kube-proxy)", async () => {
    w.cluster.node("node-3").setHealthy(false);
    await w.waitForSnapshot((s) => !healthyNodes(s).includes("node-3"), "node-3 out", 4 * INTERVAL_MS);
    expect(logsMatching(w.logs, /node node-3 failed its health check \(HTTP 503\)/)).toHaveLength(1);
    w.cluster.node("node-3").setHealthy(true);
    await w.waitForSnapshot((s) => healthyNodes(s).length === 3, "node-3 back", 4 * INTERVAL_MS);
  });

  it("every gate without its key: the fail-open error names the gates and their port, not only kube-proxy", async () => {
    for (const dir of keyDirs.values()) rmSync(join(dir, "k1"));
    try {
      await waitFor(() => logsMatching(w.logs, /^EVERY node failed its health checks/).length > 0, "the fail-open error", 6 * INTERVAL_MS);
      const line = logsMatching(w.logs, /^EVERY node failed its health checks/)[0]!;
      expect(line).toMatchObject({ origins: "gate", gatePort });
      expect(line.msg).toContain(`node gates (port ${gatePort}): check the edgelb-node-gate DaemonSet`);
    } finally {
      for (const dir of keyDirs.values()) writeFileSync(join(dir, "k1"), SECRET_1);
    }
    await w.waitForSnapshot((s) => healthyNodes(s).length === 3 && !s.failOpen, "every gate ready again", 6 * INTERVAL_MS);
  });
});
