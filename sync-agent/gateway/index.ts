// Gateway API support in the agent: CRD-gated caches (informers.ts), the pure
// resolution (resolve.ts) and the status writer (status.ts). `gatewayForSnapshot`
// is the controller's one call: caches + topology + health → resolution, with
// Local backends on the same node model as LoadBalancer Services.
import { MAX_REFUSED_ROUTES, type GatewayRefusedRoute } from "../../worker/snapshot/gateway.ts";
import type { SnapshotEndpoint } from "../../worker/snapshot/schema.ts";
import type { ClusterState, HealthTarget, HealthView, Topology } from "../model/desired.ts";
import type { V1Service } from "@kubernetes/client-node";
import { hasSelector, indexLocalEndpoints, servingServices } from "../model/endpoints.ts";
import { resolveGateway, type GatewayResolution } from "./resolve.ts";
import type { GatewayCaches } from "./types.ts";

export { GatewayInformers } from "./informers.ts";
export { GatewayStatusWriter, planGatewayStatus } from "./status.ts";
export { resolveGateway, type GatewayResolution } from "./resolve.ts";
export { CONTROLLER_NAME, type GatewayCaches } from "./types.ts";

export interface GatewayEvaluation {
  resolution: GatewayResolution;
  caches: GatewayCaches;
  /** Health probes for Local backends' healthCheckNodePorts. */
  targets: HealthTarget[];
}

export function gatewayForSnapshot(
  state: ClusterState & { gateway: GatewayCaches },
  topo: Topology,
  health: HealthView,
  hostnamePolicy?: { defaultDomain?: string | undefined; allowed?: readonly string[] | undefined },
): GatewayEvaluation {
  const eligible = new Map(topo.nodes.map((n) => [n.name, n]));
  let index: ReturnType<typeof indexLocalEndpoints> | undefined;
  const targets: HealthTarget[] = [];
  const endpointsFor = (namespace: string, name: string, hc: number | undefined): SnapshotEndpoint[] => {
    index ??= indexLocalEndpoints(state.endpointSlices);
    const local = index.get(`${namespace}/${name}`);
    const pick = (m: Map<string, number> | undefined) => [...(m ?? [])].filter(([node]) => eligible.has(node)).sort(([a], [b]) => (a < b ? -1 : 1));
    let nodes = pick(local?.ready);
    // KEP-1669, as for LoadBalancer Services: serving-and-terminating endpoints when none is ready, published healthy.
    const terminating = nodes.length === 0;
    if (terminating) nodes = pick(local?.terminating);
    let endpoints = nodes.map(([node, weight]) => {
      if (terminating) return { node, weight, healthy: true };
      if (hc) targets.push({ kind: "local", node, address: eligible.get(node)!.probeAddress, port: hc });
      const h = hc ? health.local(node, hc) : health.node(node);
      return { node, weight, healthy: h === true };
    });
    // Fail open among exactly these nodes when every check fails (a broken check must not be an outage).
    if (endpoints.length > 0 && endpoints.every((e) => !e.healthy)) endpoints = endpoints.map((e) => ({ ...e, healthy: true }));
    return endpoints;
  };
  // The edge serves a LoadBalancer Service's own hostname before any route: a route there is never served.
  const serviceHostnames = new Map<string, string>();
  for (const s of topo.served) for (const h of s.hostnames) if (!serviceHostnames.has(h)) serviceHostnames.set(h, `${s.namespace}/${s.name}`);
  // As for LoadBalancer Services (model/desired.ts): only a synced slice cache says "no endpoint".
  let serving: Set<string> | undefined;
  const noEndpoint = (svc: V1Service): boolean => {
    if (!state.endpointSlicesSynced || !hasSelector(svc)) return false;
    serving ??= servingServices(state.endpointSlices);
    return !serving.has(`${svc.metadata?.namespace ?? "default"}/${svc.metadata?.name ?? ""}`);
  };
  const resolution = resolveGateway({ ...state.gateway, services: state.services, namespaces: state.namespaces ?? [], endpointsFor, noEndpoint, serviceHostnames, ...(hostnamePolicy ? { hostnamePolicy } : {}) });
  const refused = refusedRoutes(resolution);
  if (refused.length > 0) resolution.section = { ...resolution.section, refused };
  return { resolution, caches: state.gateway, targets };
}

/** Route × parent that our status refuses (Accepted: False), for the worker's status page: sorted, bounded. */
export function refusedRoutes(resolution: GatewayResolution): GatewayRefusedRoute[] {
  const out: GatewayRefusedRoute[] = [];
  for (const [id, parents] of [...resolution.routes].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const slash = id.indexOf("/");
    for (const p of parents) {
      const accepted = p?.conditions.find((c) => c.type === "Accepted");
      if (!accepted || accepted.status !== "False") continue;
      const ref = p.parentRef;
      out.push({
        namespace: id.slice(0, slash),
        name: id.slice(slash + 1),
        gateway: `${typeof ref.namespace === "string" ? ref.namespace : id.slice(0, slash)}/${String(ref.name)}`.slice(0, 507),
        reason: `${accepted.reason}: ${accepted.message}`.slice(0, 1024),
      });
      if (out.length >= MAX_REFUSED_ROUTES) return out;
    }
  }
  return out;
}
