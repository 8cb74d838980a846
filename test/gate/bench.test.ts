// The gate bench's pure parts: the gates' CPU per request from before/after
// samples around each round, and the two targets.
import { describe, expect, it } from "vitest";
import { gateCpuPerRequest, gateTargets, loadNote } from "../../bench/gate.ts";
import type { RowOutcome } from "../../bench/lib/rows.ts";

const row = (id: string, rps: number, p50Ms: number, valid = true): RowOutcome =>
  ({ spec: { id, label: id, url: "", path: "/", expect: { nodes: [] }, connections: 32 }, rounds: [], before: [], after: [], errors: 0, requests: 0, valid, rps, p50Ms, p99Ms: 0, mibPerS: 0, ...(valid ? {} : { invalid: "probe failed" }) }) as RowOutcome;

describe("gate bench", () => {
  it("pairs CPU samples per round and takes the median µs per request", () => {
    const rounds = [{ requests: 1000 }, { requests: 2000 }, { requests: 1000 }] as RowOutcome["rounds"];
    // Rounds use 0.1 s, 0.1 s and 0.3 s of gate CPU: 100, 50 and 300 µs per request.
    expect(gateCpuPerRequest([1, 1.1, 2, 2.1, 3, 3.3], { rounds })).toBeCloseTo(100);
    expect(gateCpuPerRequest([], { rounds })).toBeUndefined();
  });

  it("meets the targets at ≥ 0.85× throughput and < 0.3 ms added p50, and says invalid when a row is", () => {
    expect(gateTargets(row("e", 1000, 1.0), row("g", 900, 1.2)).map((t) => t.verdict)).toEqual(["met", "met"]);
    expect(gateTargets(row("e", 1000, 1.0), row("g", 800, 1.4)).map((t) => t.verdict)).toEqual(["missed", "missed"]);
    expect(gateTargets(row("e", 1000, 1.0), row("g", 900, 1.2, false)).map((t) => t.verdict)).toEqual(["invalid", "invalid"]);
  });

  it("says the machine's load during the rounds, and that a loaded run is no evidence", () => {
    const rounds = (loads: number[]) => ({ rounds: loads.map((loadAvg) => ({ loadAvg })) }) as never;
    expect(loadNote([rounds([1.2, 1.5]), rounds([1.4])], 2)).toBe("machine load (1-minute load average on 2 cores) during the rounds: 1.2–1.5");
    expect(loadNote([rounds([14.8, 15.3])], 2)).toMatch(/14\.8–15\.3; above 2 other work shared the cores.*not evidence/);
    expect(loadNote([rounds([])], 2)).toBe("machine load during the rounds: not recorded");
  });
});
