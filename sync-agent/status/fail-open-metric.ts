// A gauge for alerting on fail-open (rv-ops 9): a broken health check (kube-proxy's healthz
// unreachable, a firewall, a mode mismatch) publishes nodes as healthy anyway, so
// edgelb_nodes{state="healthy"} == 0 never fires for it. Collected on scrape from the latest
// evaluation, like the unroutable-address gauge.
import { Gauge, type Registry } from "prom-client";

export const FAIL_OPEN_METRIC = "edgelb_fail_open";

export function registerFailOpen(
  registry: Registry,
  latest: () => { failOpen: boolean; failOpenServices: readonly string[]; gateway?: { failOpenBackends: readonly string[] } | undefined } | undefined,
): Gauge<"scope"> {
  return new Gauge({
    name: FAIL_OPEN_METRIC,
    help: "Published despite failing health checks: scope=nodes is 1 while every node failed (all published healthy); scope=services counts Local Services whose every endpoint node failed its healthCheckNodePort (all published); scope=gateway_backends the same for Local Gateway API backends",
    labelNames: ["scope"],
    registers: [registry],
    collect() {
      const d = latest();
      this.set({ scope: "nodes" }, d?.failOpen ? 1 : 0);
      this.set({ scope: "services" }, d?.failOpenServices.length ?? 0);
      this.set({ scope: "gateway_backends" }, d?.gateway?.failOpenBackends.length ?? 0);
    },
  });
}
