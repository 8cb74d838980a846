// Damping of "no ready endpoint" (rv-ops 6): pure decisions over a simulated clock.
import { describe, expect, it } from "vitest";
import type { ServedService } from "./desired.ts";
import { holdNoEndpoint, NO_ENDPOINT_HOLD_MS, noEndpointAnywhere, type NoEndpointMemo } from "./no-endpoint-hold.ts";

const cluster = (ready: boolean): ServedService =>
  ({ namespace: "default", name: "shop", hostnames: ["shop.example.com"], trafficPolicy: "Cluster", port: { nodePort: 30080 }, ...(ready ? {} : { noEndpoints: true }) }) as unknown as ServedService;
const local = (nodes: Record<string, number>): ServedService =>
  ({ namespace: "default", name: "api", hostnames: ["api.example.com"], trafficPolicy: "Local", port: { nodePort: 30081 }, localEndpoints: new Map(Object.entries(nodes)) }) as unknown as ServedService;
/** What the snapshot says about the Service: the form a write is paid for. */
const published = (s: ServedService) => JSON.stringify({ none: noEndpointAnywhere(s), local: s.localEndpoints ? [...s.localEndpoints] : null });

describe("holdNoEndpoint", () => {
  it("a one-replica app flapping every 5 s for a minute costs no write; one that stays down is published after the hold", () => {
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

    // Down for good at 65 s: still served as before until the hold has passed, then "no endpoint".
    expect(evaluate(cluster(false), 65_000)).toBe(65_000 + NO_ENDPOINT_HOLD_MS);
    expect(writes).toBe(0);
    expect(evaluate(cluster(false), 65_000 + NO_ENDPOINT_HOLD_MS)).toBeUndefined();
    expect(writes).toBe(1);
    // Ready again: published at once.
    evaluate(cluster(true), 80_000);
    expect(writes).toBe(2);
  });

  it("at most two writes per hold however it flaps: bounded per minute", () => {
    const memo: NoEndpointMemo = new Map();
    let writes = 0;
    let last = "";
    // Worst case: down exactly as long as the hold, then up for a moment; evaluated every second.
    for (let t = 0; t < 60_000; t += 1_000) {
      const up = t % (NO_ENDPOINT_HOLD_MS + 2_000) === 0;
      const s = cluster(up);
      holdNoEndpoint([s], memo, t, NO_ENDPOINT_HOLD_MS);
      const p = published(s);
      if (last && p !== last) writes++;
      last = p;
    }
    expect(writes).toBeLessThanOrEqual(2 * Math.ceil(60_000 / NO_ENDPOINT_HOLD_MS));
    expect(writes).toBeGreaterThan(0); // the bound is reached by slow flapping, not by never publishing
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
