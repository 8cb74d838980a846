import { describe, expect, it } from "vitest";
import type { V1Lease } from "@kubernetes/client-node";
import {
  DEFAULT_TIMINGS,
  decide,
  formatMicroTime,
  leadershipValidUntil,
  observe,
  parseMicroTime,
  validateTimings,
  writeDeadline,
} from "./decide.ts";

const T0 = Date.parse("2026-11-26T08:00:00.000Z");

function lease(holder: string, renewAt: number, transitions = 3, seconds = 15): V1Lease {
  return {
    metadata: { name: "edgelb-sync-agent", namespace: "edgelb", resourceVersion: "7" },
    spec: {
      holderIdentity: holder,
      leaseDurationSeconds: seconds,
      acquireTime: formatMicroTime(T0 - 60_000) as never,
      renewTime: formatMicroTime(renewAt) as never,
      leaseTransitions: transitions,
    },
  };
}

describe("MicroTime", () => {
  it("has exactly six fractional digits, as the API server requires", () => {
    expect(formatMicroTime(T0 + 123)).toBe("2026-11-26T08:00:00.123000Z");
    expect(JSON.stringify(decide({ lease: null, identity: "a", now: T0 + 5, observation: { record: "", at: T0 }, timings: DEFAULT_TIMINGS })))
      .toContain('"renewTime":"2026-11-26T08:00:00.005000Z"');
  });
  it("parses what the client hands back (string or Date)", () => {
    expect(parseMicroTime("2026-11-26T08:00:00.123456Z")).toBe(T0 + 123);
    expect(parseMicroTime(new Date(T0))).toBe(T0);
    expect(parseMicroTime(undefined)).toBeNull();
    expect(parseMicroTime("yesterday")).toBeNull();
  });
});

describe("decide", () => {
  const me = "agent-a_1234";
  it("creates a missing lease with itself as holder and zero transitions", () => {
    const d = decide({ lease: null, identity: me, now: T0, observation: observe(null, null, T0), timings: DEFAULT_TIMINGS });
    expect(d.action).toBe("create");
    if (d.action !== "create") return;
    expect(d.spec).toMatchObject({ holderIdentity: me, leaseDurationSeconds: 15, leaseTransitions: 0 });
  });

  it("renews its own lease keeping acquireTime and transitions", () => {
    const l = lease(me, T0 - 2_000);
    const d = decide({ lease: l, identity: me, now: T0, observation: observe(null, l, T0), timings: DEFAULT_TIMINGS });
    expect(d.action).toBe("renew");
    if (d.action !== "renew") return;
    expect(d.spec.leaseTransitions).toBe(3);
    expect(d.spec.acquireTime).toBe(l.spec!.acquireTime);
    expect(JSON.stringify(d.spec.renewTime)).toBe(JSON.stringify(formatMicroTime(T0)));
  });

  it("waits while another holder's lease is live, measured from when it was observed", () => {
    const l = lease("agent-b_1", T0 - 600_000); // renewTime far in the past: skewed clock, not expiry
    const seen = observe(null, l, T0);
    const d = decide({ lease: l, identity: me, now: T0 + 14_999, observation: seen, timings: DEFAULT_TIMINGS });
    expect(d).toEqual({ action: "wait", holder: "agent-b_1", expiresInMs: 1 });
  });

  it("takes over an expired lease and counts a transition", () => {
    const l = lease("agent-b_1", T0);
    const seen = observe(null, l, T0);
    const d = decide({ lease: l, identity: me, now: T0 + 15_000, observation: seen, timings: DEFAULT_TIMINGS });
    expect(d.action).toBe("takeover");
    if (d.action !== "takeover") return;
    expect(d.previousHolder).toBe("agent-b_1");
    expect(d.spec).toMatchObject({ holderIdentity: me, leaseTransitions: 4 });
  });

  it("restarts the expiry clock whenever the holder renews", () => {
    const first = observe(null, lease("agent-b_1", T0), T0);
    const same = observe(first, lease("agent-b_1", T0), T0 + 10_000);
    expect(same.at).toBe(T0);
    const renewed = observe(same, lease("agent-b_1", T0 + 2_000), T0 + 10_000);
    expect(renewed.at).toBe(T0 + 10_000);
    const d = decide({ lease: lease("agent-b_1", T0 + 2_000), identity: me, now: T0 + 16_000, observation: renewed, timings: DEFAULT_TIMINGS });
    expect(d.action).toBe("wait");
  });

  it("honours the holder's leaseDurationSeconds", () => {
    const l = lease("agent-b_1", T0, 0, 1);
    const d = decide({ lease: l, identity: me, now: T0 + 1_000, observation: observe(null, l, T0), timings: DEFAULT_TIMINGS });
    expect(d.action).toBe("takeover");
  });

  it("takes a released lease (no holder) at once", () => {
    const l = lease("", T0);
    const d = decide({ lease: l, identity: me, now: T0, observation: observe(null, l, T0), timings: DEFAULT_TIMINGS });
    expect(d.action).toBe("takeover");
  });
});

describe("timing safety", () => {
  it("a deposed leader stops before a standby could take over", () => {
    const renewStarted = T0;
    // the standby observes the renewal no earlier than it was sent
    const standbyTakeoverAt = renewStarted + DEFAULT_TIMINGS.leaseDurationMs;
    expect(leadershipValidUntil(renewStarted, DEFAULT_TIMINGS)).toBeLessThan(standbyTakeoverAt);
    expect(writeDeadline(renewStarted, DEFAULT_TIMINGS)).toBeLessThanOrEqual(standbyTakeoverAt);
  });
  it("rejects unsafe timings with a clear message", () => {
    expect(validateTimings(DEFAULT_TIMINGS)).toBeNull();
    expect(validateTimings({ leaseDurationMs: 10_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 })).toMatch(/must be greater than the renew deadline/);
    expect(validateTimings({ leaseDurationMs: 15_000, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 })).toMatch(/retry period/);
    expect(validateTimings({ leaseDurationMs: Number.NaN, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 })).toMatch(/positive/);
  });
});
