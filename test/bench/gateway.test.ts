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
