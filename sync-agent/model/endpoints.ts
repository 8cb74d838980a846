// For externalTrafficPolicy: Local, only nodes running an endpoint of the
// Service receive traffic (kube-proxy drops it elsewhere). Counted from
// EndpointSlices so the edge can weight nodes like kube-proxy's
// X-Load-Balancing-Endpoint-Weight does.
import type { V1Endpoint, V1EndpointSlice, V1Service } from "@kubernetes/client-node";
import { LABEL_SERVICE_NAME } from "./constants.ts";

/** node name → number of endpoints on it. */
export type NodeCounts = Map<string, number>;

export interface LocalEndpoints {
  /** Ready endpoints per node. */
  ready: NodeCounts;
  /** Serving but terminating endpoints per node (KEP-1669): the fallback when nothing is ready. */
  terminating: NodeCounts;
}

/** `namespace/name` → its endpoints per node. */
export type LocalEndpointIndex = Map<string, LocalEndpoints>;

function isReady(ep: V1Endpoint): boolean {
  // A nil ready condition means ready (API docs); terminating endpoints never are.
  return ep.conditions?.ready !== false && ep.conditions?.terminating !== true;
}

function isServingTerminating(ep: V1Endpoint): boolean {
  const c = ep.conditions;
  if (c?.terminating !== true) return false;
  // A nil serving condition defers to ready (API docs).
  return c.serving ?? c.ready ?? false;
}

export function indexLocalEndpoints(slices: readonly V1EndpointSlice[]): LocalEndpointIndex {
  // The same endpoint can appear in two slices while the controller moves it;
  // count each address once per Service.
  const seen = new Map<string, { ready: Map<string, Set<string>>; terminating: Map<string, Set<string>> }>();
  for (const slice of slices) {
    if (slice.metadata?.deletionTimestamp) continue;
    const svcName = slice.metadata?.labels?.[LABEL_SERVICE_NAME];
    if (!svcName) continue;
    const id = `${slice.metadata?.namespace ?? "default"}/${svcName}`;
    let byNode = seen.get(id);
    if (!byNode) seen.set(id, (byNode = { ready: new Map(), terminating: new Map() }));
    for (const ep of slice.endpoints ?? []) {
      const which = isReady(ep) ? byNode.ready : isServingTerminating(ep) ? byNode.terminating : undefined;
      if (!which || !ep.nodeName) continue;
      const key = ep.targetRef?.uid ?? ep.addresses?.[0];
      if (!key) continue;
      let set = which.get(ep.nodeName);
      if (!set) which.set(ep.nodeName, (set = new Set()));
      set.add(key);
    }
  }
  const count = (m: Map<string, Set<string>>): NodeCounts => {
    const out: NodeCounts = new Map();
    for (const [node, set] of m) if (set.size > 0) out.set(node, set.size);
    return out;
  };
  const index: LocalEndpointIndex = new Map();
  for (const [id, byNode] of seen) index.set(id, { ready: count(byNode.ready), terminating: count(byNode.terminating) });
  return index;
}

/**
 * Does kube-proxy have anywhere to send a Cluster-policy Service's traffic?
 * Any ready endpoint on any node, else any serving-and-terminating one (the
 * KEP-1669 fallback). With neither, every node refuses the NodePort.
 */
function endpointServes(ep: V1Endpoint): boolean {
  if ((ep.addresses?.length ?? 0) === 0) return false;
  return isReady(ep) || isServingTerminating(ep);
}

/** A live slice with at least one endpoint kube-proxy would send to. */
export function sliceServes(slice: V1EndpointSlice): boolean {
  return !slice.metadata?.deletionTimestamp && (slice.endpoints ?? []).some(endpointServes);
}

/** `namespace/name` of every Service with at least one endpoint kube-proxy would send to. */
export function servingServices(slices: readonly V1EndpointSlice[]): Set<string> {
  const out = new Set<string>();
  for (const slice of slices) {
    const svcName = slice.metadata?.labels?.[LABEL_SERVICE_NAME];
    if (svcName && sliceServes(slice)) out.add(`${slice.metadata?.namespace ?? "default"}/${svcName}`);
  }
  return out;
}

/**
 * A Service whose endpoints the EndpointSlice controller manages. Without a
 * selector, whoever manages its endpoints may do so by other means (slices
 * without our label, a proxy outside the cluster): "no slice" then proves nothing.
 */
export function hasSelector(svc: V1Service): boolean {
  return Object.keys(svc.spec?.selector ?? {}).length > 0;
}
