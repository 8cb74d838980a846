// The (d) targets' "what limits it" text explains the run's own (d) − (c) gap: the items measured in
// isolation against this run's figure, the remainder computed, never a fixed total (rv-proxy s8 3).
import { describe, expect, it } from "vitest";
import { dataPlaneTargets, fetchPathCosts } from "../../bench/dataplane.ts";
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
  it("sets the items measured in isolation against this run's gap and computes the rest (gap 90 µs)", () => {
    const limits = fetchLimits(150);
    expect(limits).toHaveLength(2);
    for (const text of limits) {
      expect(text).toContain("come to ~40 µs of the 90 µs this run shows; the other 50 µs");
      expect(text).not.toContain("45–55");
    }
  });

  it("splits the rest into garbage collection (its callgrind share of the gap) and a part it calls not itemized, never all GC (rv-bench s9 2)", () => {
    for (const text of fetchLimits(150)) {
      expect(text).toContain("the other 50 µs: garbage collection of the objects they and edgelb's JavaScript make, about 10 µs (11% of (d)'s extra instructions under callgrind, at most the rest)");
      expect(text).toContain("and 40 µs not itemized");
    }
    // A rest smaller than the GC estimate (gap 44 µs, rest 4 µs): GC takes it all, never more (rv-bench s9 2b).
    for (const text of fetchLimits(104)) {
      expect(text).toContain("the other 4 µs: garbage collection of the objects they and edgelb's JavaScript make, about 4 µs");
      expect(text).toContain("and 0 µs not itemized");
    }
  });

  it("says when the run shows less than the items add up to (gap 30 µs)", () => {
    for (const text of fetchLimits(90)) expect(text).toContain("more than the 30 µs this run shows");
  });

  it("cites the instruction counter's command line and counts the runtime calls item by item, each with its guarantee", () => {
    const text = fetchPathCosts(80);
    expect(text).toContain("`node --import tsx bench/instructions.ts --rows c,d --warmup 10000 --requests 3000`");
    expect(text).toContain("(c) makes 5 per request");
    expect(text).toContain("(d) 26 (167.6 k; 27 and 173.8 k before pf12)");
    // The items and what each is for.
    for (const item of [
      "setTimeout 6.2 k (the deadlines)",
      "(the only way a deadline can stop a fetch())",
      "for the request guard (control characters, field names) and the forged forwarding fields",
      "as fetch()'s response fields are immutable and the client gets its id back",
      "fetch() passes every hop-by-hop field of an answer on (test/worker/fetch-runtime-fields.test.ts), so none can be skipped",
      "(the body's deadline, and whether it is handed over or piped)",
    ]) {
      expect(text).toContain(item);
    }
    // The items sum to the runtime calls' share of the gap, and the rest is said.
    expect(text).toContain("Together 81 k of the gap");
    expect(text).toContain("What keeps (d) from (c) is what the runtime charges per call");
  });

  it("names each item with its guarantee, whatever the gap", () => {
    const text = fetchPathCosts(Number.NaN);
    expect(text).toContain("(1) one timer per attempt");
    expect(text).toContain("(2) the AbortSignal given to fetch()");
    expect(text).not.toMatch(/NaN/);
  });
});
