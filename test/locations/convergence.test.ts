// Convergence across locations (issue 19): three locations of the real worker
// in plain workerd, the agent pushing to location 0, KV taking 30 s to reach
// the others — longer than the bound asserted here, so the other locations can
// only have learned each change through the fast path (each keeps a check held
// at the generations Durable Object, which a push answers at once). A fourth,
// control location runs the same worker with its path to the object cut during
// each scenario: it is still on the old node when the others have converged,
// and every other location's snapshot then says it came from the fast path.
// For each scenario and each location: how long until it stopped trying the
// old node, that no request failed, and how many waited on a connect timeout.
// The blackhole is in play:
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
/**
 * What the fast path may add to the pushed-to location's time (which is the agent's detection and
 * push): the held check answers at the push, so a round trip, an install, and room for a loaded machine.
 * (Polling every second instead would add up to a second more, polling every 5 s up to five.)
 */
const FAST_PATH_MS = 1_500;
/** Overall, detection included (fall × interval + a probe interval + the agent's 300 ms push delay, slower on a loaded machine). */
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
    control: true,
    addressBase: "127.84.40",
    nodes: 3,
    health: HEALTH,
    everyMs: 40,
    concurrency: CONCURRENCY,
    vars: { EDGELB_CONTROL_HOSTS: "127.84.40.2,127.84.40.3,127.84.40.4,127.84.40.5" },
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

/** The measured locations (the control's figures are its own: it never learns in time). */
const measured = (report: LocationReport[]) => report.filter((r) => !r.control);

function expectConverged(report: LocationReport[]): void {
  const all = JSON.stringify(report);
  for (const r of measured(report)) {
    // It was sending to the old node before the change: its time to stop is not a vacuous 0.
    expect(r.servedOldBefore, `location ${r.location}: ${all}`).toBeGreaterThan(0);
    expect(r.failed, `location ${r.location}: ${all}`).toBe(0);
    expect(r.convergedMs, `location ${r.location}: ${all}`).toBeLessThanOrEqual(BOUND_MS);
    expect(r.convergedMs, `location ${r.location} after the pushed-to location 0: ${all}`).toBeLessThanOrEqual(report[0]!.convergedMs + FAST_PATH_MS);
    // Learned the change (installed the generation location 0 ended with) soon after location 0 did.
    expect(r.learnedMs, `location ${r.location}: ${all}`).toBeDefined();
    expect(r.learnedMs!, `location ${r.location} learned after location 0: ${all}`).toBeLessThanOrEqual(report[0]!.learnedMs! + FAST_PATH_MS);
    // A healthy node never missed the connect timeout (the default is not too short for a loaded machine).
    expect(r.connectTimeoutsElsewhere, `location ${r.location}: ${all}`).toBe(0);
    // A dropping node costs the requests in flight at it a hedge delay (worker/proxy/hedge), not a connect
    // timeout: at most one wait per location (a hedge that found no other usable node).
    expect(r.waitedOnConnectTimeout, `location ${r.location}: ${all}`).toBeLessThanOrEqual(1);
  }
  const requests = measured(report).reduce((a, r) => a + r.requests, 0);
  const waited = measured(report).reduce((a, r) => a + r.waitedOnConnectTimeout, 0);
  expect(waited, all).toBeLessThan(requests / 100);
}

describe("every location follows the cluster within seconds (KV propagation 30 s, fast path, agent pushes to location 0)", () => {
  it("a node fails its health check: every location stops sending to it, no request fails", async () => {
    await sim.serve({ name: "web", host: "web.example.com", podsOn: ["node-1", "node-2", "node-3"] });
    const report = await scenario("web.example.com", "node-2", () => sim.cluster.node("node-2").setHealthy(false));
    expectConverged(report);
    // The fast path delivered it: every location but the one pushed to has its snapshot from the object,
    // and the control (same KV, no object) still sends to node-2, which still answers.
    const all = JSON.stringify(report);
    expect(measured(report).map((r) => r.source), all).toEqual(["push", "fast", "fast"]);
    const control = report.find((r) => r.control)!;
    expect(control.stillOnOldNode, all).toBe(true);
    expect(control.generation!, all).toBeLessThan(report[0]!.generation!);
    expect(control.failed, all).toBe(0);
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
      // Its health check fails from the moment it starts dropping: setting up the blackholes (a thread
      // filling each port's accept queue) takes a while on a loaded machine, which is not detection time.
      sim.cluster.node("node-1").setHealthy(false);
      await sim.cluster.node("node-1").setBehavior({ mode: "drop" });
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
