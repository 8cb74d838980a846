// The spread-aware verdict rule (bench/lib/verdict) and the round order that
// pairs a target's rows (bench/lib/rows.ts roundOrder): pure, so tested on
// their own, with last session's real per-round figures as examples.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { controlNoise, intervalRanks, judge, medianInterval, pairedDifferences, pairedRatios, roundsToDecide, verdictRule, type Direction, type TargetRule } from "../../bench/lib/verdict/index.ts";
import { liveIn, roundOrder } from "../../bench/lib/rows.ts";

const atLeast = (threshold: number): TargetRule => ({ threshold, direction: "at least", scale: "ratio" });
/** An A/A control whose identical copies agreed to within a factor `f` in every round. */
const quietControl = (n: number, f = 1.01) => Array.from({ length: n }, (_, i) => (i % 2 ? f : 1 / f));

describe("medianInterval", () => {
  it("takes the narrowest order-statistic interval with ≥ 90% binomial coverage, and none below 5 values", () => {
    const xs = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
    expect(medianInterval(xs(9))).toMatchObject({ median: 5, lo: 2, hi: 8, n: 9 });
    expect(medianInterval(xs(9))!.coverage).toBeCloseTo(1 - 20 / 512, 10); // 1 − 2·P(Bin(9,½) ≤ 1)
    expect(medianInterval(xs(10))).toMatchObject({ lo: 2, hi: 9 });
    expect(medianInterval(xs(11))).toMatchObject({ lo: 3, hi: 9 }); // 93.5%
    expect(medianInterval(xs(5))).toMatchObject({ lo: 1, hi: 5 }); // 93.75%
    expect(medianInterval(xs(4))).toBeUndefined(); // [min, max] covers 87.5% only
    expect(medianInterval([3, NaN, 1, 2, 5, 4])).toMatchObject({ n: 5, lo: 1, hi: 5, median: 3 });
  });

  it("contains the sample median and holds its coverage on skewed and bimodal noise (simulated rounds)", () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0.1, max: 10, noNaN: true }), { minLength: 5, maxLength: 30 }), (xs) => {
        const i = medianInterval(xs)!;
        expect(i.lo).toBeLessThanOrEqual(i.median);
        expect(i.hi).toBeGreaterThanOrEqual(i.median);
        expect(xs).toContain(i.lo);
        expect(xs).toContain(i.hi);
        expect(i.coverage).toBeGreaterThanOrEqual(0.9);
      }),
    );
    // 2,000 runs of 9 rounds from a bimodal distribution (fast and slow rounds, as this machine shows), true median 1.
    let seed = 42;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    let covered = 0;
    const runs = 2000;
    for (let r = 0; r < runs; r++) {
      const rounds = Array.from({ length: 9 }, () => (rand() < 0.5 ? 0.8 + rand() * 0.2 : 1 + rand() * 0.5));
      const i = medianInterval(rounds)!;
      if (i.lo <= 1 && 1 <= i.hi) covered++;
    }
    expect(covered / runs).toBeGreaterThan(0.93); // 96% expected
  });
});

describe("paired per-round values", () => {
  it("pairs rounds by index and leaves out rounds one row did not measure", () => {
    expect(pairedRatios([10, 20, 30], [5, 0, 10])).toEqual([2, 3]);
    expect(pairedRatios([10, NaN, 30], [5, 10, 10, 99])).toEqual([2, 3]);
    expect(pairedDifferences([1.1, 1.3], [0.7, NaN])).toEqual([expect.closeTo(0.4, 10)]);
  });
});

describe("judge", () => {
  it("calls a target met only with the whole interval, widened by the A/A noise, past the threshold", () => {
    const rounds = [0.95, 0.97, 0.96, 0.98, 0.94, 0.96, 0.97, 0.95, 0.96];
    const j = judge(atLeast(0.85), rounds, quietControl(9), 0.96);
    expect(j.verdict).toBe("met");
    expect(j.lo).toBeCloseTo(0.95 / 1.01, 6);
    // The same rounds with identical copies 12% apart: 0.95 / 1.12 < 0.85, the run cannot tell.
    expect(judge(atLeast(0.85), rounds, quietControl(9, 1.12), 0.96).verdict).toBe("within noise");
  });

  it("last session's (g) ÷ (e), 0.79× of the medians, is within noise, not missed: its rounds ran from 0.71× to 1.11×", () => {
    // The quiet run of 09:15, round by round (bench-final.log): (e) and (g) req/s.
    const e = [1623, 2383, 2380, 2145, 2294];
    const g = [1809, 2262, 2292, 1522, 1673];
    const j = judge(atLeast(0.85), pairedRatios(g, e), quietControl(5), 1809 / 2294);
    expect(j.verdict).toBe("within noise");
    expect(j.why).toMatch(/threshold lies inside/);
  });

  it("calls a target missed when the whole widened interval fails, and says why it is not decided otherwise", () => {
    const rounds = [0.7, 0.72, 0.69, 0.71, 0.73, 0.7, 0.68, 0.72, 0.71];
    expect(judge(atLeast(0.85), rounds, quietControl(9), 0.71).verdict).toBe("missed");
    // The old figure (ratio of medians) disagrees with the interval: no verdict either way.
    expect(judge(atLeast(0.85), rounds, quietControl(9), 0.9)).toMatchObject({ verdict: "within noise", why: expect.stringMatching(/medians passes/) });
    expect(judge(atLeast(0.85), rounds.map((x) => x + 0.3), quietControl(9), 0.8)).toMatchObject({ verdict: "within noise", why: expect.stringMatching(/medians does not/) });
    // No A/A control, or too few rounds: the run's noise is unknown, nothing is decided.
    expect(judge(atLeast(0.85), rounds, undefined, 0.71)).toMatchObject({ verdict: "within noise", why: expect.stringMatching(/A\/A control was not measured/) });
    expect(judge(atLeast(0.85), rounds.slice(0, 4), quietControl(9), 0.71)).toMatchObject({ verdict: "within noise", why: expect.stringMatching(/4 paired rounds: too few/) });
  });

  it("judges differences (the hop's added p50) with the A/A noise as an amount", () => {
    const below = (threshold: number): TargetRule => ({ threshold, direction: "below", scale: "difference" });
    const added = [0.2, 0.21, 0.19, 0.22, 0.2, 0.18, 0.2, 0.21, 0.2];
    const control = [0.01, -0.02, 0.0, 0.02, -0.01, 0.01, 0.0, -0.01, 0.01];
    expect(judge(below(0.3), added, control, 0.2)).toMatchObject({ verdict: "met", noise: 0.01 });
    expect(judge(below(0.3), added, control.map((x) => x * 10), 0.2).verdict).toBe("within noise");
    expect(judge(below(0.3), added.map((x) => x + 0.2), control, 0.4).verdict).toBe("missed");
    // "below" is strict: exactly at the threshold is not met.
    expect(judge(below(0.3), added.map(() => 0.3), control.map(() => 0), 0.3).verdict).toBe("missed");
  });

  it("is symmetric: mirroring the values, the threshold and the direction mirrors the verdict; and never meets what the old figure misses", () => {
    const flip: Record<Direction, Direction> = { "at least": "at most", "at most": "at least", below: "at least" };
    const values = fc.array(fc.double({ min: 0.5, max: 2, noNaN: true }), { minLength: 5, maxLength: 12 });
    fc.assert(
      fc.property(values, values, fc.double({ min: 0.5, max: 2, noNaN: true }), fc.double({ min: 0.6, max: 1.6, noNaN: true }), fc.constantFrom<Direction>("at least", "at most"), (xs, control, headline, threshold, direction) => {
        const j = judge({ threshold, direction, scale: "ratio" }, xs, control, headline);
        const m = judge({ threshold: 1 / threshold, direction: flip[direction], scale: "ratio" }, xs.map((x) => 1 / x), control.map((x) => 1 / x), 1 / headline);
        expect(m.verdict).toBe(j.verdict);
        const oldPasses = direction === "at least" ? headline >= threshold : headline <= threshold;
        if (!oldPasses) expect(j.verdict).not.toBe("met");
        if (oldPasses) expect(j.verdict).not.toBe("missed");
        // Stricter than the interval alone: met implies the un-widened interval passes too.
        if (j.verdict === "met") expect(direction === "at least" ? j.interval!.lo >= threshold : j.interval!.hi <= threshold).toBe(true);
      }),
    );
  });

  it("measures the A/A noise as the farthest its interval lies from no difference, in either direction", () => {
    expect(controlNoise("ratio", { median: 1, lo: 0.9, hi: 1.02, coverage: 0.96, min: 0.8, max: 1.1, n: 9 })).toBeCloseTo(1 / 0.9, 10);
    expect(controlNoise("ratio", { median: 1.1, lo: 1.05, hi: 1.2, coverage: 0.96, min: 1, max: 1.3, n: 9 })).toBeCloseTo(1.2, 10);
    expect(controlNoise("difference", { median: 0, lo: -0.05, hi: 0.02, coverage: 0.96, min: -0.1, max: 0.1, n: 9 })).toBeCloseTo(0.05, 10);
  });
});

describe("roundsToDecide: how many rounds a target within noise would need", () => {
  // Normal noise (Box–Muller) from a 32-bit generator (mulberry32: integer arithmetic, no precision loss).
  const normals = (seed: number) => {
    let a = seed >>> 0;
    const u = () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
    };
    return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  };
  const rounds = (next: () => number, n: number, m: number, sd: number) => Array.from({ length: n }, () => m * Math.exp(sd * next()));

  it("estimates the rounds after which the widened interval clears the threshold, and runs of that size decide as estimated", () => {
    const next = normals(7);
    const [m, sd, aaSd] = [0.9, 0.06, 0.05];
    // A typical 16-round run (its rounds at the 16 evenly spaced quantiles of the noise, so its medians are the
    // true ones): one random run's medians can sit far off and move the estimate several-fold.
    const typical = (n: number, mm: number, ss: number) => {
      const big = rounds(next, 16_000, mm, ss).sort((a, b) => a - b);
      return Array.from({ length: n }, (_, i) => big[Math.floor(((i + 0.5) / n) * big.length)]!);
    };
    const first = judge(atLeast(0.85), typical(16, m, sd), typical(16, 1, aaSd), m);
    expect(first.verdict).toBe("within noise");
    expect(first.interval!.lo).toBeGreaterThan(0.85); // only the A/A widening keeps it open
    const n = first.roundsToDecide;
    expect(typeof n).toBe("number");
    expect(first.why).toContain(`about ${(n as number).toLocaleString("en-US")} paired rounds would decide it (this run: 16;`);
    // At the estimate a run is met a fair share of the time (its expected lower bound sits on the threshold;
    // about a third here), at three times it nearly always, at a quarter of it hardly ever: 400 runs each.
    const share = (size: number) => {
      let met = 0;
      for (let i = 0; i < 400; i++) if (judge(atLeast(0.85), rounds(next, size, m, sd), rounds(next, size, 1, aaSd), m).verdict === "met") met++;
      return met / 400;
    };
    const size = n as number;
    expect(share(size)).toBeGreaterThan(0.15);
    expect(share(size)).toBeLessThan(0.75);
    expect(share(3 * size)).toBeGreaterThan(0.85);
    expect(share(Math.max(5, Math.floor(size / 4)))).toBeLessThan(0.1);
  });

  it("gives no estimate when the threshold lies inside the median's own interval: the run cannot tell which side it is on", () => {
    // The run of 2026-12-04 03:47: (d) 0.84× of (c), interval 0.83–0.86.
    const j = judge(atLeast(0.85), [0.78, 0.8, 0.82, 0.83, 0.83, 0.84, 0.84, 0.84, 0.85, 0.85, 0.86, 0.86, 0.87, 0.87, 0.88, 0.88], quietControl(16), 0.85);
    expect(j.verdict).toBe("within noise");
    expect(j.roundsToDecide).toBeUndefined();
    expect(j.why).toMatch(/inside the median's own interval, before any widening/);
  });

  it("counts the A/A control's offset and its own rounds, by hand", () => {
    const target = { median: 0.9, lo: 0.88, hi: 0.93, coverage: 0.92, min: 0.8, max: 1, n: 16 };
    const control = { median: 1.01, lo: 0.99, hi: 1.04, coverage: 0.91, min: 0.9, max: 1.1, n: 28 };
    // margin ln(0.9/0.85), offset ln 1.01, w ln(0.9/0.88), s ln 1.04 − ln 1.01:
    // N = ((w·√16 + s·√28) / (margin − offset))²
    const [margin, offset, w, s] = [Math.log(0.9 / 0.85), Math.log(1.01), Math.log(0.9 / 0.88), Math.log(1.04) - Math.log(1.01)];
    const expected = Math.ceil(((w * 4 + s * Math.sqrt(28)) / (margin - offset)) ** 2);
    expect(roundsToDecide(atLeast(0.85), target, control)).toBe(expected);
    // The same control shifted to no offset (median 1, the same spread around it) needs fewer rounds: the
    // offset does not shrink with rounds and is counted against the margin.
    const centred = { ...control, median: 1, lo: 0.98, hi: 1.03 };
    expect(roundsToDecide(atLeast(0.85), target, centred)).toBe(Math.ceil(((w * 4 + Math.log(1.03) * Math.sqrt(28)) / margin) ** 2));
    expect(roundsToDecide(atLeast(0.85), target, centred)).toBeLessThan(expected);
  });

  it("says when no number of rounds would, if the copies' offset is a real bias", () => {
    const target = medianInterval([0.86, 0.87, 0.87, 0.88, 0.89, 0.9, 0.91])!; // median 0.88, 3.5% above 0.85
    const biased = medianInterval([1.03, 1.04, 1.05, 1.05, 1.06, 1.07, 1.08])!; // identical rows 5% apart
    expect(roundsToDecide(atLeast(0.85), target, biased)).toBe("never");
    const j = judge(atLeast(0.85), [0.86, 0.87, 0.87, 0.88, 0.89, 0.9, 0.91], [1.03, 1.04, 1.05, 1.05, 1.06, 1.07, 1.08], 0.88);
    expect(j).toMatchObject({ verdict: "within noise", roundsToDecide: "never" });
    expect(j.why).toMatch(/if the A\/A control's own offset \(its median 5\.0% from identical\) is a real bias between the copies and not this run's chance, no number of rounds would decide it/);
  });

  it("works on differences (the hop's added p50) and gives nothing where no estimate makes sense", () => {
    const below = (threshold: number): TargetRule => ({ threshold, direction: "below", scale: "difference" });
    const added = medianInterval([0.2, 0.22, 0.24, 0.25, 0.26, 0.28, 0.29])!; // median 0.25, interval 0.2–0.29
    const control = medianInterval([-0.02, -0.01, 0, 0, 0, 0.01, 0.02])!; // no offset, reach 0.02
    // ((0.04·√7 + 0.02·√7) / 0.05)² = 7 × 1.44 = 10.08 → 11 rounds
    expect(roundsToDecide(below(0.3), added, control)).toBe(11);
    // The median on the threshold: nothing to estimate.
    expect(roundsToDecide(below(0.25), added, control)).toBeUndefined();
    // Ratios that are not positive cannot be taken in logarithms.
    expect(roundsToDecide(atLeast(0.85), { ...added, lo: -1 }, control)).toBeUndefined();
  });
});

describe("roundOrder", () => {
  const ids = ["a", "cA", "c", "d", "e", "c2", "f", "x"];
  const blocks = [["cA", "c", "d"], ["e", "c2", "f"]];
  it("runs every row once a round, a block's rows next to each other, in reverse order every other round", () => {
    for (let round = 1; round <= 9; round++) {
      const order = roundOrder(ids, blocks, round);
      expect([...order].sort()).toEqual([...ids].sort());
      for (const b of blocks) {
        const at = b.map((id) => order.indexOf(id));
        const first = Math.min(...at);
        expect(at.map((i) => i - first).sort()).toEqual([0, 1, 2]); // adjacent
        expect(order.slice(first, first + 3)).toEqual(round % 2 ? b : [...b].reverse());
      }
    }
  });
  it("rotates the units from round to round so that no unit always runs first", () => {
    const firsts = new Set([1, 2, 3, 4].map((r) => roundOrder(ids, blocks, r)[0]));
    expect(firsts.size).toBeGreaterThanOrEqual(3);
    expect(roundOrder(ids, blocks, 2)[0]).toBe("d"); // round 2: the (cA c d) block first, reversed
  });
  it("leaves out rows that are not running (invalid before the load) and keeps the rest of their block together", () => {
    expect(roundOrder(["c", "d", "e"], blocks, 1)).toEqual(["c", "d", "e"]);
    expect(roundOrder(["c", "d", "e"], blocks, 2)).toEqual(["e", "d", "c"]);
  });
  it("runs a row with fewer rounds only in the first ones; the target rows' blocks stay together and alternate after it stops", () => {
    const rows = ids.map((id) => ({ id, ...(["a", "x"].includes(id) ? { rounds: 8 } : {}) }));
    const counts = new Map<string, number>();
    for (let round = 1; round <= 16; round++) {
      const live = liveIn(rows, round, 16).map((r) => r.id);
      for (const id of live) counts.set(id, (counts.get(id) ?? 0) + 1);
      const order = roundOrder(live, blocks, round);
      for (const b of blocks) expect(order.slice(order.indexOf(b[0]!) - (round % 2 ? 0 : 2), order.indexOf(b[0]!) + (round % 2 ? 3 : 1))).toEqual(round % 2 ? b : [...b].reverse());
    }
    expect(Object.fromEntries(counts)).toEqual({ a: 8, x: 8, cA: 16, c: 16, d: 16, e: 16, c2: 16, f: 16 });
    expect(liveIn(rows, 3, 2)).toEqual([]); // never beyond the run's rounds
  });
});

describe("the verdict rule's text for the rounds run", () => {
  it("names the ranks and coverage medianInterval uses for 8, 12 and 16 rounds", () => {
    expect(intervalRanks(8)).toBe("2nd to 2nd-largest of 8 rounds, 93.0%");
    expect(intervalRanks(12)).toBe("3rd to 3rd-largest of 12 rounds, 96.1%");
    expect(intervalRanks(16)).toBe("5th to 5th-largest of 16 rounds, 92.3%");
    expect(intervalRanks(3)).toMatch(/none for 3 rounds/);
    expect(verdictRule([16])).toContain("5th to 5th-largest of 16 rounds, 92.3%");
    expect(verdictRule([16])).not.toContain("of 8 ");
  });
});
