// Pure: snapshots in, a host → route index out. Built once per snapshot change,
// never per request.
//
// Memory and CPU are O(nodes + services + endpoints), not O(services × nodes):
// each cluster's nodes live once in a NodeTable, a Cluster-policy Service is a
// reference to that table plus its NodePort, and RouteOrigin objects are made
// only for the node a request is sent to (or for a Local Service's few nodes).
import type { ServicePolicy, Snapshot, SnapshotService } from "../snapshot/schema.ts";
import type { Origin } from "../transport/types.ts";
import { hash32 } from "../balancer/hash.ts";
import { compileRanges, type CompiledRanges } from "../source-ranges/index.ts";

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
  /** The cluster's origins go through the node gate on this port (signed requests); undefined: direct. */
  gatePort?: number | undefined;
}

/** The nodes of one cluster snapshot, once, shared by all of its Services. */
export interface NodeTable {
  cluster: string;
  names: string[];
  addresses: string[];
  healthy: boolean[];
  byName: Map<string, number>;
  /** Indices of the healthy nodes, in snapshot order. */
  healthyNodes: number[];
  /** Client-ip affinity's hashing state, built on first use (most routes never need it). */
  affinity: Affinity | undefined;
  /** Cookie affinity: a cookie's node part → node index, built on first use. */
  cookieNodes: Map<string, number> | undefined;
  /** The snapshot's gate port (origins mode "gate"); undefined: direct. */
  gatePort: number | undefined;
}

export interface Affinity {
  /** Per node: hash of its identity, the node's half of a rendezvous score. */
  nodeSeeds: Uint32Array;
  /** Per group: its seed and its nodes. A node's group follows from its own seed only. */
  groupSeeds: Uint32Array;
  members: number[][];
}

/** Fixed, so a node's group survives nodes joining and leaving. */
export const AFFINITY_GROUPS = 64;

export function affinityOf(table: NodeTable): Affinity {
  if (table.affinity) return table.affinity;
  const n = table.names.length;
  const nodeSeeds = new Uint32Array(n);
  for (let i = 0; i < n; i++) nodeSeeds[i] = nodeSeed(table.cluster, table.names[i]!, table.addresses[i]!);
  const groupSeeds = new Uint32Array(AFFINITY_GROUPS);
  const members: number[][] = [];
  for (let g = 0; g < AFFINITY_GROUPS; g++) {
    groupSeeds[g] = hash32(`${table.cluster}#group-${g}`);
    members.push([]);
  }
  for (let i = 0; i < n; i++) members[nodeSeeds[i]! % AFFINITY_GROUPS]!.push(i);
  return (table.affinity = { nodeSeeds, groupSeeds, members });
}

/** The origins one Service adds to a route. */
export interface Backend {
  cluster: string;
  /** namespace/name of the Service. */
  service: string;
  port: number;
  scheme: "http" | "https";
  table: NodeTable;
  /** Local: the table indices of the nodes with endpoints. Cluster: absent, every node of the table. */
  members: number[] | undefined;
  /** Local: endpoint weight per member. */
  weights: number[] | undefined;
  /** Local: the member is healthy (its node and its health check). */
  memberHealthy: boolean[] | undefined;
  size: number;
  /** Positions (member index, or node index for Cluster) of the healthy origins. */
  healthy: number[];
}

export interface Route {
  /** The hostname pattern that matched (exact name or `*.suffix`). */
  pattern: string;
  /** The cluster whose Services serve this route (another cluster's claim is another route). */
  cluster: string;
  /** namespace/name of each Service behind this hostname, prefixed by cluster. */
  services: { cluster: string; id: string }[];
  /** The first Service's policy governs a route several Services share. */
  policy: ServicePolicy;
  /** One per Service, in order; their origins concatenated are the route's origins. */
  backends: Backend[];
  /** Number of origins. */
  size: number;
  /** Number of origins the agent reports healthy. */
  healthyCount: number;
  /** Every origin has weight 1 (always so without Local Services). */
  uniformWeights: boolean;
  /** loadBalancerSourceRanges of the Services that restrict sources; the client must pass each. */
  sourceRanges?: CompiledRanges[];
}

export interface RouteIndex {
  /** The owner's route: the first cluster (EDGELB_CLUSTERS order) that claims the hostname. */
  exact: Map<string, Route>;
  /** Keyed by the suffix after `*.`: `*.example.com` → "example.com". */
  wildcard: Map<string, Route>;
  /**
   * Patterns claimed by more than one cluster → one route per cluster, in
   * EDGELB_CLUSTERS order (the first is the owner's). Only a steering rule
   * (worker/steering) lets the others serve; without one they are refused.
   */
  claims: Map<string, Route[]>;
}

export const EMPTY_INDEX: RouteIndex = { exact: new Map(), wildcard: new Map(), claims: new Map() };

/** The rendezvous identity of a node: cluster, name and address (a readdressed node is a new one). */
export function nodeSeed(cluster: string, node: string, address: string): number {
  return hash32(`${cluster}/${node}|${address}`);
}

const tables = new WeakMap<Snapshot, Map<string, NodeTable>>();

/** The node table of a snapshot, built once and cached with the snapshot. */
export function nodeTable(cluster: string, snapshot: Snapshot): NodeTable {
  let byCluster = tables.get(snapshot);
  if (!byCluster) tables.set(snapshot, (byCluster = new Map()));
  let table = byCluster.get(cluster);
  if (table) return table;
  const n = snapshot.nodes.length;
  const names: string[] = new Array(n);
  const addresses: string[] = new Array(n);
  const healthy: boolean[] = new Array(n);
  const byName = new Map<string, number>();
  const up: number[] = [];
  for (let i = 0; i < n; i++) {
    const node = snapshot.nodes[i]!;
    names[i] = node.name;
    addresses[i] = node.address;
    healthy[i] = node.healthy;
    byName.set(node.name, i);
    if (node.healthy) up.push(i);
  }
  table = { cluster, names, addresses, healthy, byName, healthyNodes: up, affinity: undefined, cookieNodes: undefined,
    gatePort: snapshot.origins?.mode === "gate" ? snapshot.origins.port : undefined };
  byCluster.set(cluster, table);
  return table;
}

export function serviceBackend(cluster: string, table: NodeTable, svc: SnapshotService, service = `${svc.namespace}/${svc.name}`): Backend {
  // Cluster with `endpoints: []`: no pod anywhere (scaled to 0), every node refuses the
  // NodePort. No member at all (the Local path below) makes the proxy answer 503 at once.
  if (svc.trafficPolicy !== "Local" && svc.endpoints?.length !== 0) {
    // One object literal shape for both kinds keeps the hot paths monomorphic.
    return {
      cluster,
      service,
      port: svc.nodePort,
      scheme: svc.scheme,
      table,
      members: undefined,
      weights: undefined,
      memberHealthy: undefined,
      size: table.names.length,
      healthy: table.healthyNodes,
    };
  }
  // Only nodes with ready local endpoints may serve a Local Service.
  const members: number[] = [];
  const weights: number[] = [];
  const memberHealthy: boolean[] = [];
  const up: number[] = [];
  for (const ep of svc.endpoints ?? []) {
    const i = table.byName.get(ep.node);
    if (i === undefined) continue;
    const ok = ep.healthy && table.healthy[i]!;
    if (ok) up.push(members.length);
    members.push(i);
    weights.push(ep.weight);
    memberHealthy.push(ok);
  }
  return {
    cluster,
    service,
    port: svc.nodePort,
    scheme: svc.scheme,
    table,
    members,
    weights,
    memberHealthy,
    size: members.length,
    healthy: up,
  };
}

/** The table index of the node at a backend position. */
export function nodeAt(b: Backend, pos: number): number {
  return b.members ? b.members[pos]! : pos;
}

export function originKey(b: Backend, pos: number): string {
  return `${b.cluster}/${b.table.names[nodeAt(b, pos)]!}:${b.port}`;
}

/** Makes the origin object for one position (on demand: never for all nodes of every Service). */
export function originAt(b: Backend, pos: number): RouteOrigin {
  const i = nodeAt(b, pos);
  const node = b.table.names[i]!;
  return {
    key: `${b.cluster}/${node}:${b.port}`,
    node,
    address: b.table.addresses[i]!,
    port: b.port,
    scheme: b.scheme,
    cluster: b.cluster,
    service: b.service,
    weight: b.weights ? b.weights[pos]! : 1,
    healthy: b.memberHealthy ? b.memberHealthy[pos]! : b.table.healthy[i]!,
    gatePort: b.table.gatePort,
  };
}

/** Every origin of a route, in order. O(size): for small routes, fail-open and tests. */
export function routeOrigins(route: Route): RouteOrigin[] {
  const out: RouteOrigin[] = [];
  for (const b of route.backends) for (let p = 0; p < b.size; p++) out.push(originAt(b, p));
  return out;
}

/** The origins of one Service (the status page lists them). */
export function serviceOrigins(cluster: string, snapshot: Snapshot, svc: SnapshotService): RouteOrigin[] {
  const b = serviceBackend(cluster, nodeTable(cluster, snapshot), svc);
  const out: RouteOrigin[] = new Array(b.size);
  for (let p = 0; p < b.size; p++) out[p] = originAt(b, p);
  return out;
}

/**
 * Builds the index from the snapshots of the served clusters, in the order
 * given. Services of one cluster that share a hostname share a route (the
 * union of their origins); another cluster's claim on it gets a route of its
 * own in `claims`, never merged: a cluster cannot take over, or add its nodes
 * to, a hostname that an earlier cluster serves.
 */
export function buildIndex(snapshots: { cluster: string; snapshot: Snapshot }[]): RouteIndex {
  const index: RouteIndex = { exact: new Map(), wildcard: new Map(), claims: new Map() };
  for (const { cluster, snapshot } of snapshots) {
    const table = nodeTable(cluster, snapshot);
    const services = snapshot.services.map((svc) => ({ id: `${svc.namespace}/${svc.name}`, svc }));
    // The agent publishes Services sorted; sort only when they are not.
    let sorted = true;
    for (let i = 1; i < services.length && sorted; i++) sorted = services[i - 1]!.id < services[i]!.id;
    if (!sorted) services.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const { id, svc } of services) {
      const backend = serviceBackend(cluster, table, svc, id);
      const uniform = !backend.weights || backend.weights.every((w) => w === 1);
      const hosts = svc.hostnames;
      for (let h = 0; h < hosts.length; h++) {
        const host = hosts[h]!.toLowerCase();
        if (h > 0 && listedBefore(hosts, host, h)) continue;
        const isWildcard = host.startsWith("*.");
        const map = isWildcard ? index.wildcard : index.exact;
        const key = isWildcard ? host.slice(2) : host;
        let route = map.get(key);
        // An exact name under another (earlier) cluster's wildcard is that cluster's name:
        // refused like an identical claim, recorded under the exact name beside the wildcard route.
        const cover = route || isWildcard ? undefined : coveringWildcard(index, key, cluster);
        if (cover) {
          let claims = index.claims.get(host);
          if (!claims) index.claims.set(host, (claims = [cover]));
          const last = claims[claims.length - 1]!;
          if (last.cluster === cluster && last !== cover) route = last;
          else claims.push((route = emptyRoute(host, cluster, svc.policy)));
        } else if (!route) {
          map.set(key, (route = emptyRoute(host, cluster, svc.policy)));
        } else if (route.cluster !== cluster) {
          // Clusters come in order: this cluster's route, if any, is the last claim.
          let claims = index.claims.get(host);
          if (!claims) index.claims.set(host, (claims = [route]));
          const last = claims[claims.length - 1]!;
          if (last.cluster === cluster) route = last;
          else claims.push((route = emptyRoute(host, cluster, svc.policy)));
        }
        route.services.push({ cluster, id });
        route.backends.push(backend);
        route.size += backend.size;
        route.healthyCount += backend.healthy.length;
        route.uniformWeights &&= uniform;
        if (svc.sourceRanges) (route.sourceRanges ??= []).push(compileRanges(svc.sourceRanges));
      }
    }
  }
  return index;
}

function emptyRoute(pattern: string, cluster: string, policy: ServicePolicy): Route {
  return { pattern, cluster, services: [], policy, backends: [], size: 0, healthyCount: 0, uniformWeights: true };
}

/** The wildcard route of another cluster that already covers exact name `host`, if any. */
function coveringWildcard(index: RouteIndex, host: string, cluster: string): Route | undefined {
  const dot = host.indexOf(".");
  if (dot <= 0) return undefined;
  const w = index.wildcard.get(host.slice(dot + 1));
  return w && w.cluster !== cluster ? w : undefined;
}

/**
 * Every cluster's best route for a normalized host, in cluster-claim order:
 * for each cluster its exact route when it has one, else its wildcard route.
 * Claims on the exact name and on its wildcard both count, so a steering rule
 * sees every cluster that can serve the host (and drops those it does not list).
 */
export function hostRoutes(index: RouteIndex, h: string): Route[] {
  const out: Route[] = [];
  const add = (r: Route | undefined) => {
    if (r && !out.some((o) => o.cluster === r.cluster)) out.push(r);
  };
  const exact = index.exact.get(h);
  add(exact);
  for (const r of index.claims.get(h) ?? []) if (r.pattern === h) add(r);
  const dot = h.indexOf(".");
  if (dot > 0) {
    const suffix = h.slice(dot + 1);
    add(index.wildcard.get(suffix));
    for (const r of index.claims.get(`*.${suffix}`) ?? []) add(r);
  }
  return out;
}

/** Every cluster's route for the pattern of `route` (the owner's), in cluster order. */
export function claimsOf(index: RouteIndex, route: Route): readonly Route[] {
  return index.claims.get(route.pattern) ?? [route];
}

/** A hostname listed twice (in any case) adds the Service once. */
function listedBefore(hosts: string[], host: string, end: number): boolean {
  for (let i = 0; i < end; i++) if (hosts[i]!.toLowerCase() === host) return true;
  return false;
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
  return lookupHost(index, normalizeHost(host));
}

/** lookupRoute for a host already normalized (normalizeHost). */
export function lookupHost(index: RouteIndex, h: string): Route | undefined {
  const exact = index.exact.get(h);
  if (exact) return exact;
  const dot = h.indexOf(".");
  if (dot <= 0) return undefined;
  return index.wildcard.get(h.slice(dot + 1));
}
