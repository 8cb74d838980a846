// A gauge the metrics registry can take: how many backend nodes publish an
// address Cloudflare refuses to connect to (model/node.ts unroutableReason).
// Collected on scrape from the latest topology, so it needs no bookkeeping.
import { Gauge, type Registry } from "prom-client";

export const UNROUTABLE_NODES_METRIC = "edgelb_nodes_unroutable_address";

export function registerUnroutableNodes(registry: Registry, nodes: () => readonly { unroutable?: string | undefined }[] | undefined): Gauge {
  return new Gauge({
    name: UNROUTABLE_NODES_METRIC,
    help: "Backend nodes whose published address Cloudflare refuses (private, loopback, link-local, CGNAT, unique local); 0 with --allow-private-addresses",
    registers: [registry],
    collect() {
      this.set((nodes() ?? []).filter((n) => n.unroutable).length);
    },
  });
}
