import { describe, expect, it } from "vitest";
import { RetryBudget, retryAfterMs } from "./budget.ts";

function clock(start = 1_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

describe("retry budget", () => {
  it("allows a small floor of retries even with little traffic", () => {
    const c = clock();
    const b = new RetryBudget({ now: c.now, floor: 3 });
    b.request();
    expect([b.tryRetry(), b.tryRetry(), b.tryRetry(), b.tryRetry()]).toEqual([true, true, true, false]);
  });

  it("caps retries at the ratio of requests over the window", () => {
    const c = clock();
    const b = new RetryBudget({ now: c.now, floor: 2, ratio: 0.2 });
    for (let i = 0; i < 100; i++) b.request();
    let allowed = 0;
    for (let i = 0; i < 100; i++) if (b.tryRetry()) allowed++;
    expect(allowed).toBe(20);
  });

  it("forgets requests and retries that slid out of the window", () => {
    const c = clock();
    const b = new RetryBudget({ now: c.now, floor: 1, windowMs: 10_000 });
    b.request();
    expect(b.tryRetry()).toBe(true);
    expect(b.tryRetry()).toBe(false);
    c.t += 5_000;
    expect(b.tryRetry()).toBe(false);
    c.t += 5_001;
    expect(b.tryRetry()).toBe(true);
  });

  it("says a spent budget once per window, not once per refused retry", () => {
    const c = clock();
    const b = new RetryBudget({ now: c.now, windowMs: 10_000 });
    expect([b.reportSpent(), b.reportSpent()]).toEqual([true, false]);
    c.t += 9_999;
    expect(b.reportSpent()).toBe(false);
    c.t += 1;
    expect(b.reportSpent()).toBe(true);
  });

  it("holds a Service for its Retry-After, capped", () => {
    const c = clock();
    const b = new RetryBudget({ now: c.now, maxHoldMs: 60_000 });
    b.hold("c/ns/web", 10_000);
    expect(b.isHeld("c/ns/web")).toBe(true);
    expect(b.isHeld("c/ns/other")).toBe(false);
    c.t += 10_001;
    expect(b.isHeld("c/ns/web")).toBe(false);
    b.hold("c/ns/web", 86_400_000);
    c.t += 60_001;
    expect(b.isHeld("c/ns/web")).toBe(false);
  });
});

describe("Retry-After", () => {
  it("reads delta-seconds and HTTP-dates, and nothing else", () => {
    const now = Date.parse("2026-12-01T10:00:00Z");
    expect(retryAfterMs("120", now)).toBe(120_000);
    expect(retryAfterMs(" 0 ", now)).toBe(0);
    expect(retryAfterMs("Tue, 01 Dec 2026 10:00:30 GMT", now)).toBe(30_000);
    expect(retryAfterMs("Tue, 01 Dec 2026 09:00:00 GMT", now)).toBe(0);
    expect(retryAfterMs("soon", now)).toBeUndefined();
    expect(retryAfterMs("-5", now)).toBeUndefined();
    expect(retryAfterMs(null, now)).toBeUndefined();
  });
});
