// Strip on ingest: the informer caches hold only the fields the agent reads.
// A real Node is 10–30 KB (managedFields, ~30 status.images, conditions,
// capacity, nodeInfo); what the agent reads of it is ~0.3 KB. Every object
// from a LIST page or a watch event goes through `strip` before it is cached,
// so 5,000 Nodes cost a few MB, not a few hundred — and a heartbeat (only
// conditions' lastHeartbeatTime and resourceVersion change) strips to the same
// object as before, which is how the informer edge drops it (`sameContent`).
//
// apiVersion and kind are dropped: LIST items do not carry them (watch events
// do), and the informer's resource says what the object is.
//
// What is kept is one declarative Shape per kind. To read a new field, add it
// to the shape here (the unit tests list what is kept); nothing else changes.
// Pure: no I/O, never throws, returns fresh plain objects (list pages arrive as
// client-node class instances with Date timestamps, watch events as plain
// JSON with strings; both strip to the same plain form).
import { ANNOTATION_SOURCE_RANGES, LABEL_EXCLUDE_FROM_LB, LABEL_SERVICE_NAME, LABEL_ZONE, TAINT_TO_BE_DELETED } from "../../model/constants.ts";
import { OWNER_HINTS } from "../../model/service.ts";

/** Every `edgelb.dev/` annotation (and label) is ours and kept, read today or not. */
export const ANNOTATION_PREFIX = "edgelb.dev/";

/**
 * What to keep of a value: `true` keeps it whole; an object keeps only the
 * listed keys (applied to every element when the value is an array); a
 * function maps the value (undefined drops it).
 */
export type Shape = true | { readonly [key: string]: Shape } | ((value: unknown) => unknown);

/** Keeps the entries of a string map whose key is listed or starts with a listed prefix ending in "/". */
export function keepKeys(keys: readonly string[]): (value: unknown) => Record<string, string> | undefined {
  const exact = new Set(keys.filter((k) => !k.endsWith("/")));
  const prefixes = keys.filter((k) => k.endsWith("/"));
  return (value) => {
    if (!isRecord(value)) return undefined;
    let out: Record<string, string> | undefined;
    for (const [k, v] of Object.entries(value)) {
      if (typeof v !== "string") continue;
      if (exact.has(k) || prefixes.some((p) => k.startsWith(p))) (out ??= {})[k] = v;
    }
    return out;
  };
}

/** Keeps the array elements whose `key` field is listed (taints). */
export function keepByKey(keys: readonly string[], shape: Shape): (value: unknown) => unknown[] | undefined {
  const wanted = new Set(keys);
  return (value) => {
    if (!Array.isArray(value)) return undefined;
    const kept = value.filter((e) => isRecord(e) && typeof e.key === "string" && wanted.has(e.key)).map((e) => apply(shape, e));
    return kept.length > 0 ? kept : undefined;
  };
}

/**
 * metav1.Time: the API sends RFC 3339 with second precision; client-node's
 * LIST deserialises it into a Date. Both become the API's string, so a LIST
 * and a watch event of the same object strip to equal objects.
 */
function time(value: unknown): unknown {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value.toISOString().replace(/\.000Z$/, "Z");
  return typeof value === "string" ? value : undefined;
}

/** Annotations every kind keeps: ours. */
const OUR_ANNOTATIONS = [ANNOTATION_PREFIX];

function metadata(labels: readonly string[], annotations: readonly string[]): Shape {
  return {
    name: true,
    namespace: true,
    uid: true,
    resourceVersion: true,
    generation: true,
    creationTimestamp: time,
    deletionTimestamp: time,
    finalizers: true,
    labels: keepKeys(labels),
    annotations: keepKeys(annotations),
  };
}

/** Eligibility (labels, taint, deletion), address, zone; `edgelb.dev/*` for per-node settings. */
export const NODE_SHAPE: Shape = {
  metadata: metadata([LABEL_EXCLUDE_FROM_LB, LABEL_ZONE, ANNOTATION_PREFIX], OUR_ANNOTATIONS),
  spec: { taints: keepByKey([TAINT_TO_BE_DELETED], { key: true, value: true, effect: true }) },
  status: { addresses: { type: true, address: true } },
};

/**
 * Ownership (type, class), ports, traffic policy, affinity; the selector (does the
 * EndpointSlice controller manage its endpoints? model/endpoints.ts); status for
 * EXTERNAL-IP and conditions.
 */
export const SERVICE_SHAPE: Shape = {
  // Other load balancers' annotations tell whose a foreign ingress entry is.
  metadata: metadata([ANNOTATION_PREFIX], [ANNOTATION_PREFIX, ANNOTATION_SOURCE_RANGES, ...OWNER_HINTS.map(([prefix]) => prefix)]),
  spec: {
    type: true,
    loadBalancerClass: true,
    ports: { name: true, protocol: true, appProtocol: true, port: true, nodePort: true },
    allocateLoadBalancerNodePorts: true,
    externalTrafficPolicy: true,
    healthCheckNodePort: true,
    sessionAffinity: true,
    loadBalancerSourceRanges: true,
    selector: true,
  },
  status: { loadBalancer: true, conditions: true },
};

/** Which Service, and per endpoint: node, readiness (ready/serving/terminating), identity. */
export const ENDPOINT_SLICE_SHAPE: Shape = {
  metadata: metadata([LABEL_SERVICE_NAME], []),
  addressType: true,
  endpoints: {
    addresses: true,
    conditions: true,
    nodeName: true,
    zone: true,
    targetRef: { kind: true, namespace: true, name: true, uid: true },
  },
  ports: { name: true, protocol: true, port: true },
};

/** Per-namespace settings (`edgelb.dev/*`), deletion, phase. */
export const NAMESPACE_SHAPE: Shape = {
  metadata: metadata([ANNOTATION_PREFIX], OUR_ANNOTATIONS),
  status: { phase: true },
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A kept value as plain JSON (Dates from a LIST become the API's strings). */
function plain(value: unknown): unknown {
  if (value instanceof Date) return time(value);
  if (Array.isArray(value)) return value.map(plain);
  if (!isRecord(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined && v !== null) out[k] = plain(v);
  return out;
}

function apply(shape: Shape, value: unknown): unknown {
  if (value === undefined || value === null) return undefined;
  if (shape === true) return plain(value);
  if (typeof shape === "function") return shape(value);
  if (Array.isArray(value)) return value.map((e) => apply(shape, e) ?? {});
  if (!isRecord(value)) return undefined;
  let out: Record<string, unknown> | undefined;
  for (const key of Object.keys(shape)) {
    const kept = apply(shape[key]!, value[key]);
    if (kept !== undefined) (out ??= {})[key] = kept;
  }
  return out ?? {};
}

/** The object with only what `shape` keeps; metadata always survives (the cache keys by it). */
export function strip<T>(shape: Shape, obj: T): T {
  const out = (apply(shape, obj) ?? {}) as { metadata?: unknown };
  out.metadata ??= {};
  return out as T;
}

/**
 * Deep equality of two stripped objects, ignoring metadata.resourceVersion:
 * true when an update carries nothing the agent reads (a heartbeat).
 */
export function sameContent(a: unknown, b: unknown): boolean {
  if (!isRecord(a) || !isRecord(b)) return equal(a, b);
  const { metadata: ma, ...ra } = a;
  const { metadata: mb, ...rb } = b;
  const { resourceVersion: _va, ...restA } = (isRecord(ma) ? ma : {}) as Record<string, unknown>;
  const { resourceVersion: _vb, ...restB } = (isRecord(mb) ? mb : {}) as Record<string, unknown>;
  return equal(restA, restB) && equal(ra, rb);
}

function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => equal(x, b[i]));
  }
  if (!isRecord(a) || !isRecord(b) || Array.isArray(b)) return false;
  const ka = Object.keys(a).filter((k) => a[k] !== undefined);
  const kb = Object.keys(b).filter((k) => b[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => equal(a[k], b[k]));
}
