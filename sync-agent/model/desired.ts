// The desired snapshot as a pure function of the informer caches and the
// health table: f(nodes, services, endpointslices, health) → snapshot body.
// The controller calls it on every change; equal inputs give byte-equal output
// (everything sorted), so "nothing changed" is a string comparison.
import type { V1EndpointSlice, V1Namespace, V1Node, V1Service } from "@kubernetes/client-node";
import {
  SNAPSHOT_SCHEMA,
  type SnapshotEndpoint,
  type SnapshotInput,
  type SnapshotNode,
  type SnapshotService,
} from "../../worker/snapshot/schema.ts";
import type { GatewayCaches } from "../gateway/types.ts";
import type { GatewayEvaluation } from "../gateway/index.ts";
import { LABEL_ZONE } from "./constants.ts";
import { hasSelector, indexLocalEndpoints, servingServices } from "./endpoints.ts";
import { hostnameRefusal, namespacePatterns, type HostnamePolicy } from "./hostnames.ts";
import { DEFAULT_PROBE_ADDRESS_PREFERENCE, evaluateNode, probeAddress, type AddressFamily, type AddressType, type NodeVerdict, type ProbeAddressPreference } from "./node.ts";
import { evaluateService, serviceId, type Notice, type ServiceOptions, type ServiceSpecForEdge, type ServiceVerdict } from "./service.ts";

export interface ClusterState {
  nodes: readonly V1Node[];
  services: readonly V1Service[];
  endpointSlices: readonly V1EndpointSlice[];
  /** For admins' edgelb.dev/allowed-hostnames; absent = no namespace restricts hostnames. */
  namespaces?: readonly V1Namespace[];
  /** Gateway API caches; absent when the cluster has no Gateway API CRDs (sync-agent/gateway). */
  gateway?: GatewayCaches | undefined;
  /**
   * The EndpointSlice cache has listed once. Until then "no slice" means
   * "not known yet", never "no endpoint": absent = not synced.
   */
  endpointSlicesSynced?: boolean | undefined;
}

export interface DesiredOptions extends ServiceOptions {
  cluster: string;
  addressPreference: readonly AddressType[];
  /** Which family a dual-stack node publishes (default: its first address of the preferred type). */
  addressFamily?: AddressFamily | undefined;
  /** Where nodes are probed (node.ts ProbeAddressPreference); default InternalIP, then ExternalIP. */
  probeAddressPreference?: ProbeAddressPreference | undefined;
  /** Node addresses Cloudflare refuses (private, loopback, …) are expected (a lab): no warnings. */
  allowPrivateAddresses?: boolean | undefined;
  /** Cluster-wide patterns annotated hostnames must match (--allowed-hostnames). */
  allowedHostnames?: readonly string[] | undefined;
  /** Where the cluster is (--region, --location): the edge steers by them. */
  region?: string | undefined;
  location?: { lat: number; lon: number } | undefined;
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
  | { kind: "node"; node: string; address: string; fallbackAddress?: string }
  | { kind: "local"; node: string; address: string; port: number; fallbackAddress?: string };

export interface EligibleNode {
  name: string;
  /** Published to the edge. */
  address: string;
  /** Where the agent probes the node (its InternalIP by default), whatever is published. */
  probeAddress: string;
  zone?: string;
  /** Why the edge cannot reach the address (private, loopback, …). */
  unroutable?: string;
}

/** A served Service after hostname conflicts are settled. */
export interface ServedService extends ServiceSpecForEdge {
  /** Nodes with ready local endpoints (Local only) and their endpoint count. */
  localEndpoints?: Map<string, number>;
  /** Hostnames another (older) Service already claimed. */
  lostHostnames?: { hostname: string; to: string }[];
  /**
   * Local only: no endpoint is ready anywhere, so the serving-and-terminating
   * ones are the backends (KEP-1669), published healthy: their health checks
   * say 503 by design.
   */
  terminatingFallback?: boolean;
  /**
   * Cluster only: the Service selects pods and none is ready or serving
   * (scaled to 0), so every node refuses its NodePort: the edge answers 503.
   */
  noEndpoints?: boolean;
}

export type FinalVerdict = Exclude<ServiceVerdict, { kind: "served" }> | { kind: "served"; service: ServedService };

export interface Topology {
  nodes: EligibleNode[];
  /** Every node's verdict, for logs ("node-c excluded: labelled …"). */
  nodeVerdicts: Map<string, NodeVerdict>;
  /** Every Service's verdict keyed by namespace/name. */
  verdicts: Map<string, FinalVerdict>;
  served: ServedService[];
  /** Probe addresses (InternalIPs) two or more nodes share: those nodes are probed at their published address. */
  sharedProbeAddresses?: { address: string; nodes: string[] }[];
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
  const probePreference = opts.probeAddressPreference ?? DEFAULT_PROBE_ADDRESS_PREFERENCE;
  // Every Node's probe address, eligible or not: an excluded control plane can share a worker's InternalIP.
  const probedBy = new Map<string, string[]>();
  for (const node of state.nodes) {
    const name = node.metadata?.name;
    if (!name) continue;
    const verdict = evaluateNode(node, opts.addressPreference, { family: opts.addressFamily });
    nodeVerdicts.set(name, verdict);
    const probe = probeAddress(node, verdict.eligible ? verdict.address : "", probePreference, opts.addressFamily);
    if (probe) probedBy.set(probe, [...(probedBy.get(probe) ?? []), name]);
    if (!verdict.eligible) continue;
    const zone = node.metadata?.labels?.[LABEL_ZONE];
    const unroutable = opts.allowPrivateAddresses ? undefined : verdict.unroutable;
    nodes.push({ name, address: verdict.address, probeAddress: probe, ...(zone ? { zone } : {}), ...(unroutable ? { unroutable } : {}) });
  }
  nodes.sort((a, b) => (a.name < b.name ? -1 : 1));
  const sharedProbeAddresses = unshareProbeAddresses(nodes, probedBy);
  const byName = new Map(nodes.map((n) => [n.name, n]));
  // One notice shared by every Cluster Service (memory O(nodes + services)).
  const clusterAddressNotice = unroutableNotice(nodes);

  const policy: HostnamePolicy = {
    defaultDomain: opts.defaultDomain,
    allowed: opts.allowedHostnames,
    byNamespace: namespacePatterns(state.namespaces ?? []),
  };
  const localIndex = indexLocalEndpoints(state.endpointSlices);
  // Only a synced cache can say "no endpoint"; before that, today's every-node backend.
  const serving = state.endpointSlicesSynced ? servingServices(state.endpointSlices) : undefined;
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
    const notices: Notice[] = [...(spec.notices ?? [])];
    const refused: string[] = [];
    const lost: { hostname: string; to: string }[] = [];
    const hostnames = spec.hostnames.filter((h) => {
      // Refused names are never claimed: an intruder cannot block their owner by coming first.
      const why = hostnameRefusal(h, spec.namespace, spec.annotatedHostnames === true, policy);
      if (why) {
        refused.push(why);
        return false;
      }
      const owner = claimed.get(h);
      if (owner && owner !== id) lost.push({ hostname: h, to: owner });
      return !owner;
    });
    for (const why of refused) notices.push({ type: "Warning", reason: "HostnameRefused", message: `hostname refused: ${why}` });
    if (hostnames.length === 0) {
      const owners = [...new Set(lost.map((l) => l.to))].join(", ");
      const reasons = [...refused, ...(owners ? [`already served by ${owners}`] : [])];
      verdicts.set(id, { kind: "skipped", reason: `no hostname left to serve: ${reasons.join("; ")}` });
      continue;
    }
    for (const h of hostnames) claimed.set(h, id);
    const { notices: _n, annotatedHostnames: _a, ...rest } = spec;
    const entry: ServedService = { ...rest, hostnames };
    if (lost.length > 0) entry.lostHostnames = lost;
    if (hostnames.every((h) => h.startsWith("*."))) {
      notices.push({
        type: "Normal",
        reason: "WildcardHostnameOnly",
        message: `served at ${hostnames.join(", ")} only; status.loadBalancer cannot hold a wildcard, so EXTERNAL-IP stays <pending>`,
      });
    }
    if (spec.trafficPolicy === "Local") {
      const local = localIndex.get(id);
      const pick = (m: Map<string, number> | undefined) => {
        const counts = new Map<string, number>();
        for (const [node, n] of m ?? []) if (byName.has(node)) counts.set(node, n);
        return counts;
      };
      let counts = pick(local?.ready);
      if (counts.size === 0) {
        // KEP-1669: kube-proxy sends traffic to serving, terminating endpoints when none is ready.
        const terminating = pick(local?.terminating);
        if (terminating.size > 0) {
          counts = terminating;
          entry.terminatingFallback = true;
        }
      }
      entry.localEndpoints = counts;
      const n = unroutableNotice([...counts.keys()].map((name) => byName.get(name)!));
      if (n) notices.push(n);
    } else {
      if (clusterAddressNotice) notices.push(clusterAddressNotice);
      if (serving && hasSelector(svc) && !serving.has(id)) entry.noEndpoints = true;
    }
    if (notices.length > 0) entry.notices = notices;
    verdicts.set(id, { kind: "served", service: entry });
    served.push(entry);
  }
  served.sort((a, b) => (`${a.namespace}/${a.name}` < `${b.namespace}/${b.name}` ? -1 : 1));
  return { nodes, nodeVerdicts, verdicts, served, ...(sharedProbeAddresses.length > 0 ? { sharedProbeAddresses } : {}) };
}

/**
 * Nodes joined over public addresses (k3s --node-external-ip, several clouds) can have site-local
 * InternalIPs, the same one on two sites: probed there, the agent would check whatever answers that
 * address on its own site. A probe address two Nodes share (eligible or not: an excluded control plane
 * too) is used for no eligible one of them: they are probed at their published address. Returns the
 * shared addresses (for a warning), in place.
 */
function unshareProbeAddresses(nodes: EligibleNode[], probedBy: Map<string, string[]>): { address: string; nodes: string[] }[] {
  const shared = new Map<string, string[]>();
  for (const n of nodes) {
    const sharing = probedBy.get(n.probeAddress) ?? [];
    if (sharing.length < 2) continue;
    shared.set(n.probeAddress, [...sharing].sort());
    n.probeAddress = n.address;
  }
  return [...shared].map(([address, names]) => ({ address, nodes: names }));
}

/** The Warning for a Service served through nodes the edge cannot reach; undefined when there are none. */
function unroutableNotice(nodes: readonly EligibleNode[]): Notice | undefined {
  const bad = nodes.filter((n) => n.unroutable);
  if (bad.length === 0) return undefined;
  const shown = bad.slice(0, 5).map((n) => `${n.name} (${n.address}: ${n.unroutable})`);
  const more = bad.length > 5 ? ` and ${bad.length - 5} more` : "";
  return {
    type: "Warning",
    reason: "UnroutableNodeAddress",
    message:
      `served through node addresses Cloudflare refuses to connect to: ${shown.join(", ")}${more}. ` +
      `Publish a public address (an ExternalIP, or the edgelb.dev/address Node annotation), or run the agent with --allow-private-addresses in a lab`,
  };
}

/** Every probe the health table should run for this topology, deduplicated. */
export function healthTargets(topo: Topology): HealthTarget[] {
  // Probed at the InternalIP; when nothing answers there, at the published address (health/table.ts).
  const at = (n: EligibleNode) => ({ address: n.probeAddress, ...(n.probeAddress !== n.address ? { fallbackAddress: n.address } : {}) });
  const targets: HealthTarget[] = topo.nodes.map((n) => ({ kind: "node", node: n.name, ...at(n) }));
  const byName = new Map(topo.nodes.map((n) => [n.name, n]));
  const seen = new Set<string>();
  for (const svc of topo.served) {
    // Terminating-only nodes answer 503 by design: nothing to learn from probing them.
    if (svc.trafficPolicy !== "Local" || !svc.healthCheckNodePort || svc.terminatingFallback) continue;
    for (const node of svc.localEndpoints?.keys() ?? []) {
      const key = `${node}:${svc.healthCheckNodePort}`;
      if (seen.has(key)) continue;
      seen.add(key);
      targets.push({ kind: "local", node, ...at(byName.get(node)!), port: svc.healthCheckNodePort });
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
  /** Gateway API resolution (statuses to write), when the cluster has the CRDs. */
  gateway?: GatewayEvaluation;
}

export function buildSnapshot(
  topo: Topology,
  health: HealthView,
  cluster: string,
  place: Pick<DesiredOptions, "region" | "location"> = {},
): Desired {
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
      ...(s.sourceRanges ? { sourceRanges: s.sourceRanges } : {}),
    };
    if (s.trafficPolicy === "Local") {
      let unknown = 0;
      let endpoints: SnapshotEndpoint[] = [...(s.localEndpoints ?? [])]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([node, weight]) => {
          let healthy: boolean;
          if (s.terminatingFallback) {
            // Fail open among exactly these nodes (what a cloud LB does when every check fails).
            healthy = true;
          } else if (s.healthCheckNodePort) {
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
    } else if (s.noEndpoints) {
      // Cluster: an empty list means no endpoint anywhere (schema.ts); absent means every node.
      out.endpoints = [];
    }
    return out;
  });
  return {
    body: {
      schema: SNAPSHOT_SCHEMA,
      cluster,
      ...(place.region ? { region: place.region } : {}),
      ...(place.location ? { location: { lat: place.location.lat, lon: place.location.lon } } : {}),
      // Said in the snapshot so that the edge can prefer another cluster (multi-cluster steering).
      ...(failOpen ? { failOpen: true } : {}),
      nodes,
      services,
    },
    failOpen,
    failOpenServices,
    pending: [...new Set(pending)],
  };
}
