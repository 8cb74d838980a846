// Gateway API support in the agent: CRD-gated caches (informers.ts), the pure
// resolution (resolve.ts) and the status writer (status.ts). `gatewayForSnapshot`
// is the controller's one call: caches + topology + health → resolution, with
// Local backends on the same node model as LoadBalancer Services.
import { MAX_REFUSED_ROUTES, type GatewayRefusedRoute } from "../../worker/snapshot/gateway.ts";
import type { SnapshotEndpoint } from "../../worker/snapshot/schema.ts";
import type { ClusterState, HealthTarget, HealthView, Topology } from "../model/desired.ts";
import type { V1Service } from "@kubernetes/client-node";
import { hasSelector, indexLocalEndpoints, servingServices } from "../model/endpoints.ts";
import { holdOne, type HeldBackends, type NoEndpointMemo } from "../model/no-endpoint-hold.ts";
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
  /** When a backend's no-endpoint hold ends (evaluate again then), or undefined. */
  holdUntil?: number;
  /** Local backend Services (namespace/name) whose every endpoint node failed its check, published anyway. */
  failOpenBackends: string[];
}

/**
 * The no-endpoint hold of LoadBalancer Services (model/no-endpoint-hold.ts), for Gateway backends:
 * its own memo (per backend Service), the evaluation's time and the base hold.
 */
export interface BackendHold {
  memo: NoEndpointMemo;
  now: number;
  holdMs: number;
}

export function gatewayForSnapshot(
  state: ClusterState & { gateway: GatewayCaches },
  topo: Topology,
  health: HealthView,
  hostnamePolicy?: { defaultDomain?: string | undefined; allowed?: readonly string[] | undefined },
  hold?: BackendHold,
): GatewayEvaluation {
  const eligible = new Map(topo.nodes.map((n) => [n.name, n]));
  let index: ReturnType<typeof indexLocalEndpoints> | undefined;
  const targets: HealthTarget[] = [];
  const failOpenBackends = new Set<string>();
  // Each backend Service once per evaluation: its nodes (Local) or whether it has no endpoint
  // (Cluster), after the hold. A backendRef per port of one Service shares it.
  const held = new Map<string, HeldBackends>();
  let holdUntil: number | undefined;
  const backendsOf = (namespace: string, name: string, raw: () => Omit<HeldBackends, "namespace" | "name">): HeldBackends => {
    const id = `${namespace}/${name}`;
    let b = held.get(id);
    if (!b) {
      b = { namespace, name, ...raw() };
      if (hold) {
        const until = holdOne(b, hold.memo, hold.now, hold.holdMs);
        if (until !== undefined) holdUntil = Math.min(holdUntil ?? Infinity, until);
      }
      held.set(id, b);
    }
    return b;
  };
  const endpointsFor = (namespace: string, name: string, hc: number | undefined): SnapshotEndpoint[] => {
    const b = backendsOf(namespace, name, () => {
      index ??= indexLocalEndpoints(state.endpointSlices);
      const local = index.get(`${namespace}/${name}`);
      const pick = (m: Map<string, number> | undefined) => new Map([...(m ?? [])].filter(([node]) => eligible.has(node)));
      const ready = pick(local?.ready);
      // KEP-1669, as for LoadBalancer Services: serving-and-terminating endpoints when none is ready, published healthy.
      if (ready.size > 0) return { trafficPolicy: "Local", localEndpoints: ready };
      const terminating = pick(local?.terminating);
      return { trafficPolicy: "Local", localEndpoints: terminating, ...(terminating.size > 0 ? { terminatingFallback: true } : {}) };
    });
    // A node held from before the loss may have left the cluster since.
    const nodes = [...(b.localEndpoints ?? [])].filter(([node]) => eligible.has(node)).sort(([a], [c]) => (a < c ? -1 : 1));
    let unknown = 0;
    let endpoints = nodes.map(([node, weight]) => {
      if (b.terminatingFallback) return { node, weight, healthy: true };
      if (hc) {
        const n = eligible.get(node)!;
        targets.push({ kind: "local", node, address: n.probeAddress, ...(n.probeAddress !== n.address ? { fallbackAddress: n.address } : {}), port: hc });
      }
      const h = hc ? health.local(node, hc) : health.node(node);
      if (h === undefined) unknown++;
      return { node, weight, healthy: h === true };
    });
    // Fail open among exactly these nodes when every check fails (a broken check must not be an outage);
    // said (logs, edgelb_fail_open) once every check has an answer, as for LoadBalancer Services.
    if (endpoints.length > 0 && endpoints.every((e) => !e.healthy)) {
      if (unknown === 0) failOpenBackends.add(`${namespace}/${name}`);
      endpoints = endpoints.map((e) => ({ ...e, healthy: true }));
    }
    return endpoints;
  };
  // The edge serves a LoadBalancer Service's own hostname before any route: a route there is never served.
  const serviceHostnames = new Map<string, string>();
  for (const s of topo.served) for (const h of s.hostnames) if (!serviceHostnames.has(h)) serviceHostnames.set(h, `${s.namespace}/${s.name}`);
  // As for LoadBalancer Services (model/desired.ts): only a synced slice cache says "no endpoint".
  let serving: Set<string> | undefined;
  const noEndpoint = (svc: V1Service): boolean => {
    const namespace = svc.metadata?.namespace ?? "default";
    const name = svc.metadata?.name ?? "";
    const b = backendsOf(namespace, name, () => {
      if (!state.endpointSlicesSynced || !hasSelector(svc)) return { trafficPolicy: "Cluster" };
      serving ??= servingServices(state.endpointSlices);
      return { trafficPolicy: "Cluster", ...(serving.has(`${namespace}/${name}`) ? {} : { noEndpoints: true }) };
    });
    return b.noEndpoints === true;
  };
  const resolution = resolveGateway({ ...state.gateway, services: state.services, namespaces: state.namespaces ?? [], endpointsFor, noEndpoint, serviceHostnames, ...(hostnamePolicy ? { hostnamePolicy } : {}) });
  // Backends no route references any more are forgotten (a later loss of theirs starts afresh).
  if (hold) for (const id of hold.memo.keys()) if (!held.has(id)) hold.memo.delete(id);
  const refused = refusedRoutes(resolution);
  if (refused.length > 0) resolution.section = { ...resolution.section, refused };
  return { resolution, caches: state.gateway, targets, failOpenBackends: [...failOpenBackends].sort(), ...(holdUntil !== undefined ? { holdUntil } : {}) };
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
