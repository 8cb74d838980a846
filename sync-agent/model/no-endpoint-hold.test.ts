// Damping of "no ready endpoint" (rv-ops 6): pure decisions over a simulated clock.
import { describe, expect, it } from "vitest";
import type { ServedService } from "./desired.ts";
import { FLAP_WINDOW_MS, holdNoEndpoint, MAX_NO_ENDPOINT_HOLD_MS, NO_ENDPOINT_HOLD_MS, noEndpointAnywhere, type NoEndpointMemo } from "./no-endpoint-hold.ts";

const cluster = (ready: boolean): ServedService =>
  ({ namespace: "default", name: "shop", hostnames: ["shop.example.com"], trafficPolicy: "Cluster", port: { nodePort: 30080 }, ...(ready ? {} : { noEndpoints: true }) }) as unknown as ServedService;
const local = (nodes: Record<string, number>): ServedService =>
  ({ namespace: "default", name: "api", hostnames: ["api.example.com"], trafficPolicy: "Local", port: { nodePort: 30081 }, localEndpoints: new Map(Object.entries(nodes)) }) as unknown as ServedService;
/** What the snapshot says about the Service: the form a write is paid for. */
const published = (s: ServedService) => JSON.stringify({ none: noEndpointAnywhere(s), local: s.localEndpoints ? [...s.localEndpoints] : null });

describe("holdNoEndpoint", () => {
  it("a one-replica app flapping every 5 s for a minute costs no write; one that stays down after a quiet while is published after the base hold", () => {
    const memo: NoEndpointMemo = new Map();
    let writes = 0;
    let last = "";
    const evaluate = (s: ServedService, now: number) => {
      const wake = holdNoEndpoint([s], memo, now, NO_ENDPOINT_HOLD_MS);
      const p = published(s);
      if (last && p !== last) writes++;
      last = p;
      return wake;
    };
    evaluate(cluster(true), 0);
    for (let t = 5_000; t <= 60_000; t += 5_000) evaluate(cluster(t % 10_000 === 0), t);
    expect(writes).toBe(0);

    // Down for good after a quiet window (a plain scale to 0): still served as before until the base hold has passed, then "no endpoint".
    const down = 60_000 + FLAP_WINDOW_MS;
    expect(evaluate(cluster(false), down)).toBe(down + NO_ENDPOINT_HOLD_MS);
    expect(writes).toBe(0);
    expect(evaluate(cluster(false), down + NO_ENDPOINT_HOLD_MS)).toBeUndefined();
    expect(writes).toBe(1);
    // Ready again: published at once.
    evaluate(cluster(true), down + NO_ENDPOINT_HOLD_MS + 5_000);
    expect(writes).toBe(2);
  });

  // rv-ops finding 4: a readiness probe flaps slower than the base hold (unready ≥ 1 probe period, ready again after another).
  for (const [unreadyMs, readyMs] of [[12_000, 10_000], [10_000, 10_000], [40_000, 20_000]] as const) {
    it(`a readiness probe flapping (${unreadyMs / 1000} s unready, ${readyMs / 1000} s ready) for 10 minutes costs only a few writes: each flap doubles the hold`, () => {
      const memo: NoEndpointMemo = new Map();
      let writes = 0;
      let last = "";
      let wake: number | undefined;
      const evaluate = (ready: boolean, now: number) => {
        const s = cluster(ready);
        wake = holdNoEndpoint([s], memo, now, NO_ENDPOINT_HOLD_MS);
        const p = published(s);
        if (last && p !== last) writes++;
        last = p;
      };
      evaluate(true, 0);
      const period = unreadyMs + readyMs;
      for (let t = 0; t < 600_000; t += period) {
        evaluate(false, t + readyMs); // the probe fails: unready
        if (wake !== undefined && wake < t + period) evaluate(false, wake); // the controller's scheduled re-evaluation
        evaluate(true, t + period); // the next probe succeeds: ready
      }
      expect(writes).toBeLessThanOrEqual(10);
    });
  }

  it("the hold stops growing at its cap, and a loss after a quiet window (a plain scale to 0) gets the base hold again", () => {
    const memo: NoEndpointMemo = new Map();
    let t = 0;
    holdNoEndpoint([cluster(true)], memo, t, NO_ENDPOINT_HOLD_MS);
    const holds: number[] = [];
    for (let i = 0; i < 8; i++) {
      t += 1_000;
      holds.push(holdNoEndpoint([cluster(false)], memo, t, NO_ENDPOINT_HOLD_MS)! - t);
      t += 1_000;
      holdNoEndpoint([cluster(true)], memo, t, NO_ENDPOINT_HOLD_MS);
    }
    expect(holds).toEqual([10_000, 20_000, 40_000, 80_000, 160_000, MAX_NO_ENDPOINT_HOLD_MS, MAX_NO_ENDPOINT_HOLD_MS, MAX_NO_ENDPOINT_HOLD_MS]);
    t += FLAP_WINDOW_MS;
    expect(holdNoEndpoint([cluster(false)], memo, t, NO_ENDPOINT_HOLD_MS)! - t).toBe(NO_ENDPOINT_HOLD_MS);
  });

  it("a Local Service keeps the nodes it last had during the hold", () => {
    const memo: NoEndpointMemo = new Map();
    holdNoEndpoint([local({ "node-1": 1 })], memo, 0, 1_000);
    const gone = local({});
    expect(holdNoEndpoint([gone], memo, 100, 1_000)).toBe(1_100);
    expect([...gone.localEndpoints!]).toEqual([["node-1", 1]]);
    const still = local({});
    expect(holdNoEndpoint([still], memo, 1_100, 1_000)).toBeUndefined();
    expect(still.localEndpoints!.size).toBe(0);
  });

  it("a Service first seen without an endpoint (new, or after a restart) is published as it is", () => {
    const memo: NoEndpointMemo = new Map();
    const s = cluster(false);
    expect(holdNoEndpoint([s], memo, 0, 1_000)).toBeUndefined();
    expect(noEndpointAnywhere(s)).toBe(true);
  });

  it("forgets deleted Services", () => {
    const memo: NoEndpointMemo = new Map();
    holdNoEndpoint([cluster(true)], memo, 0, 1_000);
    holdNoEndpoint([], memo, 1, 1_000);
    const s = cluster(false);
    holdNoEndpoint([s], memo, 2, 1_000);
    expect(noEndpointAnywhere(s)).toBe(true);
  });
});
