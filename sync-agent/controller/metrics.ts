// Reconcile-loop metrics on the agent's registry: how often the desired
// snapshot is evaluated, and how many informer updates were dropped at the
// edge because nothing the agent reads changed (Node heartbeats) versus
// passed on. Counted by the controller and informers; brought up to date at
// scrape time, like informer restarts.
import { Counter, type Registry } from "prom-client";

export interface ReconcileCounts {
  evaluations(): number;
  updates(): Record<string, { unchanged: number; changed: number; irrelevant: number }>;
}

export function registerReconcileMetrics(registry: Registry, counts: ReconcileCounts, prefix = "edgelb_"): void {
  let seenEvaluations = 0;
  new Counter({
    name: `${prefix}evaluations_total`,
    help: "Evaluations of the desired snapshot (each walks every Node and Service).",
    registers: [registry],
    collect() {
      const n = counts.evaluations();
      this.inc(Math.max(0, n - seenEvaluations));
      seenEvaluations = Math.max(n, seenEvaluations);
    },
  });
  const seen = new Map<string, number>();
  new Counter({
    name: `${prefix}informer_updates_total`,
    help: "Watch events by resource; result=unchanged: an update changing nothing the agent reads (a Node heartbeat), dropped without an evaluation; irrelevant: cached without an evaluation (EndpointSlices of Cluster Services); changed: an update with new content.",
    labelNames: ["resource", "result"],
    registers: [registry],
    collect() {
      for (const [resource, c] of Object.entries(counts.updates())) {
        for (const result of ["unchanged", "changed", "irrelevant"] as const) {
          const key = `${resource}/${result}`;
          const before = seen.get(key) ?? 0;
          this.inc({ resource, result }, Math.max(0, c[result] - before));
          seen.set(key, Math.max(before, c[result]));
        }
      }
    },
  });
}
