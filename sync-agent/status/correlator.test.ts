import { describe, expect, it } from "vitest";
import { EventCorrelator } from "./correlator.ts";

const ref = { namespace: "shop", name: "web", uid: "u1" };
const ev = (message: string, reason = "UpdatedLoadBalancer") => ({ ref, type: "Normal" as const, reason, message });

describe("EventCorrelator", () => {
  it("turns a repeated Event into count bumps of one object", () => {
    const c = new EventCorrelator();
    const first = c.correlate(ev("Updated load balancer with new hosts"), 0);
    expect(first.action).toBe("create");
    if (first.action !== "create") return;
    c.created(first.key, "web.1");
    expect(c.correlate(ev("Updated load balancer with new hosts"), 1_000)).toMatchObject({ action: "patch", name: "web.1", count: 2 });
    expect(c.correlate(ev("Updated load balancer with new hosts"), 2_000)).toMatchObject({ action: "patch", name: "web.1", count: 3 });
  });

  it("starts a new Event after the window", () => {
    const c = new EventCorrelator({ aggregateIntervalMs: 1_000 });
    const first = c.correlate(ev("m"), 0);
    if (first.action === "create") c.created(first.key, "web.1");
    expect(c.correlate(ev("m"), 5_000).action).toBe("create");
  });

  it("aggregates many similar messages into one combined Event", () => {
    const c = new EventCorrelator({ aggregateMaxEvents: 3 });
    const actions = [];
    for (let i = 0; i < 6; i++) {
      const r = c.correlate(ev(`message ${i}`, "SyncLoadBalancerFailed"), i);
      if (r.action === "create") c.created(r.key, `web.${i}`);
      actions.push(r);
    }
    expect(actions.map((a) => a.action)).toEqual(["create", "create", "create", "patch", "patch", "patch"]);
    expect(actions[2]).toMatchObject({ message: "(combined from similar events): message 2" });
    expect(actions[5]).toMatchObject({ action: "patch", name: "web.2", count: 4 });
  });

  it("rate-limits per object and reason with a token bucket", () => {
    const c = new EventCorrelator({ burst: 3, refillIntervalMs: 60_000 });
    const results = Array.from({ length: 5 }, (_, i) => c.correlate(ev(`m${i % 2}`), i).action);
    expect(results.filter((a) => a === "drop")).toHaveLength(2);
    // other objects and other reasons are not affected
    expect(c.correlate(ev("gone", "DeletedLoadBalancer"), 10).action).toBe("create");
    expect(c.correlate({ ...ev("m"), ref: { ...ref, name: "other", uid: "u2" } }, 10).action).toBe("create");
    // one token comes back per interval
    expect(c.correlate(ev("m0"), 60_010).action).not.toBe("drop");
    expect(c.correlate(ev("m0"), 60_011).action).toBe("drop");
  });
});
