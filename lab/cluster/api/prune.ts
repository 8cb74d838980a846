// Unknown-field pruning, as decoding into Go structs does on a real server: a
// misspelled field is dropped (fieldValidation=Warn, the default, adds a
// Warning header; Strict refuses the request), so a client writing
// `hostName` instead of `hostname` sees the bug here too. Schemas cover the
// fields clients of this project write; `true` marks a subtree kept as is.
import type { Obj } from "./selectors.ts";

export type Schema = true | { [field: string]: Schema } | [Schema];

const META: Schema = {
  name: true,
  generateName: true,
  namespace: true,
  selfLink: true,
  uid: true,
  resourceVersion: true,
  generation: true,
  creationTimestamp: true,
  deletionTimestamp: true,
  deletionGracePeriodSeconds: true,
  labels: true,
  annotations: true,
  ownerReferences: true,
  finalizers: true,
  managedFields: true,
};

/** A kind's known fields: apiVersion, kind and metadata besides its own. */
export const kindPruneSchema = (own: Schema): Schema => (own === true || Array.isArray(own) ? own : top(own));

const top = (rest: { [field: string]: Schema }): Schema => ({ apiVersion: true, kind: true, metadata: META, ...rest });

const CONDITION: Schema = { type: true, status: true, observedGeneration: true, lastTransitionTime: true, reason: true, message: true };
const MICRO_SERIES: Schema = { count: true, lastObservedTime: true };

// Kinds with a field description (openapi/kinds.ts: Service, Pod, apps/v1) take
// their known fields from it instead.
export const SCHEMAS: Record<string, Schema> = {
  Node: top({
    spec: { podCIDR: true, podCIDRs: true, providerID: true, unschedulable: true, taints: [{ key: true, value: true, effect: true, timeAdded: true }], configSource: true, externalID: true },
    status: true,
  }),
  Event: top({
    involvedObject: true,
    reason: true,
    message: true,
    source: { component: true, host: true },
    firstTimestamp: true,
    lastTimestamp: true,
    count: true,
    type: true,
    eventTime: true,
    series: MICRO_SERIES,
    action: true,
    related: true,
    reportingComponent: true,
    reportingInstance: true,
  }),
  "events.k8s.io/Event": top({
    eventTime: true,
    series: MICRO_SERIES,
    reportingController: true,
    reportingInstance: true,
    action: true,
    reason: true,
    regarding: true,
    related: true,
    note: true,
    type: true,
    deprecatedSource: true,
    deprecatedFirstTimestamp: true,
    deprecatedLastTimestamp: true,
    deprecatedCount: true,
  }),
  Lease: top({
    spec: { holderIdentity: true, leaseDurationSeconds: true, acquireTime: true, renewTime: true, leaseTransitions: true, strategy: true, preferredHolder: true },
  }),
  EndpointSlice: top({
    addressType: true,
    endpoints: [
      {
        addresses: true,
        conditions: { ready: true, serving: true, terminating: true },
        hostname: true,
        targetRef: true,
        nodeName: true,
        zone: true,
        hints: true,
        deprecatedTopology: true,
      },
    ],
    ports: [{ name: true, protocol: true, port: true, appProtocol: true }],
  }),
  Namespace: top({ spec: true, status: true }),
  Endpoints: top({ subsets: true }),
};

/** Removes fields the schema does not know; returns their paths (kubectl's wording). */
export function prune(obj: Obj, schema: Schema): string[] {
  const unknown: string[] = [];
  const walk = (v: unknown, s: Schema, path: string): void => {
    if (s === true || v === null || typeof v !== "object") return;
    if (Array.isArray(s)) {
      if (Array.isArray(v)) v.forEach((item, i) => walk(item, s[0], `${path}[${i}]`));
      return;
    }
    if (Array.isArray(v)) return;
    const o = v as Obj;
    for (const k of Object.keys(o)) {
      const child = s[k];
      const p = path ? `${path}.${k}` : k;
      if (child === undefined) {
        unknown.push(p);
        delete o[k];
      } else walk(o[k], child, p);
    }
  };
  walk(obj, schema, "");
  return unknown;
}
