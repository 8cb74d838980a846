import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { ConnectHedges } from "./index.ts";

describe("ConnectHedges", () => {
  it("uses the floor until a node's connects are measured, then SRTT + 4·RTTVAR when that is longer", () => {
    const h = new ConnectHedges();
    expect(h.delayMs("far", 250, 1_500)).toBe(250);
    h.observe("far", 300);
    // First sample: SRTT 300, RTTVAR 150 (RFC 6298 §2.2).
    expect(h.delayMs("far", 250, 5_000)).toBe(900);
    for (let i = 0; i < 50; i++) h.observe("far", 300);
    expect(h.delayMs("far", 250, 1_500)).toBeGreaterThanOrEqual(300);
    expect(h.delayMs("far", 250, 1_500)).toBeLessThan(320);
    // A near node keeps the floor.
    h.observe("near", 1);
    expect(h.delayMs("near", 250, 1_500)).toBe(250);
  });

  it("is never switched off by what it measured: capped at half the connect timeout, and a retransmitted connect is not a sample", () => {
    const h = new ConnectHedges();
    for (let i = 0; i < 20; i++) h.observe("a", 2);
    // The loser of a race that opened after a lost SYN (~1.1 s) says nothing about the round trip.
    h.observe("a", 1_100);
    expect(h.delayMs("a", 250, 1_500)).toBe(250);
    // A far node's first sample: SRTT + 4·RTTVAR = 1,800 ms, capped below the connect timeout.
    h.observe("far", 600);
    expect(h.delayMs("far", 250, 1_500)).toBe(750);
    expect(h.delayMs("far", 250, 10_000)).toBe(1_800);
    // RFC 8305's recommended upper bound: 2 s.
    h.observe("farther", 900);
    expect(h.delayMs("farther", 250, 10_000)).toBe(2_000);
    // An operator's floor above the cap is kept.
    expect(h.delayMs("far", 1_000, 1_500)).toBe(1_000);
  });

  it("never goes below the floor, whatever was measured", () => {
    fc.assert(
      fc.property(fc.array(fc.nat(5_000), { minLength: 1, maxLength: 30 }), fc.integer({ min: 10, max: 2_000 }), (samples, floor) => {
        const h = new ConnectHedges();
        for (const s of samples) h.observe("n", s);
        const d = h.delayMs("n", floor, 1_500);
        // Measurements alone never push it to the connect timeout (which would switch hedging off).
        return d >= floor && Number.isFinite(d) && d <= Math.max(floor, 750);
      }),
    );
  });

  it("marks a node stalled while any of its connects is pending past its delay", () => {
    const h = new ConnectHedges();
    expect(h.isStalled("a")).toBe(false);
    h.stall("a", 1_000);
    h.stall("a", 1_000);
    h.unstall("a");
    expect(h.isStalled("a")).toBe(true);
    h.unstall("a");
    expect(h.isStalled("a")).toBe(false);
    expect(h.isStalled("b")).toBe(false);
  });

  it("lets a mark lapse at the connect's timeout when its connect never settled (a cancelled request)", () => {
    let t = 0;
    const h = new ConnectHedges(() => t);
    h.stall("a", 1_500);
    t = 1_499;
    expect(h.isStalled("a")).toBe(true);
    t = 1_500;
    expect(h.isStalled("a")).toBe(false);
    // Settling late does no harm.
    h.unstall("a");
    expect(h.isStalled("a")).toBe(false);
  });
});
