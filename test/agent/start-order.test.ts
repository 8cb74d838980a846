// A newcomer reads the agent's first lines top-down: "starting: cluster …,
// sink …, API server …" comes first, then leader election's lines (which the
// citizen plugin logs as it attaches), not the other way round.
import type { V1Lease } from "@kubernetes/client-node";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type SimCluster } from "../../lab/cluster/cluster.ts";
import { waitFor } from "../../lab/cluster/wait.ts";
import { citizenPlugin } from "../../sync-agent/citizen/attach.ts";
import { CITIZEN_DEFAULTS } from "../../sync-agent/citizen/index.ts";
import { defaultConfig } from "../../sync-agent/config.ts";
import type { LeaseStore } from "../../sync-agent/leader/index.ts";
import { runAgent } from "../../sync-agent/main.ts";
import type { Sink } from "../../sync-agent/sinks/types.ts";

let cluster: SimCluster;
beforeAll(async () => {
  cluster = await startCluster({ standIn: true, nodes: 1, addressBase: "127.73.18", healthzPort: 0 });
});
afterAll(() => cluster?.stop());

describe("the agent's first log lines", () => {
  it("say starting: … before any leader-election line", async () => {
    const lines: string[] = [];
    const log = pino({ level: "debug" }, { write: (l: string) => void lines.push(JSON.parse(l).msg as string) });
    let lease: V1Lease | null = null;
    const leaseStore: LeaseStore = {
      namespace: "edgelb",
      name: "edgelb-sync-agent",
      get: async () => (lease ? structuredClone(lease) : null),
      create: async (l) => (lease = { ...l, metadata: { ...l.metadata, resourceVersion: "1" } }),
      replace: async (l) => (lease = { ...l, metadata: { ...l.metadata, resourceVersion: String(Number(lease?.metadata?.resourceVersion ?? 0) + 1) } }),
    };
    const sink: Sink = { description: "test edge", read: async () => ({ snapshot: null, generation: 0 }), write: async () => ({ bytes: 1, unchanged: false }), remove: async () => {} };
    const config = defaultConfig({ cluster: "home", kubeconfig: cluster.kubeconfigPath, addressPreference: ["InternalIP"], health: { mode: "kube-proxy", intervalMs: 200, timeoutMs: 150, rise: 1, fall: 1, healthzPort: cluster.healthzPort }, resyncMs: 0 });
    const shutdown = new AbortController();
    const running = runAgent(config, shutdown.signal, [citizenPlugin({ ...CITIZEN_DEFAULTS, metricsAddress: "127.73.18.100:0", identity: "agent-a", leaseNamespace: "edgelb" }, { leaseStore })], { sink, log });
    await waitFor(() => lease?.spec?.holderIdentity === "agent-a" && lines.some((l) => /^starting: /.test(l)), "leading and started");
    shutdown.abort();
    await running;
    const starting = lines.findIndex((l) => /^starting: /.test(l));
    const leader = lines.findIndex((l) => /lead|lease/i.test(l));
    expect(leader, lines.join("\n")).toBeGreaterThanOrEqual(0);
    expect(starting, lines.join("\n")).toBeLessThan(leader);
  });
});
