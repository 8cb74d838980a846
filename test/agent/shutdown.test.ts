// Graceful shutdown (SIGTERM on a rollout or drain) of the leading agent:
// stop the controller, let the push in flight land, then release the Lease.
// Released earlier, the standby could lead and push while our older push is
// still on its way, and (KV sink: no generation check) roll the edge back.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { V1Lease } from "@kubernetes/client-node";
import { pino } from "pino";
import type { Agent } from "../../sync-agent/agent.ts";
import { citizenPlugin } from "../../sync-agent/citizen/attach.ts";
import { CITIZEN_DEFAULTS } from "../../sync-agent/citizen/index.ts";
import { defaultConfig } from "../../sync-agent/config.ts";
import type { LeaseStore } from "../../sync-agent/leader/index.ts";
import { runAgent } from "../../sync-agent/main.ts";
import type { Sink } from "../../sync-agent/sinks/types.ts";
import type { Snapshot } from "../../worker/snapshot/schema.ts";
import { startCluster, type SimCluster } from "../../lab/cluster/cluster.ts";
import { waitFor } from "../../lab/cluster/wait.ts";

let cluster: SimCluster;
beforeAll(async () => {
  cluster = await startCluster({ standIn: true, nodes: 1, addressBase: "127.16.3", healthzPort: 0 });
});
afterAll(() => cluster?.stop());

describe("shutdown", () => {
  it("stops the controller, waits for the push in flight, then releases the lease", async () => {
    const order: string[] = [];
    // The edge: the first push hangs until the test lets it land.
    let land!: () => void;
    const landed = new Promise<void>((r) => (land = r));
    const sink: Sink = {
      description: "test edge",
      read: async () => ({ snapshot: null, generation: 0 }),
      write: async (s: Snapshot) => {
        order.push(`push ${s.generation} started`);
        await landed;
        order.push(`push ${s.generation} landed`);
        return { bytes: 1, unchanged: false };
      },
      remove: async () => {},
    };
    // The Lease, in memory; a release is a replace without a holder.
    let lease: V1Lease | null = null;
    let rv = 0;
    const leaseStore: LeaseStore = {
      namespace: "edgelb",
      name: "edgelb-sync-agent",
      get: async () => (lease ? structuredClone(lease) : null),
      create: async (l) => (lease = { ...l, metadata: { ...l.metadata, resourceVersion: String(++rv) } }),
      replace: async (l) => {
        if (lease?.spec?.holderIdentity && !l.spec?.holderIdentity) order.push("lease released");
        return (lease = { ...l, metadata: { ...l.metadata, resourceVersion: String(++rv) } });
      },
    };
    let agent: Agent | undefined;
    const observe = (a: Agent) => {
      agent = a;
      const stop = a.controller.stop.bind(a.controller);
      a.controller.stop = () => {
        if (!order.includes("controller stopped")) order.push("controller stopped");
        stop();
      };
    };
    const config = defaultConfig({
      cluster: "home",
      kubeconfig: cluster.kubeconfigPath,
      addressPreference: ["InternalIP"],
      health: { mode: "kube-proxy", intervalMs: 200, timeoutMs: 150, rise: 1, fall: 1, healthzPort: cluster.healthzPort },
      coalesceMs: 20,
      maxDelayMs: 100,
      minWriteIntervalMs: 50,
      resyncMs: 0,
    });
    const shutdown = new AbortController();
    const running = runAgent(
      config,
      shutdown.signal,
      [citizenPlugin({ ...CITIZEN_DEFAULTS, metricsAddress: "127.16.3.100:0", identity: "agent-a", leaseNamespace: "edgelb" }, { leaseStore }), observe],
      { sink, log: pino({ level: "silent" }) },
    );
    await waitFor(() => order.includes("push 1 started"), "a push in flight");
    shutdown.abort(); // SIGTERM
    await waitFor(() => order.includes("controller stopped"), "the controller stopped");
    // The push has not landed, so the lease must still be ours.
    expect(order).not.toContain("lease released");
    expect((lease as V1Lease | null)?.spec?.holderIdentity).toBe("agent-a");
    land();
    await running;
    expect(order).toEqual(["push 1 started", "controller stopped", "push 1 landed", "lease released"]);
    expect(agent?.controller.writes).toBe(1);
  });
});
