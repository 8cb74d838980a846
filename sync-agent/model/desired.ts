// The desired snapshot as a pure function of the informer caches and the
// health table: f(nodes, services, endpointslices, health) → snapshot body.
// The controller calls it on every change; equal inputs give byte-equal output
// (everything sorted), so "nothing changed" is a string comparison.
import type { V1EndpointSlice, V1Node, V1Service } from "@kubernetes/client-node";
import {
  SNAPSHOT_SCHEMA,
  type SnapshotEndpoint,
  type SnapshotInput,
  type SnapshotNode,
  type SnapshotService,
} from "../../worker/snapshot/schema.ts";
import { LABEL_ZONE } from "./constants.ts";
import { indexLocalEndpoints } from "./endpoints.ts";
import { evaluateNode, type AddressType, type NodeVerdict } from "./node.ts";
import { evaluateService, serviceId, type ServiceOptions, type ServiceSpecForEdge, type ServiceVerdict } from "./service.ts";

export interface ClusterState {
  nodes: readonly V1Node[];
  services: readonly V1Service[];
  endpointSlices: readonly V1EndpointSlice[];
}

export interface DesiredOptions extends ServiceOptions {
  cluster: string;
  addressPreference: readonly AddressType[];
}

/** Probe results; undefined = not probed yet. */
export interface HealthView {
  /** kube-proxy /healthz (or TCP connect) on the node. */
  node(name: string): boolean | undefined;
  /** The Service's healthCheckNodePort on that node (Local services). */
  local(node: string, healthCheckNodePort: number): boolean | undefined;
}

/** What the agent must probe: derived from the same caches, before health is known. */
export type HealthTarget =
  | { kind: "node"; node: string; address: string }
  | { kind: "local"; node: string; address: string; port: number };

export interface EligibleNode {
  name: string;
  address: string;
  zone?: string;
}

/** A served Service after hostname conflicts are settled. */
export interface ServedService extends ServiceSpecForEdge {
  /** Nodes with ready local endpoints (Local only) and their endpoint count. */
  localEndpoints?: Map<string, number>;
  /** Hostnames another (older) Service already claimed. */
  lostHostnames?: { hostname: string; to: string }[];
}

export type FinalVerdict = Exclude<ServiceVerdict, { kind: "served" }> | { kind: "served"; service: ServedService };

export interface Topology {
  nodes: EligibleNode[];
  /** Every node's verdict, for logs ("node-c excluded: labelled …"). */
  nodeVerdicts: Map<string, NodeVerdict>;
  /** Every Service's verdict keyed by namespace/name. */
  verdicts: Map<string, FinalVerdict>;
  served: ServedService[];
}

function byCreation(a: V1Service, b: V1Service): number {
  const ta = a.metadata?.creationTimestamp ? new Date(a.metadata.creationTimestamp).getTime() : 0;
  const tb = b.metadata?.creationTimestamp ? new Date(b.metadata.creationTimestamp).getTime() : 0;
  if (ta !== tb) return ta - tb;
  return serviceId(a) < serviceId(b) ? -1 : serviceId(a) > serviceId(b) ? 1 : 0;
}

/** Eligible nodes, Service verdicts and Local endpoints: everything but health. */
export function computeTopology(state: ClusterState, opts: DesiredOptions): Topology {
  const nodeVerdicts = new Map<string, NodeVerdict>();
  const nodes: EligibleNode[] = [];
  for (const node of state.nodes) {
    const name = node.metadata?.name;
    if (!name) continue;
    const verdict = evaluateNode(node, opts.addressPreference);
    nodeVerdicts.set(name, verdict);
    if (!verdict.eligible) continue;
    const zone = node.metadata?.labels?.[LABEL_ZONE];
    nodes.push({ name, address: verdict.address, ...(zone ? { zone } : {}) });
  }
  nodes.sort((a, b) => (a.name < b.name ? -1 : 1));
  const eligible = new Set(nodes.map((n) => n.name));

  const localIndex = indexLocalEndpoints(state.endpointSlices);
  const verdicts = new Map<string, FinalVerdict>();
  const served: ServedService[] = [];
  // Oldest Service keeps a contested hostname, like Ingress controllers do.
  const claimed = new Map<string, string>();
  for (const svc of [...state.services].sort(byCreation)) {
    const id = serviceId(svc);
    const verdict = evaluateService(svc, opts);
    if (verdict.kind !== "served") {
      verdicts.set(id, verdict);
      continue;
    }
    const spec = verdict.spec;
    const lost: { hostname: string; to: string }[] = [];
    const hostnames = spec.hostnames.filter((h) => {
      const owner = claimed.get(h);
      if (owner && owner !== id) lost.push({ hostname: h, to: owner });
      return !owner;
    });
    if (hostnames.length === 0) {
      const owners = [...new Set(lost.map((l) => l.to))].join(", ");
      verdicts.set(id, { kind: "skipped", reason: `every hostname is already served by ${owners}` });
      continue;
    }
    for (const h of hostnames) claimed.set(h, id);
    const entry: ServedService = { ...spec, hostnames };
    if (lost.length > 0) entry.lostHostnames = lost;
    if (spec.trafficPolicy === "Local") {
      const counts = new Map<string, number>();
      for (const [node, n] of localIndex.get(id) ?? []) if (eligible.has(node)) counts.set(node, n);
      entry.localEndpoints = counts;
    }
    verdicts.set(id, { kind: "served", service: entry });
    served.push(entry);
  }
  served.sort((a, b) => (`${a.namespace}/${a.name}` < `${b.namespace}/${b.name}` ? -1 : 1));
  return { nodes, nodeVerdicts, verdicts, served };
}

/** Every probe the health table should run for this topology, deduplicated. */
export function healthTargets(topo: Topology): HealthTarget[] {
  const targets: HealthTarget[] = topo.nodes.map((n) => ({ kind: "node", node: n.name, address: n.address }));
  const address = new Map(topo.nodes.map((n) => [n.name, n.address]));
  const seen = new Set<string>();
  for (const svc of topo.served) {
    if (svc.trafficPolicy !== "Local" || !svc.healthCheckNodePort) continue;
    for (const node of svc.localEndpoints?.keys() ?? []) {
      const key = `${node}:${svc.healthCheckNodePort}`;
      if (seen.has(key)) continue;
      seen.add(key);
      targets.push({ kind: "local", node, address: address.get(node)!, port: svc.healthCheckNodePort });
    }
  }
  return targets;
}

/** The snapshot without generation and publishedAt (the controller adds those). */
export type SnapshotBody = Omit<SnapshotInput, "generation" | "publishedAt"> & {
  nodes: SnapshotNode[];
  services: SnapshotService[];
};

export interface Desired {
  body: SnapshotBody;
  /** Every eligible node failed its checks, so all are published as healthy. */
  failOpen: boolean;
  /** Local services whose every endpoint failed and were published anyway. */
  failOpenServices: string[];
  /** Health targets not probed yet; the controller holds the first push for them. */
  pending: string[];
}

export function buildSnapshot(topo: Topology, health: HealthView, cluster: string): Desired {
  const pending: string[] = [];
  const nodeHealth = (name: string): boolean => {
    const h = health.node(name);
    if (h === undefined) pending.push(name);
    return h === true;
  };
  const pendingNodes = () => pending.length;
  let nodes: SnapshotNode[] = topo.nodes.map((n) => ({
    name: n.name,
    address: n.address,
    healthy: nodeHealth(n.name),
    ...(n.zone ? { zone: n.zone } : {}),
  }));
  // Like cloud load balancers: when every backend fails, send traffic to all
  // of them rather than to none (a broken health check must not be an outage).
  // Not yet probed counts as down, but only a verdict on every node is a
  // real (and loudly logged) fail-open.
  const allDown = nodes.length > 0 && nodes.every((n) => !n.healthy);
  const failOpen = allDown && pendingNodes() === 0;
  if (allDown) nodes = nodes.map((n) => ({ ...n, healthy: true }));
  const healthyNode = new Map(nodes.map((n) => [n.name, n.healthy]));

  const failOpenServices: string[] = [];
  const services: SnapshotService[] = topo.served.map((s) => {
    const out: SnapshotService = {
      namespace: s.namespace,
      name: s.name,
      hostnames: s.hostnames,
      nodePort: s.port.nodePort,
      scheme: s.scheme,
      trafficPolicy: s.trafficPolicy,
      policy: {
        ...(s.algorithm ? { algorithm: s.algorithm } : {}),
        ...(s.affinity ? { affinity: s.affinity } : {}),
        ...(s.retryNonIdempotent ? { retryNonIdempotent: true } : {}),
        ...(s.responseTimeoutMs ? { responseTimeoutMs: s.responseTimeoutMs } : {}),
      } as SnapshotService["policy"],
    };
    if (s.trafficPolicy === "Local") {
      let unknown = 0;
      let endpoints: SnapshotEndpoint[] = [...(s.localEndpoints ?? [])]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([node, weight]) => {
          let healthy: boolean;
          if (s.healthCheckNodePort) {
            const h = health.local(node, s.healthCheckNodePort);
            if (h === undefined) {
              pending.push(`${node}:${s.healthCheckNodePort}`);
              unknown++;
            }
            healthy = h === true;
          } else {
            healthy = healthyNode.get(node) === true;
          }
          return { node, weight, healthy };
        });
      if (endpoints.length > 0 && endpoints.every((e) => !e.healthy)) {
        if (unknown === 0) failOpenServices.push(`${s.namespace}/${s.name}`);
        endpoints = endpoints.map((e) => ({ ...e, healthy: true }));
      }
      out.endpoints = endpoints;
    }
    return out;
  });
  return {
    body: { schema: SNAPSHOT_SCHEMA, cluster, nodes, services },
    failOpen,
    failOpenServices,
    pending: [...new Set(pending)],
  };
}
