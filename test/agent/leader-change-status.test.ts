// Status at a leader change: the standby that takes the lease knows the edge
// only as it was when the standby started (it reads the stored snapshot then,
// and again on taking over). Until that re-read, status computed from its old
// copy would clear the EXTERNAL-IP of every Service the old leader pushed
// since. Here the re-read is held (the Cloudflare API refuses reads for a
// while, as it does under load or in an outage) and every Service status the
// API server stores is recorded: the hostname must never leave. Loopback
// 127.116.1.0/24 (this file's own).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Agent } from "../../sync-agent/agent.ts";
import { createAgent } from "../../sync-agent/agent.ts";
import { attachCitizen, type AttachedCitizen } from "../../sync-agent/citizen/attach.ts";
import { CITIZEN_DEFAULTS } from "../../sync-agent/citizen/index.ts";
import { loadKubeConfig } from "../../sync-agent/kubeconfig.ts";
import { EventRecorder, StatusWriter, kubeEventSink, kubeServiceStatusClient } from "../../sync-agent/status/index.ts";
import { lbService, startWorld, waitFor, type World } from "./harness.ts";

let w: World;
const replicas: { agent: Agent; citizen: AttachedCitizen }[] = [];

async function replica(identity: string): Promise<{ agent: Agent; citizen: AttachedCitizen }> {
  const agent = createAgent(w.config, { log: w.log.child({ replica: identity }) });
  const citizen = attachCitizen(agent, {
    ...CITIZEN_DEFAULTS,
    metricsAddress: "",
    identity,
    leaseNamespace: "edgelb",
    // Short, valid timings: the standby takes a released lease within a retry period.
    timings: { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 200 },
  });
  await citizen.start();
  await agent.start();
  const r = { agent, citizen };
  replicas.push(r);
  return r;
}

beforeAll(async () => {
  w = await startWorld({ addressBase: "127.116.1", nodes: 1, sink: "kv-api", noAgent: true });
});

afterAll(async () => {
  for (const r of replicas.splice(0)) {
    await r.citizen.stop();
    await r.agent.stop();
  }
  await w?.stop();
});

const ingress = (name: string): string[] => (w.cluster.tryGet("Service", name)?.status?.loadBalancer?.ingress ?? []).map((i: { hostname?: string }) => i.hostname ?? "?");

describe("Service status at a leader change", () => {
  it("the new leader never clears an EXTERNAL-IP the old leader wrote while it cannot re-read the edge", async () => {
    w.cluster.create(lbService("one", { hostnames: "one.example.com" }));
    await w.cluster.placePods({ namespace: "default", name: "one" }, ["node-1"]);
    const a = await replica("agent-a");
    await waitFor(() => a.citizen.citizen.isLeader() || undefined, "agent-a leading", 20_000);
    await waitFor(() => ingress("one").includes("one.example.com") || undefined, "one's EXTERNAL-IP", 20_000);
    // The standby reads the stored snapshot now (one Service) ...
    const b = await replica("agent-b");
    await b.agent.synced();
    // ... and the leader publishes a second one after that.
    w.cluster.create(lbService("two", { hostnames: "two.example.com" }));
    await w.cluster.placePods({ namespace: "default", name: "two" }, ["node-1"]);
    await waitFor(() => ingress("two").includes("two.example.com") || undefined, "two's EXTERNAL-IP", 20_000);

    const seen: string[] = [];
    const unsubscribe = w.cluster.store.subscribe((e) => {
      if (e.object.kind === "Service" && e.object.metadata?.name === "two") seen.push(JSON.stringify(e.object.status?.loadBalancer?.ingress ?? []));
    });
    try {
      w.cf!.fail({ status: 503, methods: ["GET"] });
      await a.citizen.stop(); // releases the lease: b takes over
      await a.agent.stop();
      await waitFor(() => b.citizen.citizen.isLeader() || undefined, "agent-b leading", 20_000);
      // b evaluates as leader inside the window (a new Service makes sure of it) while it cannot read the edge.
      const before = b.agent.controller.evaluations;
      w.cluster.create(lbService("three", { hostnames: "three.example.com" }));
      await waitFor(() => b.agent.controller.evaluations > before || undefined, "agent-b evaluating as leader", 20_000);
      expect(b.agent.controller.storedKnown, "evaluated before the re-read").toBe(false);
      w.cf!.clear();
      await w.cluster.placePods({ namespace: "default", name: "three" }, ["node-1"]);
      // Once b pushed "three" and wrote its status, any status b planned before is written too (one writer, in order).
      await waitFor(() => ingress("three").includes("three.example.com") || undefined, "three's EXTERNAL-IP, written by agent-b", 30_000);
    } finally {
      unsubscribe();
      w.cf!.clear();
    }
    expect(ingress("two")).toEqual(["two.example.com"]);
    expect(seen.filter((x) => !x.includes("two.example.com")), "two's EXTERNAL-IP must never be cleared").toEqual([]);
  });
  it("a deposed leader's last status write, planned from an older version of the Service, does not land after the new leader's", async () => {
    // Only this test's writers from here on.
    for (const r of replicas.splice(0)) {
      await r.citizen.stop();
      await r.agent.stop();
    }
    w.cluster.create(lbService("four", { hostnames: "four.example.com" }));
    const old = structuredClone(w.cluster.get("Service", "four")); // what the old leader's cache holds
    // The new leader has written since (here: the hostname the Service has now).
    w.cluster.patch("Service", "four", { status: { loadBalancer: { ingress: [{ hostname: "four-new.example.com" }] } } }, { status: true });
    const { kubeConfig } = loadKubeConfig(w.cluster.kubeconfigPath);
    const writer = new StatusWriter({
      client: kubeServiceStatusClient(kubeConfig),
      events: new EventRecorder({ sink: kubeEventSink(kubeConfig), instance: "deposed" }),
      isLeader: () => true, // it still believes it leads: its write is already on its way
    });
    const result = await writer.reconcile({
      services: [old],
      verdicts: new Map([["default/four", { kind: "served" as const }]]),
      published: { nodes: [{ name: "node-1", healthy: true }], services: [{ namespace: "default", name: "four", hostnames: ["four.example.com"], trafficPolicy: "Cluster" }] },
    });
    expect(result).toEqual({ patched: [], failed: [] });
    expect(ingress("four")).toEqual(["four-new.example.com"]);
  });
});
