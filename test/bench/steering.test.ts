// The steering bench measures real decisions: every policy orders all three
// clusters for every request, and the policies that depend on the client's
// place put different clusters first for clients in different places.
import { expect, it } from "vitest";
import { measureSteering, runSteering } from "../../bench/steering.ts";

it("measures a real decision per policy on 3 clusters (300 services)", async () => {
  const results = await measureSteering(300, 4000);
  expect(results.map((r) => r.policy)).toEqual(["failover", "proximity", "geo", "weighted", "random"]);
  for (const r of results) {
    expect(r.decisionUs).toBeGreaterThan(0);
    expect(Object.values(r.firsts).reduce((a, b) => a + b, 0)).toBe(4000);
  }
  const firsts = Object.fromEntries(results.map((r) => [r.policy, Object.keys(r.firsts).sort()]));
  // Failover: the first cluster, except for the few synthetic Services with no healthy node there.
  expect(results[0]!.firsts["us-east"]).toBeGreaterThan(0.9 * 4000);
  // Berlin → Frankfurt, Boston → Ashburn, Delhi → Mumbai.
  expect(firsts.proximity).toEqual(["ap-south", "eu-central", "us-east"]);
  expect(firsts.random).toEqual(["ap-south", "eu-central", "us-east"]);
});

it("reports the target row in quick mode without a verdict", async () => {
  const section = await runSteering({ quick: true, log: () => {} });
  expect(section.rows).toHaveLength(5);
  expect(section.targets![0]!.verdict).toBe("");
});
