// The (d) targets' "what limits it" text: the itemized instruction count of (d) − (c) (bench/instructions.ts),
// its parts set against the run's own (d) − (c) in proportion (never a fixed total), and the budget 0.85×
// leaves against what the calls into the runtime alone take.
import { describe, expect, it } from "vitest";
import { dataPlaneTargets, FETCH_PATH_COUNT, fetchPathCosts } from "../../bench/dataplane.ts";
import { summarize, type RowOutcome } from "../../bench/lib/rows.ts";

const outcome = (id: string, rps: number, cpuUs: number): RowOutcome =>
  summarize({ id, label: id, url: "http://x", path: "/", connections: 1, expect: { nodes: ["n"] } }, [{ rps, p50Ms: 1, p99Ms: 1, requests: 1000, bytes: 1000, errors: 0, cpuS: (cpuUs * 1000) / 1e6 }], [], []);

function fetchLimits(dCpuUs: number): string[] {
  const rows: Record<string, RowOutcome> = { c: outcome("c", 10_000, 60), d: outcome("d", 5_000, dCpuUs) };
  return dataPlaneTargets((id) => rows[id])
    .filter((t) => t.target.startsWith("(d)"))
    .map((t) => t.limit ?? "");
}

describe("what limits (d)", () => {
  it("the count's items add up to its whole gap: the calls into the API, GC and the rest", () => {
    const t = FETCH_PATH_COUNT;
    const calls = t.calls.reduce((a, c) => a + c.k, 0);
    // Each item is rounded to 0.1 k as the itemizer prints it.
    expect(Math.abs(calls + (t.gc[1]! - t.gc[0]!) + t.rest - (t.d - t.c))).toBeLessThanOrEqual(0.3);
  });

  it("sets each part against this run's gap in proportion, from the figures (gap 80 µs)", () => {
    const limits = fetchLimits(140);
    // (c) 60 µs here: 0.85× allows 10.6 µs more, (d) spends 80 µs more.
    expect(limits).toHaveLength(2);
    const t = FETCH_PATH_COUNT;
    const gap = t.d - t.c;
    const calls = t.calls.reduce((a, c) => a + c.k, 0);
    for (const text of limits) {
      expect(text).toContain(`(d) − (c) = ${gap.toFixed(1)} k`);
      expect(text).toContain(`calls from JavaScript into workerd's API ${calls.toFixed(1)} k (~${Math.round((80 * calls) / gap)} µs of this run's 80 µs)`);
      expect(text).toContain(`code ${t.code}`);
    }
  });

  it("sets the 0.85× allowance in µs of this run's CPU, not in instructions, and says how far over (d) is (rv12b 1)", () => {
    // (c) 109 µs: 0.85× allows 19.2 µs more; (d) spends 23 µs more, 3.8 µs over.
    const text = fetchPathCosts(23, 109);
    expect(text).toContain("0.85× allows (d) at most (c) ÷ 0.85 of CPU, 19.2 µs per request more than (c)'s 109 µs; (d) spends 23.0 µs more, 3.8 µs over");
    expect(text).toContain("The calls into the API alone (~15 µs) fit in the allowance; with GC and the rest they do not");
    // A run where (d) is within the allowance says so, and claims nothing about what prevents it.
    const within = fetchPathCosts(18, 109);
    expect(within).toContain("this run's (d) spends 18.0 µs more, within it");
    expect(within).not.toContain("over (at this run's");
  });

  it("names each call with the guarantee that needs it, and prints no NaN for an unknown gap", () => {
    const text = fetchPathCosts(Number.NaN);
    expect(text).toContain("EDGELB_ECHO_REQUEST_ID=always) adds ~35 k");
    expect(text).toContain("1.4 k, net: ");
    expect(text).toContain("forged forwarding fields are refused");
    expect(text).toContain("the deadline: setTimeout");
    expect(text).not.toMatch(/NaN/);
  });
});
