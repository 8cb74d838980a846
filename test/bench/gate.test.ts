// The gate bench's pairing of the gates' CPU samples with its rounds (bench/gate.ts): the warm-up load is
// sampled too, before round 1, and must not be taken for a round.
import { describe, expect, it } from "vitest";
import { gateCpuPerRequest } from "../../bench/gate.ts";
import type { RowOutcome } from "../../bench/lib/rows.ts";

describe("gateCpuPerRequest", () => {
  it("pairs the last before/after samples with the rounds, leaving out the warm-up's pair", () => {
    const rounds = [{ requests: 1000 }, { requests: 1000 }, { requests: 1000 }] as RowOutcome["rounds"];
    // Warm-up 0 → 0.5 s (a short load), then rounds of 0.2 s each: 200 µs per request in every round.
    const samples = [0, 0.5, 1, 1.2, 2, 2.2, 3, 3.2];
    expect(gateCpuPerRequest(samples, { rounds })).toBeCloseTo(200);
    // Before the fix the warm-up's 0.5 s went to round 1's requests and round 3's CPU was dropped: 500, 200, 200 → still 200
    // as a median here, but wrong per round; with two rounds it showed.
    expect(gateCpuPerRequest([0, 0.5, 1, 1.2, 2, 2.2], { rounds: rounds.slice(0, 2) })).toBeCloseTo(200);
  });
});
