import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { clientPlace, haversineKm } from "./geo.ts";

describe("haversine", () => {
  it("gives known distances within 0.5%", () => {
    // Frankfurt–New York ≈ 6,200 km; London–Paris ≈ 344 km.
    expect(haversineKm({ lat: 50.11, lon: 8.68 }, { lat: 40.71, lon: -74.01 })).toBeGreaterThan(6170);
    expect(haversineKm({ lat: 50.11, lon: 8.68 }, { lat: 40.71, lon: -74.01 })).toBeLessThan(6230);
    expect(haversineKm({ lat: 51.5074, lon: -0.1278 }, { lat: 48.8566, lon: 2.3522 })).toBeCloseTo(343.5, -1);
  });

  it("is symmetric, zero at the same place, and never more than half the earth's circumference", () => {
    const point = fc.record({ lat: fc.double({ min: -90, max: 90, noNaN: true }), lon: fc.double({ min: -180, max: 180, noNaN: true }) });
    fc.assert(
      fc.property(point, point, (a, b) => {
        const d = haversineKm(a, b);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThanOrEqual(20_016);
        expect(Math.abs(d - haversineKm(b, a))).toBeLessThan(1e-6);
        expect(haversineKm(a, a)).toBe(0);
      }),
    );
  });
});

describe("client place from request.cf", () => {
  it("reads Cloudflare's string coordinates and codes", () => {
    expect(clientPlace({ country: "de", continent: "EU", latitude: "52.52", longitude: "13.40" })).toEqual({
      country: "DE",
      continent: "EU",
      position: { lat: 52.52, lon: 13.4 },
    });
  });

  it("ignores anything malformed instead of steering by it", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom("country", "continent", "latitude", "longitude"), fc.anything()), (cf) => {
        const p = clientPlace(cf as Record<string, unknown>);
        if (p.country !== undefined) expect(p.country).toMatch(/^[A-Z]{2}$/);
        if (p.continent !== undefined) expect(p.continent).toMatch(/^[A-Z]{2}$/);
        if (p.position) {
          expect(Math.abs(p.position.lat)).toBeLessThanOrEqual(90);
          expect(Math.abs(p.position.lon)).toBeLessThanOrEqual(180);
        }
      }),
    );
    expect(clientPlace({ latitude: "91", longitude: "0" })).toEqual({});
    expect(clientPlace({ latitude: "NaN", longitude: "1" })).toEqual({});
    expect(clientPlace(undefined)).toEqual({});
  });
});
