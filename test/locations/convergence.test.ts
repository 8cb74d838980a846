// Convergence across locations (issue 19): three locations of the real worker
// in plain workerd, the agent pushing to location 0, KV taking 30 s to reach
// the others — longer than the bound asserted here, so the other locations can
// only have learned each change through the fast path (the generations
// Durable Object, asked every second here). For each scenario and each
// location: how long until it stopped sending to the old node, and that no
// request failed.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSimulation, type LocationReport, type Simulation } from "./simulation.ts";

const PROPAGATION_MS = 30_000;
const CACHE_TTL_S = 60;
const FAST_CHECK_S = 1;
const HEALTH = { intervalMs: 200, fall: 2 };
/** Detection (fall × interval) + debounce + push + fast check + the isolate's 2 s check, with room for a loaded machine. */
const BOUND_MS = 8_000;
const CONNECT_TIMEOUT_MS = 2_000;

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
    vars: { EDGELB_CONTROL_HOSTS: "127.22.40.2,127.22.40.3,127.22.40.4" },
  });
}, 120_000);

afterAll(async () => {
  await sim?.stop();
});

async function scenario(host: string, oldNode: string, change: () => Promise<void> | void): Promise<LocationReport[]> {
  const { report, failures } = await sim.scenario({ host, oldNode, change, timeoutMs: BOUND_MS + 5_000, slowMs: CONNECT_TIMEOUT_MS });
  expect(failures.slice(0, 5), JSON.stringify(report)).toEqual([]);
  return report;
}

function expectConverged(report: LocationReport[]): void {
  for (const r of report) {
    expect(r.failed, `location ${r.location}`).toBe(0);
    expect(r.waitedOnConnectTimeout, `location ${r.location}`).toBe(0);
    expect(r.convergedMs, `location ${r.location}: ${JSON.stringify(report)}`).toBeLessThanOrEqual(BOUND_MS);
  }
}

describe("every location follows the cluster within seconds (KV propagation 30 s, fast path, agent pushes to location 0)", () => {
  it("a node fails its health check: every location stops sending to it, no request fails", async () => {
    await sim.serve({ name: "web", host: "web.example.com", podsOn: ["node-1", "node-2", "node-3"] });
    const report = await scenario("web.example.com", "node-2", () => sim.cluster.node("node-2").setHealthy(false));
    expectConverged(report);
    sim.cluster.node("node-2").setHealthy(true);
  });

  it("a Local Service's pods move to other nodes: every location stops sending to the old node", async () => {
    await sim.serve({ name: "local", host: "local.example.com", local: true, podsOn: ["node-1", "node-3"] });
    const report = await scenario("local.example.com", "node-3", () => sim.cluster.placePods("local", ["node-1", "node-2"]).then(() => {}));
    expectConverged(report);
  });

  it("a node is drained and removed: every location stops sending to it, no request fails", async () => {
    const report = await scenario("web.example.com", "node-3", async () => {
      await sim.cluster.placePods("web", ["node-1", "node-2"]);
      await sim.cluster.removeNode("node-3");
    });
    expectConverged(report);
  });
});
