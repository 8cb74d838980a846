import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { ConnectHedges } from "./index.ts";

describe("ConnectHedges", () => {
  it("uses the floor until a node's connects are measured, then SRTT + 4·RTTVAR when that is longer", () => {
    const h = new ConnectHedges();
    expect(h.delayMs("far", 250)).toBe(250);
    h.observe("far", 300);
    // First sample: SRTT 300, RTTVAR 150 (RFC 6298 §2.2).
    expect(h.delayMs("far", 250)).toBe(900);
    for (let i = 0; i < 50; i++) h.observe("far", 300);
    expect(h.delayMs("far", 250)).toBeGreaterThanOrEqual(300);
    expect(h.delayMs("far", 250)).toBeLessThan(320);
    // A near node keeps the floor.
    h.observe("near", 1);
    expect(h.delayMs("near", 250)).toBe(250);
  });

  it("never goes below the floor, whatever was measured", () => {
    fc.assert(
      fc.property(fc.array(fc.nat(5_000), { minLength: 1, maxLength: 30 }), fc.integer({ min: 10, max: 2_000 }), (samples, floor) => {
        const h = new ConnectHedges();
        for (const s of samples) h.observe("n", s);
        const d = h.delayMs("n", floor);
        return d >= floor && Number.isFinite(d);
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
