import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ReplayCache } from "./index.ts";

describe("replay cache", () => {
  it("accepts a nonce once", () => {
    const c = new ReplayCache({ capacity: 10, windowS: 30 });
    expect(c.accept("n1", 100, 100)).toBe(true);
    expect(c.accept("n1", 100, 101)).toBe(false);
    expect(c.accept("n2", 100, 101)).toBe(true);
  });

  it("forgets nonces once their timestamp left the window, so memory follows the request rate", () => {
    const c = new ReplayCache({ capacity: 1000, windowS: 30 });
    for (let i = 0; i < 100; i++) c.accept(`a${i}`, 100, 100);
    expect(c.size).toBe(100);
    c.accept("later", 140, 140);
    expect(c.size).toBe(1);
  });

  it("stays bounded under a flood and never lets a forgotten nonce back in", () => {
    const c = new ReplayCache({ capacity: 3, windowS: 30 });
    expect(c.accept("a", 100, 100)).toBe(true);
    expect(c.accept("b", 101, 101)).toBe(true);
    expect(c.accept("c", 102, 102)).toBe(true);
    // Full: "a" is forgotten, and with it every request signed at or before second 100.
    expect(c.accept("d", 103, 103)).toBe(true);
    expect(c.size).toBe(3);
    expect(c.accept("a", 100, 103)).toBe(false);
    expect(c.accept("new-but-old", 100, 103)).toBe(false);
    expect(c.accept("e", 104, 104)).toBe(true);
    expect(c.size).toBe(3);
  });
});

describe("replay cache under a steady request rate", () => {
  // One request per tick, 1,000 a second, each signed at its own second: after the first window the cache
  // forgets one nonce for every one it learns, which is the gate's steady state under load.
  const PER_S = 1000;
  function costPerAccept(cache: ReplayCache, from: number, n: number): number {
    const t = process.cpuUsage();
    for (let i = from; i < from + n; i++) cache.accept(`nonce-${i}`, Math.floor(i / PER_S), Math.floor(i / PER_S));
    const used = process.cpuUsage(t);
    return (used.user + used.system) / n;
  }

  it("forgetting expired nonces costs about as little as not forgetting any (no walk over earlier deletions)", () => {
    // Learning only (a window longer than the run) against learning and forgetting with 20,000 nonces alive;
    // the same nonces and timestamps in both, rounds interleaved, the cheapest round of each compared.
    const WINDOW_S = 20;
    const N = 20_000;
    const ratios: number[] = [];
    for (let round = 0; round < 5; round++) {
      const learning = new ReplayCache({ capacity: 10_000_000, windowS: 1_000_000 });
      const sliding = new ReplayCache({ capacity: 10_000_000, windowS: WINDOW_S });
      const warm = 2 * WINDOW_S * PER_S;
      costPerAccept(learning, 0, warm);
      costPerAccept(sliding, 0, warm);
      expect(sliding.size).toBeLessThanOrEqual((WINDOW_S + 2) * PER_S);
      ratios.push(costPerAccept(sliding, warm, N) / costPerAccept(learning, warm, N));
    }
    // A Map walked from its front to find its oldest entries skipped every entry deleted since its last
    // rehash: 4-6x the cost of learning alone in this test, tens of thousands of instructions per request.
    expect(Math.min(...ratios)).toBeLessThan(2.5);
  });
});

describe("replay cache against a plain model", () => {
  // The rules as first written (a Map in insertion order, its front walked to forget): the queue must decide the same.
  class Model {
    seen = new Map<string, number>();
    floor = -1;
    constructor(
      readonly capacity: number,
      readonly windowS: number,
    ) {}
    accept(nonce: string, timestamp: number, nowS: number): boolean {
      for (const [n, ts] of this.seen) {
        if (ts >= nowS - this.windowS) break;
        this.seen.delete(n);
      }
      if (timestamp <= this.floor || this.seen.has(nonce)) return false;
      if (this.seen.size >= this.capacity) {
        const [n, ts] = this.seen.entries().next().value as [string, number];
        this.seen.delete(n);
        if (ts > this.floor) this.floor = ts;
        if (timestamp <= this.floor) return false;
      }
      this.seen.set(nonce, timestamp);
      return true;
    }
  }

  it("accepts and refuses exactly what the model does, and remembers as many nonces", () => {
    const op = fc.record({ nonce: fc.integer({ min: 0, max: 40 }), skew: fc.integer({ min: -4, max: 4 }), advance: fc.integer({ min: 0, max: 3 }) });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 6 }), fc.array(op, { maxLength: 3000 }), (capacity, windowS, ops) => {
        const cache = new ReplayCache({ capacity, windowS });
        const model = new Model(capacity, windowS);
        let now = 1000;
        for (const o of ops) {
          now += o.advance;
          expect(cache.accept(`n${o.nonce}`, now + o.skew, now)).toBe(model.accept(`n${o.nonce}`, now + o.skew, now));
          expect(cache.size).toBe(model.seen.size);
        }
      }),
      { numRuns: 100 },
    );
  });
});
