// Convergence across locations (issue 19): three locations of the real worker
// in plain workerd, the agent pushing to location 0, KV taking 30 s to reach
// the others — longer than the bound asserted here, so the other locations can
// only have learned each change through the fast path (the generations
// Durable Object, asked every second here). For each scenario and each
// location: how long until it stopped trying the old node, that no request
// failed, and how many waited on a connect timeout. The blackhole is in play:
// once a Local Service's last pod leaves a node, that node's NodePort drops
// new connections (kube-proxy's DROP rule), so a stale location's attempt
// there waits the connect timeout, once per isolate, then ejects the node.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_CONNECT_TIMEOUT_MS } from "../../worker/snapshot/schema.ts";
import { startSimulation, type LocationReport, type Simulation } from "./simulation.ts";

const PROPAGATION_MS = 30_000;
const CACHE_TTL_S = 60;
const FAST_CHECK_S = 1;
const HEALTH = { intervalMs: 200, fall: 2 };
/** Detection (fall × interval) + debounce + push + fast check + the isolate's 2 s check, with room for a loaded machine. */
const BOUND_MS = 8_000;
/** Traffic loops per location: requests in flight at once. */
const CONCURRENCY = 3;

let sim: Simulation;

beforeAll(async () => {
  sim = await startSimulation({
    locations: 3,
    propagationMs: PROPAGATION_MS,
    cacheTtlS: CACHE_TTL_S,
    fastCheckS: FAST_CHECK_S,
    addressBase: "127.22.40",
    nodes: 3,
    health: HEALTH,
    everyMs: 40,
    concurrency: CONCURRENCY,
    vars: { EDGELB_CONTROL_HOSTS: "127.22.40.2,127.22.40.3,127.22.40.4" },
  });
}, 120_000);

afterAll(async () => {
  await sim?.stop();
});

async function scenario(host: string, oldNode: string, change: () => Promise<number | void> | void): Promise<LocationReport[]> {
  const { report, failures } = await sim.scenario({ host, oldNode, change, timeoutMs: BOUND_MS + 5_000, slowMs: DEFAULT_CONNECT_TIMEOUT_MS });
  expect(failures.slice(0, 5), JSON.stringify(report)).toEqual([]);
  return report;
}

function expectConverged(report: LocationReport[]): void {
  const all = JSON.stringify(report);
  for (const r of report) {
    // It was sending to the old node before the change: its time to stop is not a vacuous 0.
    expect(r.servedOldBefore, `location ${r.location}: ${all}`).toBeGreaterThan(0);
    expect(r.failed, `location ${r.location}: ${all}`).toBe(0);
    expect(r.convergedMs, `location ${r.location}: ${all}`).toBeLessThanOrEqual(BOUND_MS);
    // A healthy node never missed the connect timeout (the default is not too short for a loaded machine).
    expect(r.connectTimeoutsElsewhere, `location ${r.location}: ${all}`).toBe(0);
    // A dropping node costs the requests in flight at it a hedge delay (worker/proxy/hedge), not a connect
    // timeout: at most one wait per location (a hedge that found no other usable node).
    expect(r.waitedOnConnectTimeout, `location ${r.location}: ${all}`).toBeLessThanOrEqual(1);
  }
  const requests = report.reduce((a, r) => a + r.requests, 0);
  const waited = report.reduce((a, r) => a + r.waitedOnConnectTimeout, 0);
  expect(waited, all).toBeLessThan(requests / 100);
}

describe("every location follows the cluster within seconds (KV propagation 30 s, fast path, agent pushes to location 0)", () => {
  it("a node fails its health check: every location stops sending to it, no request fails", async () => {
    await sim.serve({ name: "web", host: "web.example.com", podsOn: ["node-1", "node-2", "node-3"] });
    const report = await scenario("web.example.com", "node-2", () => sim.cluster.node("node-2").setHealthy(false));
    expectConverged(report);
    sim.cluster.node("node-2").setHealthy(true);
  });

  it("a Local Service's Deployment rolls out off a node (cordon, rollout restart): its pod there goes ready, terminating, gone, then the node drops new connections; every location stops trying it, no request fails, waits under 1% of the rollout's traffic", async () => {
    // A real rollout (the lab's workloads controller): surge, terminating-but-serving old pods (the
    // healthCheckNodePort says 503 while only those remain), then kube-proxy's DROP on the old node.
    await sim.serve({ name: "local", host: "local.example.com", local: true, replicas: 3 });
    const report = await scenario("local.example.com", "node-3", () => sim.rollOutOff("local", "node-3", 30_000));
    sim.uncordon("node-3");
    // The old node really blackholes (not refuses) now: what the stale locations met.
    const port = Number(sim.cluster.get("Service", "local").spec.ports[0].nodePort);
    expect(sim.cluster.node("node-3").drops(port)).toBe(true);
    expectConverged(report);
  });

  // Not one of the scenarios, but the blackhole every stale location meets: the node drops before
  // anyone can learn. Connect hedging (worker/proxy/hedge) moves the requests in flight at it to another
  // node after the hedge delay instead of the whole connect timeout (docs/worker.md, "Connect hedging").
  it("a node goes dark (drops every connection, fails its health check): requests in flight at it wait only a hedge delay, none the connect timeout; every location stops trying it", async () => {
    const report = await scenario("web.example.com", "node-1", async () => {
      await sim.cluster.node("node-1").setBehavior({ mode: "drop" });
      sim.cluster.node("node-1").setHealthy(false);
    });
    // Every location met the dark node before it could learn (dropping starts before the agent can detect it).
    for (const r of report) expect(r.attemptsAtOldNode, JSON.stringify(report)).toBeGreaterThan(0);
    const all = JSON.stringify(report);
    // They met it as a slow connect: answered by another node after the hedge delay, not after a connect timeout.
    expect(report.some((r) => r.delayedByHedge > 0), all).toBe(true);
    expect(report.reduce((a, r) => a + r.waitedOnConnectTimeout, 0), all).toBe(0);
    for (const r of report) {
      expect(r.hedgeDelayMaxMs, `location ${r.location}: ${all}`).toBeLessThan(DEFAULT_CONNECT_TIMEOUT_MS);
      // Once one connect there is slow, new requests skip the node (then its connect timeout ejects it): a few
      // requests per location pay the delay, not every one (2 × the loops: timers run late on a loaded machine).
      expect(r.delayedByHedge, `location ${r.location}: ${all}`).toBeLessThanOrEqual(2 * CONCURRENCY);
    }
    expectConverged(report);
    await sim.cluster.node("node-1").setBehavior({ mode: "ok" });
    sim.cluster.node("node-1").setHealthy(true);
  });

  it("a node is drained and removed: every location stops sending to it, no request fails", async () => {
    const report = await scenario("web.example.com", "node-3", async () => {
      await sim.cluster.placePods("web", ["node-1", "node-2"]);
      await sim.cluster.removeNode("node-3");
    });
    expectConverged(report);
  });
});
