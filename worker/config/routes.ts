// Pure: snapshots in, a host → route index out. Built once per snapshot change,
// never per request.
import type { ServicePolicy, Snapshot, SnapshotService } from "../snapshot/schema.ts";
import type { Origin } from "../transport/types.ts";

/** One backend of a route: a node's address and a Service's NodePort. */
export interface RouteOrigin extends Origin {
  /** Stable id for balancer, ejection and in-flight bookkeeping: cluster/node:port. */
  key: string;
  cluster: string;
  /** namespace/name of the Service. */
  service: string;
  weight: number;
  /** The agent's verdict (node health, and the Local health check). */
  healthy: boolean;
}

export interface Route {
  /** The hostname pattern that matched (exact name or `*.suffix`). */
  pattern: string;
  /** namespace/name of each Service behind this hostname, prefixed by cluster. */
  services: { cluster: string; id: string }[];
  /** The first Service's policy (cluster order of EDGELB_CLUSTERS) governs a merged route. */
  policy: ServicePolicy;
  origins: RouteOrigin[];
}

export interface RouteIndex {
  exact: Map<string, Route>;
  /** Keyed by the suffix after `*.`: `*.example.com` → "example.com". */
  wildcard: Map<string, Route>;
}

export const EMPTY_INDEX: RouteIndex = { exact: new Map(), wildcard: new Map() };

export function serviceOrigins(cluster: string, snapshot: Snapshot, svc: SnapshotService): RouteOrigin[] {
  const id = `${svc.namespace}/${svc.name}`;
  const nodes = new Map(snapshot.nodes.map((n) => [n.name, n]));
  const make = (name: string, weight: number, healthy: boolean): RouteOrigin | undefined => {
    const node = nodes.get(name);
    if (!node) return undefined;
    return {
      key: `${cluster}/${node.name}:${svc.nodePort}`,
      node: node.name,
      address: node.address,
      port: svc.nodePort,
      scheme: svc.scheme,
      cluster,
      service: id,
      weight,
      healthy: healthy && node.healthy,
    };
  };
  const out: RouteOrigin[] = [];
  if (svc.trafficPolicy === "Local") {
    // Only nodes with ready local endpoints may serve a Local Service.
    for (const ep of svc.endpoints ?? []) {
      const o = make(ep.node, ep.weight, ep.healthy);
      if (o) out.push(o);
    }
  } else {
    for (const n of snapshot.nodes) {
      const o = make(n.name, 1, true);
      if (o) out.push(o);
    }
  }
  return out;
}

/**
 * Builds the index from the snapshots of the served clusters, in the order
 * given. A hostname served by several Services (in one or several clusters)
 * gets the union of their origins.
 */
export function buildIndex(snapshots: { cluster: string; snapshot: Snapshot }[]): RouteIndex {
  const index: RouteIndex = { exact: new Map(), wildcard: new Map() };
  for (const { cluster, snapshot } of snapshots) {
    const services = [...snapshot.services].sort((a, b) =>
      `${a.namespace}/${a.name}` < `${b.namespace}/${b.name}` ? -1 : 1,
    );
    for (const svc of services) {
      const origins = serviceOrigins(cluster, snapshot, svc);
      for (const host of new Set(svc.hostnames.map((h) => h.toLowerCase()))) {
        const isWildcard = host.startsWith("*.");
        const map = isWildcard ? index.wildcard : index.exact;
        const key = isWildcard ? host.slice(2) : host;
        let route = map.get(key);
        if (!route) {
          route = { pattern: host, services: [], policy: svc.policy, origins: [] };
          map.set(key, route);
        }
        route.services.push({ cluster, id: `${svc.namespace}/${svc.name}` });
        route.origins.push(...origins);
      }
    }
  }
  return index;
}

/** The Host header without port and trailing dot, lowercased. */
export function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith("[")) {
    const end = h.indexOf("]");
    h = end === -1 ? h : h.slice(0, end + 1);
  } else {
    const colon = h.indexOf(":");
    if (colon !== -1) h = h.slice(0, colon);
  }
  return h.endsWith(".") ? h.slice(0, -1) : h;
}

/** Exact names win; a `*.suffix` wildcard matches exactly one more label. */
export function lookupRoute(index: RouteIndex, host: string): Route | undefined {
  const h = normalizeHost(host);
  const exact = index.exact.get(h);
  if (exact) return exact;
  const dot = h.indexOf(".");
  if (dot <= 0) return undefined;
  return index.wildcard.get(h.slice(dot + 1));
}
