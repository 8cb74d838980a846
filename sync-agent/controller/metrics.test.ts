// The reconcile metrics follow the controller's and informers' own counters at scrape time.
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { registerReconcileMetrics } from "./metrics.ts";

describe("registerReconcileMetrics", () => {
  it("exports evaluations and informer updates by result, as counters that never go back", async () => {
    const registry = new Registry();
    let evaluations = 3;
    let nodes = { unchanged: 100, changed: 2, irrelevant: 0 };
    registerReconcileMetrics(registry, { evaluations: () => evaluations, updates: () => ({ nodes }) });
    let text = await registry.metrics();
    expect(text).toContain("edgelb_evaluations_total 3");
    expect(text).toContain('edgelb_informer_updates_total{resource="nodes",result="unchanged"} 100');
    expect(text).toContain('edgelb_informer_updates_total{resource="nodes",result="irrelevant"} 0');
    evaluations = 5;
    nodes = { unchanged: 250, changed: 2, irrelevant: 0 };
    text = await registry.metrics();
    expect(text).toContain("edgelb_evaluations_total 5");
    expect(text).toContain('edgelb_informer_updates_total{resource="nodes",result="unchanged"} 250');
  });
});
