// The gate bench's pure parts: the gates' CPU per request from before/after
// samples around each round, and the two targets.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { FLOOR_ANATOMY, HOP_TIMELINE, floorAnatomy, floorSplit, gateCpuPerRound, gitBlobHash, gateCpuPerRequest, gateTargets, loadNote, throughTheGates } from "../../bench/gate.ts";
import type { RowOutcome } from "../../bench/lib/rows.ts";

/** A row whose 9 rounds all measured `rps` and `p50Ms` (the verdicts pair rounds: bench/lib/verdict). */
const row = (id: string, rps: number, p50Ms: number, valid = true): RowOutcome =>
  ({ spec: { id, label: id, url: "", path: "/", expect: { nodes: [] }, connections: 32 }, rounds: Array.from({ length: 9 }, () => ({ rps, p50Ms, p99Ms: 0, requests: 1000, bytes: 0, errors: 0 })), before: [], after: [], errors: 0, requests: 0, valid, rps, p50Ms, p99Ms: 0, mibPerS: 0, ...(valid ? {} : { invalid: "probe failed" }) }) as RowOutcome;

describe("gate bench", () => {
  it("pairs CPU samples per round and takes the median µs per request", () => {
    const rounds = [{ requests: 1000 }, { requests: 2000 }, { requests: 1000 }] as RowOutcome["rounds"];
    // Rounds use 0.1 s, 0.1 s and 0.3 s of gate CPU: 100, 50 and 300 µs per request.
    expect(gateCpuPerRequest([1, 1.1, 2, 2.1, 3, 3.3], { rounds })).toBeCloseTo(100);
    expect(gateCpuPerRequest([], { rounds })).toBeUndefined();
  });

  it("meets the targets at ≥ 0.85× throughput (32 connections) and < 0.3 ms added p50 on the hop (1 connection), and says invalid when a row is", () => {
    // With the A/A control (eA, eA1: identical copies that agreed in every round), so the verdicts can be decided.
    const rows = (g: RowOutcome, g1: RowOutcome) => ({ e: row("e", 1000, 20), g, e1: row("e1", 500, 1.0), g1, eA: row("eA", 1000, 20), eA1: row("eA1", 500, 1.0) });
    // p50 at 32 connections is queueing: 5 ms more there, only 0.2 ms on the hop itself, meets the latency target.
    expect(gateTargets(rows(row("g", 900, 25), row("g1", 450, 1.2))).map((t) => t.verdict)).toEqual(["met", "met"]);
    expect(gateTargets(rows(row("g", 800, 21), row("g1", 400, 1.4))).map((t) => t.verdict)).toEqual(["missed", "missed"]);
    expect(gateTargets(rows(row("g", 900, 25, false), row("g1", 450, 1.2))).map((t) => t.verdict)).toEqual(["invalid", "met"]);
    expect(gateTargets(rows(row("g", 900, 25), row("g1", 450, 1.2, false))).map((t) => t.verdict)).toEqual(["met", "invalid"]);
  });

  it("what limits the hop is computed from the figures: the gate's CPU per request against the added p50", () => {
    const [, hop] = gateTargets({ e: row("e", 1000, 20), g: row("g", 900, 25), e1: row("e1", 500, 1.0), g1: row("g1", 400, 1.5) }, { g: 300, g1: 250 });
    expect(hop!.limit).toMatch(/the gate's own CPU is 0\.25 ms per request \(row g1\), 50% of the 0\.50 ms added/);
    // With the run's profile, the text cites it.
    const [tp, hp] = gateTargets({ e: row("e", 1000, 20), g: row("g", 800, 25), e1: row("e1", 500, 1.0), g1: row("g1", 400, 1.5) }, { g: 300, g1: 250 }, "31% socket writes (syscalls), 5% signature check");
    expect(hp!.limit).toContain("(row g1) (the gates' CPU profile of this run: 31% socket writes (syscalls), 5% signature check)");
    expect(tp!.limit).toContain("300 µs of gate CPU per request (row g) (the gates' CPU profile of this run: 31% socket writes");
  });

  it("what limits throughput splits the gated path's extra CPU per request between the gate and workerd, and workerd's between signing and the hop, from the figures", () => {
    const withCpu = (r: RowOutcome, us: number) => ({ ...r, cpuUsPerRequest: us }) as RowOutcome;
    const [tp] = gateTargets({ e: withCpu(row("e", 1000, 20), 700), g: withCpu(row("g", 700, 25), 850), e1: row("e1", 500, 1.0), g1: row("g1", 400, 1.5) }, { g: 150, g1: 250 });
    expect(tp!.limit).toContain("the gated path costs 300 µs more CPU per request than the direct one, 50% of it in the gate and 50% in workerd itself (signing and the hop's effect on workerd, not split: row (s) is missing or invalid)");
    // Row (s) signs as (g) does without the gate: workerd's extra splits into signing, (s) − (e), and the hop, (g) − (s).
    const [split] = gateTargets(
      { e: withCpu(row("e", 1000, 20), 700), s: withCpu(row("s", 990, 20), 720), g: withCpu(row("g", 700, 25), 850), e1: row("e1", 500, 1.0), g1: row("g1", 400, 1.5) },
      { g: 150, g1: 250 },
    );
    expect(split!.limit).toContain("50% in workerd itself (20 µs (s) − (e), signing plus whatever two workerd processes running the same code differ by");
    expect(split!.limit).toContain("and 130 µs the hop itself costs workerd, (g) − (s):");
    const [unsplit] = gateTargets(
      { e: withCpu(row("e", 1000, 20), 700), s: withCpu(row("s", 990, 20, false), 720), g: withCpu(row("g", 700, 25), 850), e1: row("e1", 500, 1.0), g1: row("g1", 400, 1.5) },
      { g: 150, g1: 250 },
    );
    expect(unsplit!.limit).toContain("not split: row (s) is missing or invalid");
  });

  it("what limits both targets cites the floor (a bare Node proxy on the same hop) and splits the gate's CPU into its own work and the floor's, from the figures", () => {
    const withCpu = (r: RowOutcome, us: number) => ({ ...r, cpuUsPerRequest: us }) as RowOutcome;
    const rows = { e: withCpu(row("e", 1000, 20), 700), g: withCpu(row("g", 800, 25), 850), f: row("n", 900, 22), e1: row("e1", 500, 1.0), g1: row("g1", 400, 1.5), f1: row("n1", 450, 1.2) };
    const [tp, hop] = gateTargets(rows, { g: 150, g1: 250, f: 100, f1: 180 });
    expect(tp!.limit).toContain("a bare Node proxy on the same hop (row n, no checks) reaches 0.90× of (e) (paired over the rounds both ran) at 100 µs of CPU per request: 50 µs (33%) of the gate's CPU is its own work");
    expect(hop!.limit).toContain("a bare Node proxy on the same hop (row n1, no checks) adds 0.20 ms (paired over the rounds both ran), 67% of the 0.3 ms budget before any check (the gate can get no lower by cutting its own work) at 0.18 ms of CPU per request; what that floor was made of, in instructions");
    // An invalid floor row, or one without CPU figures, is not cited.
    expect(floorSplit({ ...rows.f, valid: false } as RowOutcome, rows.e, 150, 100, "n")).toBe("");
    expect(floorSplit(rows.f, rows.e, 150, undefined, "n")).toBe("");
    expect(floorSplit(rows.f, rows.e, 90, 100, "n")).toContain("the gate costs no more than the floor (noise)");
  });

  it("what limits (g1) cites the hop's traced anatomy (one session's trace, on one core, named by its code): the gate's runs per request, its own time, workerd's extra instructions", () => {
    const [, hop] = gateTargets({ e: row("e", 1000, 20), g: row("g", 800, 25), e1: row("e1", 500, 1.0), g1: row("g1", 400, 1.5) }, { g: 150, g1: 250 });
    expect(hop!.limit).toContain(`traced at 1 connection on one core (perf's scheduler and syscall tracepoints, code ${HOP_TIMELINE.code}; wall time between syscalls): the gate runs 1.66 times per request`);
    expect(hop!.limit).toContain("takes 90 µs from reading a request to forwarding it (p10 59, p90 148");
    expect(hop!.limit).toContain("gate mode adds 26.1 k instructions per request to workerd");
  });

  it("what limits (g1) puts workerd's own CPU, (g1) − (e1) paired per round, beside the gate's, with its A/A (rv12b 5)", () => {
    // 1,000 requests a round: cpuS 0.7 s is 700 µs per request.
    const withRoundCpu = (r: RowOutcome, cpuS: number) => ({ ...r, rounds: r.rounds.map((x) => ({ ...x, cpuS })) }) as RowOutcome;
    const rows = { e: row("e", 1000, 20), g: row("g", 800, 25), e1: withRoundCpu(row("e1", 500, 1.0), 0.7), g1: withRoundCpu(row("g1", 400, 1.5), 0.76), eA1: withRoundCpu(row("eA1", 500, 1.0), 0.71) };
    const [, hop] = gateTargets(rows, { g: 150, g1: 250 });
    expect(hop!.limit).toContain("workerd's own CPU per request, (g1) − (e1) paired: 60 µs (its A/A, (e1) − (eA1): -10 µs), on the same path");
    // Without CPU per round, nothing is claimed.
    const [, none] = gateTargets({ e: row("e", 1000, 20), g: row("g", 800, 25), e1: row("e1", 500, 1.0), g1: row("g1", 400, 1.5) }, { g: 150, g1: 250 });
    expect(none!.limit).not.toContain("workerd's own CPU per request");
  });

  it("with the gate's edge connections off net.Socket (--edge wrap), the texts say the floor is a net.Socket proxy the gate can go below, and by how much, from the figures", () => {
    const withCpu = (r: RowOutcome, us: number) => ({ ...r, cpuUsPerRequest: us }) as RowOutcome;
    const rows = { e: withCpu(row("e", 1000, 20), 700), g: withCpu(row("g", 880, 25), 850), f: row("n", 900, 22), e1: row("e1", 500, 1.0), g1: row("g1", 400, 1.15), f1: row("n1", 450, 1.2) };
    const [tp, hop] = gateTargets(rows, { g: 90, g1: 150, f: 100, f1: 180 }, undefined, "wrap");
    expect(tp!.limit).toContain("the gate reads and writes its edge connections on Node's TCP handle (--edge wrap) and builds no net.Socket per connection as the floor does, so the difference is its own work (strict parse, signature check, replay cache, head rewrites, metrics) less that saving: 10 µs less than the floor: what it saves on accepting is more than its checks cost");
    expect(tp!.limit).not.toContain("the gate costs no more than the floor (noise)");
    expect(hop!.limit).toContain("67% of the 0.3 ms budget before any check (a proxy on node:net's documented sockets; the gate's edge connections skip them (--edge wrap), so it can go below this floor)");
    expect(hop!.limit).not.toContain("the gate can get no lower");
    expect(floorSplit(rows.f, rows.e, 150, 100, "n", undefined, "wrap")).toContain("less that saving: 50 µs (33%) more than the floor");
    // The instruction counts behind it, with the code they were counted on.
    expect(floorAnatomy(FLOOR_ANATOMY.node, FLOOR_ANATOMY.floorBlob)).toContain(
      `The gate avoids it through Node's internal bindings instead (--edge wrap, docs/gate.md#costs-and-limits): counted the same way (code ${FLOOR_ANATOMY.wrap.code}, thousands of instructions per request at 1 and 32 connections, JIT compilation and GC apart), the floor's work done on the accepted TCP handle takes 64 and 53 against bench/gate-floor.ts's 151 and 135, and the gate 168 and 165 against 269 and 263 on net.Socket (code ${FLOOR_ANATOMY.wrap.netCode}).`,
    );
  });

  it("a gate row whose requests did not all go through the gates is invalid (the node answers the same either way)", () => {
    const g = { ...row("g", 900, 25), rounds: [{ requests: 3000 }, { requests: 3000 }] } as RowOutcome;
    const g1 = { ...row("g1", 400, 1.2), rounds: [{ requests: 1000 }] } as RowOutcome;
    throughTheGates(7500, [g, g1]);
    expect([g.valid, g1.valid]).toEqual([true, true]);
    throughTheGates(0, [g, g1]);
    expect([g.valid, g1.valid]).toEqual([false, false]);
    expect(g.invalid).toMatch(/the gates forwarded 0 requests, fewer than the 7000/);
    const f = { ...row("f", 900, 25), rounds: [{ requests: 10 }] } as RowOutcome;
    throughTheGates(3, [f], "the floor proxy");
    expect(f.invalid).toMatch(/^the floor proxy forwarded 3 requests, fewer than the 10 the rows' rounds counted/);
  });

  it("says the machine's load during the rounds, and that a loaded run is no evidence", () => {
    const rounds = (loads: number[]) => ({ rounds: loads.map((loadAvg) => ({ loadAvg })) }) as never;
    expect(loadNote([rounds([1.2, 1.5]), rounds([1.4])], 2)).toBe("machine load (1-minute load average on 2 cores) during the rounds: 1.2–1.5");
    expect(loadNote([rounds([14.8, 15.3])], 2)).toMatch(/14\.8–15\.3; above 2 more was runnable than the cores.*the paired verdicts and their A\/A widening are what to read/);
    expect(loadNote([rounds([])], 2)).toBe("machine load during the rounds: not recorded");
  });
});

describe("gate bench verdicts (bench/lib/verdict)", () => {
  const rounds = (rps: number[], p50Ms: number[]) => rps.map((r, i) => ({ rps: r, p50Ms: p50Ms[i]!, p99Ms: 0, requests: 1000, bytes: 0, errors: 0 }));
  const measured = (id: string, rps: number[], p50Ms: number[]) => ({ ...row(id, [...rps].sort((a, b) => a - b)[4]!, [...p50Ms].sort((a, b) => a - b)[4]!), rounds: rounds(rps, p50Ms) }) as RowOutcome;
  it("decides (g) and (g1) on paired rounds against the A/A control, and says 'within noise' when the control's spread reaches the threshold", () => {
    const e = measured("e", [2000, 2400, 1600, 2200, 1800, 2000, 2300, 1700, 2100], Array(9).fill(12));
    const g = measured("g", [1900, 2280, 1520, 2090, 1710, 1900, 2185, 1615, 1995], Array(9).fill(13)); // 0.95× every round
    const e1 = measured("e1", Array(9).fill(1000), [0.7, 0.8, 0.6, 0.7, 0.75, 0.65, 0.7, 0.8, 0.6]);
    const g1 = measured("g1", Array(9).fill(800), [0.9, 1.0, 0.8, 0.9, 0.95, 0.85, 0.9, 1.0, 0.8]); // +0.2 ms every round
    const quiet = { eA: measured("eA", e.rounds.map((x) => x.rps), Array(9).fill(12)), eA1: measured("eA1", Array(9).fill(1000), e1.rounds.map((x) => x.p50Ms)) };
    expect(gateTargets({ e, g, e1, g1, ...quiet }).map((t) => t.verdict)).toEqual(["met", "met"]);
    // The copies of (e) 15% and 0.15 ms apart in some rounds: the same (g) and (g1) are within noise.
    const noisy = {
      eA: measured("eA", e.rounds.map((x, i) => (i % 3 ? x.rps : x.rps * 1.15)), Array(9).fill(12)),
      eA1: measured("eA1", Array(9).fill(1000), e1.rounds.map((x, i) => (i % 3 ? x.p50Ms : x.p50Ms + 0.15))),
    };
    const [tp, hop] = gateTargets({ e, g, e1, g1, ...noisy });
    expect([tp!.verdict, hop!.verdict]).toEqual(["within noise", "within noise"]);
    expect(hop!.result).toMatch(/^0\.20 ms \(paired median of 9 rounds; 96\.1% interval 0\.20 ms–0\.20 ms, .*A\/A noise ±0\.15 ms → 0\.05 ms–0\.35 ms\)/);
    expect(tp!.limit).toMatch(/^within noise: the threshold lies inside the interval widened by the A\/A noise; if this run.s medians held, about \d+ paired rounds would decide it \(this run: 9;[^)]*\)\. the gate is a second HTTP hop/);
  });

  it("what limits the hop says what the floor was made of (Node's per-connection calls, counted in instructions) and on which code, and flags a run on another Node version or floor proxy", () => {
    const text = floorAnatomy(FLOOR_ANATOMY.node, FLOOR_ANATOMY.floorBlob);
    expect(text).toContain(`counted on Node ${FLOOR_ANATOMY.node}, code ${FLOOR_ANATOMY.code}: 134k and 143k per request`);
    expect(text).toContain("accepting the connection 58%");
    expect(text).toContain("V8's runtime inline-cache miss handlers 45% of all the floor's instructions, and node --log-ic shows 28 of the ~30 misses per connection on one object");
    expect(text).toContain("the two reads and their callbacks 27%; closing the connection 5% and garbage collection 6%");
    expect(text).toContain("31% of the gate's CPU samples in a perf profile at 1 connection, code 8c134ba, load ~10");
    expect(text).not.toContain("may not hold");
    expect(floorAnatomy("v22.0.0", FLOOR_ANATOMY.floorBlob)).toContain("; this run used Node v22.0.0, so the shares may not hold");
    expect(floorAnatomy(FLOOR_ANATOMY.node, "0".repeat(40))).toContain("; bench/gate-floor.ts has changed since, so the shares may not hold");
    expect(floorAnatomy(FLOOR_ANATOMY.node, undefined)).not.toContain("may not hold");
    // Shares of one whole: accepting, reading, closing and GC cover the floor's instructions but for a few %.
    const { accept, reads, close, gc } = FLOOR_ANATOMY;
    expect(accept + reads + close + gc).toBeGreaterThan(0.9);
    expect(accept + reads + close + gc).toBeLessThanOrEqual(1);
  });

  it("knows this checkout's floor proxy by its git blob hash, as git does", () => {
    const file = readFileSync(new URL("../../bench/gate-floor.ts", import.meta.url));
    expect(gitBlobHash(file)).toBe(execFileSync("git", ["hash-object", "bench/gate-floor.ts"], { encoding: "utf8" }).trim());
    expect(gitBlobHash(Buffer.from(""))).toBe("e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
  });

  it("compares the gate with the floor over the rounds both ran, when the floor's rows ran fewer rounds (rv-bench 3)", () => {
    // (g1)/(e1) 16 rounds whose last 8 differ from the first 8; (n1) 8 rounds. Per round: e1 1.0 ms, n1 1.2 ms
    // (adds 0.2); e1 is 0.5 ms in rounds 9-16, which a median over all 16 rounds would mix in.
    const rounds = (n: number, at: (i: number) => { p50Ms: number; rps: number }) =>
      Array.from({ length: n }, (_, i) => ({ ...at(i), p99Ms: 0, requests: 1000, bytes: 0, errors: 0 }));
    const mk = (id: string, n: number, at: (i: number) => { p50Ms: number; rps: number }) =>
      ({ ...row(id, 0, 0), rounds: rounds(n, at), rps: 0, p50Ms: 0 }) as RowOutcome;
    const e1 = { ...mk("e1", 16, (i) => ({ p50Ms: i < 8 ? 1.0 : 0.5, rps: 500 })), p50Ms: 0.5 } as RowOutcome;
    const f1 = { ...mk("n1", 8, () => ({ p50Ms: 1.2, rps: 450 })), p50Ms: 1.2 } as RowOutcome;
    const g1 = { ...mk("g1", 16, () => ({ p50Ms: 1.5, rps: 400 })), p50Ms: 1.5 } as RowOutcome;
    const [, hop] = gateTargets({ e: row("e", 1000, 20), g: row("g", 900, 25), e1, g1, f1 }, { g1: 250, f1: 180 });
    expect(hop!.limit).toContain("a bare Node proxy on the same hop (row n1, no checks) adds 0.20 ms (paired over the rounds both ran), 67% of the 0.3 ms budget");
    // The gate's own CPU: per-round differences over the floor's 8 rounds, not the gate's 16-round median minus the floor's.
    const e = row("e", 1000, 20);
    const f = { ...row("n", 900, 22), rounds: row("n", 900, 22).rounds.slice(0, 8) } as RowOutcome;
    const gate = [...Array(8).fill(150), ...Array(8).fill(400)];
    const floor = Array(8).fill(100);
    expect(floorSplit(f, e, 400, 100, "n", { gate, floor })).toContain("50 µs (13%) (median of the per-round differences over the rounds both ran) of the gate's CPU is its own work");
  });

  it("gives the gates' CPU per round in round order, the warm-up's sample pair left out", () => {
    const rounds = [{ requests: 1000 }, { requests: 0 }, { requests: 1000 }] as RowOutcome["rounds"];
    // Warm-up pair (0, 5), then rounds: 0.1 s, none, 0.3 s.
    expect(gateCpuPerRound([0, 5, 5, 5.1, 6, 6, 7, 7.3], { rounds }).map((x) => (Number.isNaN(x) ? "NaN" : Math.round(x)))).toEqual([100, "NaN", 300]);
  });
});

