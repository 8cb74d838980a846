// A Service status write refused with 409 (rv-ops s7 finding 4): someone labels the Service just
// before our first write lands (kubectl label, a GitOps tool). The informer keeps no labels, so no
// update event follows; the writer must ask for another sync itself, and the EXTERNAL-IP appears
// within seconds, not at the next resync. Loopback 127.116.3.0/24 (this file's own).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { V1LoadBalancerIngress } from "@kubernetes/client-node";
import { createAgent, type Agent } from "../../sync-agent/agent.ts";
import { attachCitizen, type AttachedCitizen } from "../../sync-agent/citizen/attach.ts";
import { CITIZEN_DEFAULTS } from "../../sync-agent/citizen/index.ts";
import { loadKubeConfig } from "../../sync-agent/kubeconfig.ts";
import { kubeServiceStatusClient } from "../../sync-agent/status/index.ts";
import { lbService, startWorld, waitFor, type World } from "./harness.ts";

let w: World;
let agent: Agent;
let citizen: AttachedCitizen;
const refused: string[] = [];

beforeAll(async () => {
  w = await startWorld({ addressBase: "127.116.3", nodes: 1, sink: "kv-api", noAgent: true });
  const real = kubeServiceStatusClient(loadKubeConfig(w.cluster.kubeconfigPath).kubeConfig);
  let raced = false;
  agent = createAgent(w.config, { log: w.log.child({ replica: "a" }) });
  citizen = attachCitizen(
    agent,
    { ...CITIZEN_DEFAULTS, leaderElect: false, metricsAddress: "", identity: "a" },
    {
      statusClient: {
        patchIngress: async (ns: string, name: string, ingress: V1LoadBalancerIngress[], rv?: string) => {
          if (!raced && name === "web") {
            raced = true;
            w.cluster.patch("Service", name, { metadata: { labels: { team: "x" } } }, { namespace: ns });
          }
          try {
            return await real.patchIngress(ns, name, ingress, rv);
          } catch (err) {
            refused.push(`${name}: ${String((err as { code?: number }).code)}`);
            throw err;
          }
        },
      },
    },
  );
  await citizen.start();
  await agent.start();
});

afterAll(async () => {
  await citizen?.stop();
  await agent?.stop();
  await w?.stop();
});

describe("Service status after a 409", () => {
  it("the EXTERNAL-IP is written within seconds when the first write conflicted with a label change", async () => {
    w.cluster.create(lbService("web", { hostnames: "web.example.com" }));
    await w.cluster.placePods({ namespace: "default", name: "web" }, ["node-1"]);
    await waitFor(() => (w.cluster.tryGet("Service", "web")?.status?.loadBalancer?.ingress ?? []).some((i: { hostname?: string }) => i.hostname === "web.example.com") || undefined, "web's EXTERNAL-IP", 30_000);
    expect(refused).toEqual(["web: 409"]);
    // Counted, so a lasting fight with another writer shows on /metrics.
    expect(await citizen.citizen.metrics.registry.getSingleMetricAsString("edgelb_service_status_writes_total")).toMatch(/result="conflict"\} 1/);
  });
});
