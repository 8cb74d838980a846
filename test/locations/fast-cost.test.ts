// The fast path's cost as the bench's target rows compute it (issue 19): requests and duration of
// the generations Durable Object per day against the free plan, from the settings.
import { describe, expect, it } from "vitest";
import { budgetNote, fastPathCost, FREE_PLAN, ROUTES_AWAY_SCENARIOS } from "../../bench/convergence.ts";

describe("fast path cost (bench target rows)", () => {
  it("held checks at the defaults: 5 busy locations make 17,280 checks a day while nothing changes, never more than 86,400, and hold the one object all day inside the free plan's duration", () => {
    const c = fastPathCost({ locations: 5, checkS: 5, holdS: 25 });
    expect(c).toMatchObject({ quietChecks: 17_280, maxChecks: 86_400, perChange: 5, gbSeconds: 11_059 });
    expect(c.maxChecks).toBeLessThan(FREE_PLAN.requestsPerDay);
    expect(c.gbSeconds).toBeLessThan(FREE_PLAN.gbSecondsPerDay);
    // A second object held all day (one per cluster) would not fit.
    expect(2 * c.gbSeconds).toBeGreaterThan(FREE_PLAN.gbSecondsPerDay);
  });

  it("polling every 5 s costs the ceiling every day, and checks more often than 4.32 s do not fit 5 locations", () => {
    expect(fastPathCost({ locations: 5, checkS: 5, holdS: 0 })).toMatchObject({ quietChecks: 86_400, maxChecks: 86_400 });
    expect(fastPathCost({ locations: 5, checkS: 4, holdS: 0 }).maxChecks).toBeGreaterThan(FREE_PLAN.requestsPerDay);
  });

  it("a ceiling above the object's daily budget says what the budget does: held checks back off, polling does not", () => {
    const held = fastPathCost({ locations: 5, checkS: 5, holdS: 25 });
    expect(budgetNote(held.maxChecks, true)).toContain("EDGELB_FAST_BUDGET 80,000): past it the object backs every location off so that the day stays below 100,000");
    expect(budgetNote(held.maxChecks, false)).toContain("which polling does not obey");
    expect(budgetNote(fastPathCost({ locations: 4, checkS: 5, holdS: 25 }).maxChecks, true)).toBe("");
  });

  it("the p95 target counts every node failure and the Local rollout, not the drain", () => {
    expect(ROUTES_AWAY_SCENARIOS).toEqual(["node fails its health check", "Local Service rolled out off node-3", "node goes dark (drops all)"]);
  });
});
