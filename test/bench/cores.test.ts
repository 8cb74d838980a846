// Which CPU limits a section-1 row: the /proc/stat parser, the busy share of a
// group of CPUs, and the reading a target's text draws from them.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { busyShare, parseProcStat } from "../../bench/lib/cores/index.ts";
import { limitingCore, throughputReading } from "../../bench/dataplane.ts";
import { perRound, type RoundResult } from "../../bench/lib/rows.ts";

const STAT = [
  "cpu  300 0 100 900 20 0 5 0 0 0",
  "cpu0 100 0 50 600 10 0 2 0 0 0",
  "cpu1 200 0 50 300 10 0 3 0 0 0",
  "intr 12345 0 0",
  "ctxt 999",
].join("\n");

describe("parseProcStat (per-CPU lines of /proc/stat)", () => {
  it("reads busy (user+nice+system+irq+softirq+steal) and total jiffies per numbered CPU, ignoring the aggregate and other lines", () => {
    const m = parseProcStat(STAT);
    expect([...m.keys()]).toEqual([0, 1]);
    expect(m.get(0)).toEqual({ busy: 152, total: 762 });
    expect(m.get(1)).toEqual({ busy: 253, total: 563 });
  });

  it("counts steal as busy and leaves guest out (already in user)", () => {
    expect(parseProcStat("cpu0 10 0 0 50 0 0 0 7 4 0").get(0)).toEqual({ busy: 17, total: 67 });
  });

  it("never throws and never yields a negative or non-finite figure, whatever the text", () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        for (const t of parseProcStat(text).values()) {
          expect(Number.isFinite(t.busy) && Number.isFinite(t.total)).toBe(true);
          expect(t.busy).toBeGreaterThanOrEqual(0);
          expect(t.total).toBeGreaterThanOrEqual(t.busy);
        }
      }),
    );
  });

  it("reads back any well-formed line it is given", () => {
    const fields = fc.array(fc.nat({ max: 1e9 }), { minLength: 8, maxLength: 10 });
    fc.assert(
      fc.property(fc.nat({ max: 255 }), fields, (cpu, f) => {
        const [u, n, s, idle, io, irq, soft, steal] = f as [number, number, number, number, number, number, number, number];
        const busy = u + n + s + irq + soft + steal;
        expect(parseProcStat(`cpu ${f.join(" ")}\ncpu${cpu} ${f.join(" ")}\n`).get(cpu)).toEqual({ busy, total: busy + idle + io });
      }),
    );
  });
});

describe("busyShare", () => {
  it("is the busy jiffies over all jiffies of the group between two readings", () => {
    const before = parseProcStat("cpu0 100 0 0 100 0 0 0 0\ncpu1 0 0 0 0 0 0 0 0");
    const after = parseProcStat("cpu0 190 0 0 110 0 0 0 0\ncpu1 50 0 0 50 0 0 0 0");
    expect(busyShare(before, after, [0])).toBeCloseTo(0.9, 10);
    expect(busyShare(before, after, [1])).toBeCloseTo(0.5, 10);
    expect(busyShare(before, after, [0, 1])).toBeCloseTo(140 / 200, 10);
    expect(busyShare(before, after, [7])).toBeUndefined(); // not on this machine
    expect(busyShare(before, before, [0])).toBeUndefined(); // no time passed
  });

  it("stays within 0–1 for any two readings", () => {
    const ticks = fc.record({ busy: fc.nat({ max: 1e6 }), idle: fc.nat({ max: 1e6 }) }).map((t) => ({ busy: t.busy, total: t.busy + t.idle }));
    fc.assert(
      fc.property(ticks, ticks, (a, b) => {
        const share = busyShare(new Map([[0, a]]), new Map([[0, b]]), [0]);
        if (share !== undefined) expect(share >= 0 && share <= 1).toBe(true);
      }),
    );
  });
});

const rounds = (worker: number[], rest: number[]) => ({ rounds: worker.map((w, i) => ({ rps: 1, p50Ms: 1, p99Ms: 1, requests: 1, bytes: 1, errors: 0, busy: { worker: w, rest: rest[i]! } }) as RoundResult) });

describe("which CPU limits a row", () => {
  it("names the side whose median busy share reaches 90%", () => {
    expect(limitingCore(rounds([0.99, 0.97, 0.5], [0.6, 0.7, 0.65]))?.bound).toBe("workerd's CPU");
    expect(limitingCore(rounds([0.7, 0.75, 0.8], [0.95, 0.99, 0.97]))?.bound).toBe("the load generator's CPU");
    expect(limitingCore(rounds([0.95, 0.99], [0.95, 0.99]))?.bound).toBe("both CPUs");
    expect(limitingCore(rounds([0.5], [0.5]))?.bound).toBe("neither CPU");
    expect(limitingCore({ rounds: [{ rps: 1, p50Ms: 1, p99Ms: 1, requests: 1, bytes: 1, errors: 0 }] })).toBeUndefined(); // unpinned: not measured
  });

  it("reads a throughput ratio as 1 ÷ the CPU ratio only when workerd's CPU limited both rows", () => {
    const bound = limitingCore(rounds([0.98, 0.99, 0.97], [0.6, 0.6, 0.6]));
    const genBound = limitingCore(rounds([0.7, 0.7, 0.7], [0.99, 0.98, 0.99]));
    expect(throughputReading(0.8, 1.25, bound, bound)).toMatch(/workerd's CPU limited both rows, so throughput follows CPU per request: 1 ÷ 1\.25 = 0\.80×/);
    const mixed = throughputReading(0.9, 1.25, bound, genBound);
    expect(mixed).toMatch(/\(c\): workerd's CPU 70% busy, the other 99%: the load generator's CPU/);
    expect(mixed).toMatch(/not 1 ÷ the CPU ratio/);
    expect(mixed).not.toMatch(/limited both rows/);
    expect(throughputReading(0.9, 1.25, undefined, bound)).toMatch(/not measured/);
  });
});

describe("the row's own workerd share of its CPU", () => {
  it("is its CPU seconds over the round's wall time, NaN where either is missing", () => {
    const base = { rps: 1, p50Ms: 1, p99Ms: 1, requests: 1, bytes: 1, errors: 0 };
    expect(perRound.workerdShare({ rounds: [{ ...base, cpuS: 1.5, wallS: 2 }, { ...base, wallS: 2 }, { ...base, cpuS: 1 }] })).toEqual([0.75, NaN, NaN]);
  });
});
