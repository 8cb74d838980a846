// For externalTrafficPolicy: Local, only nodes running a ready endpoint of the
// Service receive traffic (kube-proxy drops it elsewhere). Counted from
// EndpointSlices so the edge can weight nodes like kube-proxy's
// X-Load-Balancing-Endpoint-Weight does.
import type { V1EndpointSlice } from "@kubernetes/client-node";
import { LABEL_SERVICE_NAME } from "./constants.ts";

/** `namespace/name` → node name → number of ready endpoints on it. */
export type LocalEndpointIndex = Map<string, Map<string, number>>;

export function indexLocalEndpoints(slices: readonly V1EndpointSlice[]): LocalEndpointIndex {
  // The same endpoint can appear in two slices while the controller moves it;
  // count each address once per Service.
  const seen = new Map<string, Map<string, Set<string>>>();
  for (const slice of slices) {
    if (slice.metadata?.deletionTimestamp) continue;
    const svcName = slice.metadata?.labels?.[LABEL_SERVICE_NAME];
    if (!svcName) continue;
    const id = `${slice.metadata?.namespace ?? "default"}/${svcName}`;
    let byNode = seen.get(id);
    if (!byNode) seen.set(id, (byNode = new Map()));
    for (const ep of slice.endpoints ?? []) {
      // A nil ready condition means ready (API docs); terminating endpoints are not.
      if (ep.conditions?.ready === false) continue;
      if (!ep.nodeName) continue;
      const key = ep.targetRef?.uid ?? ep.addresses?.[0];
      if (!key) continue;
      let set = byNode.get(ep.nodeName);
      if (!set) byNode.set(ep.nodeName, (set = new Set()));
      set.add(key);
    }
  }
  const index: LocalEndpointIndex = new Map();
  for (const [id, byNode] of seen) {
    const counts = new Map<string, number>();
    for (const [node, set] of byNode) if (set.size > 0) counts.set(node, set.size);
    index.set(id, counts);
  }
  return index;
}
