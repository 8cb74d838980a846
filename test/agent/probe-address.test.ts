// rv-ops 7: nodes that publish an ExternalIP but whose kube-proxy (nftables mode, or
// --nodeport-addresses primary) answers health checks only on the InternalIP. The simulated
// nodes serve /healthz and healthCheckNodePorts on their own loopback address (the InternalIP);
// each Node also lists an ExternalIP on which nothing listens. The agent publishes the ExternalIP
// and probes the InternalIP: a failing node leaves rotation instead of every node failing open.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Snapshot } from "../../worker/snapshot/schema.ts";
import type { Agent } from "../../sync-agent/agent.ts";
import { healthyNodes, lbService, startWorld, waitFor, type World } from "./harness.ts";

// ops' own loopback range (127.106.0.0/16): nodes on 127.106.1.x, their "external" addresses on 127.106.2.x.
let w: World;
let agent: Agent;
beforeAll(async () => {
  w = await startWorld({ addressBase: "127.106.1", sink: "kv-api", nodes: 2, noAgent: true, config: {
      addressPreference: ["ExternalIP", "InternalIP"],
      // Probes with room for a loaded machine: a probe timing out at both addresses would be a fail-open here.
      health: { mode: "kube-proxy", intervalMs: 400, timeoutMs: 300, rise: 2, fall: 2, healthzPort: 0 },
    },
  });
  for (const [i, n] of w.cluster.nodes.entries()) {
    w.cluster.patch("Node", n.name, { status: { addresses: [{ type: "InternalIP", address: n.address }, { type: "ExternalIP", address: `127.106.2.${11 + i}` }, { type: "Hostname", address: n.name }] } }, { status: true });
  }
  w.cluster.create(lbService("shop", { hostnames: "shop.example.com", spec: { externalTrafficPolicy: "Local" } }));
  await w.cluster.placePods({ name: "shop" }, ["node-1"]);
  agent = await w.startAgent({ health: { ...w.config.health, healthzPort: w.cluster.healthzPort } });
}, 30_000);
afterAll(async () => {
  await w?.stop();
});

const shop = (s: Snapshot) => s.services.find((x) => x.name === "shop");

describe("probe address (kube-proxy answering only on the InternalIP)", () => {
  it("publishes the ExternalIPs, probes the InternalIPs: healthy without fail-open, and a failing node leaves rotation", async () => {
    // Both nodes healthy by their own checks, not by a fail-open (probing the published address, every probe is refused).
    const s = await w.waitForSnapshot((x) => x.nodes.length === 2 && shop(x)?.endpoints?.length === 1 && !x.failOpen && healthyNodes(x).length === 2, "both nodes healthy without fail-open", 15_000);
    expect(s.nodes.map((n) => n.address)).toEqual(["127.106.2.11", "127.106.2.12"]);
    // Local: the healthCheckNodePort answered on node-1's InternalIP (not a fail-open of every endpoint).
    expect(shop(s)!.endpoints).toEqual([{ node: "node-1", weight: 1, healthy: true }]);
    await waitFor(() => agent.health.states().some((t) => t.key.startsWith("local/node-1:") && t.state.healthy === true), "node-1's healthCheckNodePort passing");

    // node-2's kube-proxy reports unhealthy: only node-2 leaves rotation.
    w.cluster.node("node-2").setHealthy(false);
    const after = await w.waitForSnapshot((x) => healthyNodes(x).join() === "node-1", "node-2 out of rotation, node-1 in", 15_000);
    expect(after.failOpen).toBeUndefined();
    // The log says where the failing probe went: node-2's InternalIP.
    expect(w.logs.find((l) => /node node-2 failed its health check/.test(l.msg))).toMatchObject({ address: w.cluster.node("node-2").address });
  }, 30_000);
});
