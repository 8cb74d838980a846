// The gateway bench must time real decisions: every warm-up request of its
// mix reaches a node through a matched rule (none is a 404 or an invalid
// backend), so a change that breaks matching shows up here, not as a
// suspiciously fast figure.
import { expect, it } from "vitest";
import { measure } from "../../bench/gateway.ts";

it("the gateway bench's decisions match a rule and pick a node, on one hostname each and all on one", () => {
  for (const shared of [false, true]) {
    const m = measure("small", 50, shared, 1_000);
    expect(m.hits).toEqual({ origin: 2_000 });
    expect(m.decisionUs).toBeGreaterThan(0);
  }
});

it("the adversarial rows decide as the naive matcher does, reach a node, and run a bounded number of regexes", async () => {
  const { adversarialCases, measureAdversarial } = await import("../../bench/gateway.ts");
  const { MAX_REGEX_CANDIDATES_PER_DECISION, MAX_REGEX_PATHS_PER_KEY } = await import("../../worker/snapshot/regex-key.ts");
  const [regex, headers, capped, hostile] = adversarialCases(300).map((c) => measureAdversarial(c.label, c.snapshot, c.probes, 500));
  // Probes: 200 hits each, and two misses that must be 404s (the naive matcher agrees, or measure throws).
  expect(regex!.hits).toEqual({ node: 200, "404": 2 });
  expect(regex!.regexRunsMax).toBe(1); // one keyed regex per decision, not 300
  expect(headers!.hits).toEqual({ node: 202 });
  expect(headers!.regexRunsMax).toBe(0);
  expect(capped!.hits.node).toBeGreaterThan(100);
  expect(capped!.regexRunsMax).toBeLessThanOrEqual(MAX_REGEX_PATHS_PER_KEY + 1);
  // A path naming every key (5 keys × 64 here) runs the budget, not 300: the catch-all answers it.
  expect(hostile!.regexRunsMax).toBe(MAX_REGEX_CANDIDATES_PER_DECISION);
  expect(hostile!.hits).toEqual({ node: 200 });
});
