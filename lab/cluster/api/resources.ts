// The resource types the fake API server serves, with what makes each one
// behave like upstream: scope, status subresource, strategic-merge keys,
// defaulting/allocation/validation on write, and server-side printing.
import { GATEWAY_RESOURCES } from "./gateway.ts";
import { defineResource, META_PATCH_SCHEMA as metaSchema } from "./resource-type.ts";
import { admitDeployment, admitReplicaSet, deploymentPrinter, replicaSetPrinter } from "./apps.ts";
import { mergeKeys, type Field } from "./openapi/fields.ts";
import { DEPLOYMENT, POD, REPLICA_SET, SERVICE } from "./openapi/kinds.ts";
import type { PatchSchema } from "./patch.ts";
import type { Obj } from "./selectors.ts";
import { admitService, validateServiceStatus, type NodePortRange } from "./service.ts";
import { cause, errors, type StatusCause } from "./status.ts";
import {
  defaultPrinter,
  endpointSlicePrinter,
  endpointsPrinter,
  podPrinter,
  eventPrinter,
  leasePrinter,
  namespacePrinter,
  nodePrinter,
  servicePrinter,
  type TablePrinter,
} from "./table.ts";

export interface AdmitContext {
  op: "create" | "update";
  /** The object being written; admission may default and allocate into it. */
  obj: Obj;
  old?: Obj;
  /** All other stored objects of the same resource (cluster-wide). */
  others: Obj[];
  nodePortRange: NodePortRange;
}

export interface ResourceType {
  group: string;
  version: string;
  plural: string;
  singular: string;
  kind: string;
  namespaced: boolean;
  shortNames: string[];
  hasStatus: boolean;
  /** Upstream Services drop status on create; Nodes keep it. */
  resetStatusOnCreate: boolean;
  allowCreateOnUpdate: boolean;
  /** Field selectors the real server accepts besides metadata.name/namespace. */
  fieldSelectors: string[];
  patchSchema: PatchSchema;
  printer: TablePrinter;
  /** Defaults, allocation and validation of the main resource. */
  admit?: (ctx: AdmitContext) => StatusCause[];
  /** Validation of a /status write. */
  admitStatus?: (ctx: AdmitContext) => StatusCause[];
  /** MicroTime fields (strict 6-digit fraction), as dotted paths (`list[].field`). */
  microTimeFields: string[];
  /** metav1.Time fields (stored in UTC, whole seconds). */
  timeFields: string[];
  /** Served from another resource's storage, converted (events.k8s.io/v1 Events are core Events). */
  storage?: StorageView;
  /** A custom resource: served only while this CustomResourceDefinition exists (./gateway.ts). */
  crd?: string;
  /** Field description: the OpenAPI schema and the known fields (else prune.ts's SCHEMAS). */
  schema?: Field;
  /** Serves the /scale subresource (autoscaling/v1 Scale over spec.replicas). */
  scale?: boolean;
  /** `kubectl get all` lists it. */
  categories?: string[];
  /** Deletion is graceful (deletionTimestamp + grace period) when the store runs a kubelet: Pods. */
  graceful?: boolean;
}

export interface StorageView {
  resource: ResourceType;
  toStorage(o: Obj): Obj;
  fromStorage(o: Obj): Obj;
}

export const apiVersionOf = (r: ResourceType) => (r.group ? `${r.group}/${r.version}` : r.version);
export const resourceKey = (r: ResourceType) => `${r.group}/${r.plural}`;


const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

function nameCauses(name: string, rule: "subdomain" | "label" | "dns1035"): StatusCause[] {
  if (rule === "dns1035" && (!DNS1035_LABEL.test(name) || name.length > 63)) {
    return [cause("metadata.name", "FieldValueInvalid", `Invalid value: "${name}": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')`)];
  }
  if (rule === "label" && (!DNS1123_LABEL.test(name) || name.length > 63)) {
    return [cause("metadata.name", "FieldValueInvalid", `Invalid value: "${name}": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`)];
  }
  if (rule === "subdomain" && (!DNS1123_SUBDOMAIN.test(name) || name.length > 253)) {
    return [cause("metadata.name", "FieldValueInvalid", `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`)];
  }
  return [];
}

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_NAME = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** Checks shared by every resource: name format, labels. */
export function metadataCauses(obj: Obj, rule: "subdomain" | "label" | "dns1035"): StatusCause[] {
  const out = nameCauses(obj.metadata?.name ?? "", rule);
  for (const [k, v] of Object.entries<unknown>(obj.metadata?.labels ?? {})) {
    if (!LABEL_NAME.test(k) || k.split("/").pop()!.length > 63) out.push(cause("metadata.labels", "FieldValueInvalid", `Invalid value: "${k}": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`));
    if (typeof v !== "string" || !LABEL_VALUE.test(v) || v.length > 63) out.push(cause("metadata.labels", "FieldValueInvalid", `Invalid value: ${JSON.stringify(v)}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`));
  }
  return out;
}

const MICRO = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\.(\d{6})(Z|[+-]\d{2}:\d{2})$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** Visits every value at a dotted path; `[]` steps into each element of a list. */
function visit(obj: Obj, path: string, fn: (value: unknown, set: (v: unknown) => void) => void): void {
  const walk = (cur: any, parts: string[]): void => {
    if (cur === undefined || cur === null || typeof cur !== "object") return;
    const [head, ...rest] = parts;
    if (head === undefined) return;
    if (head.endsWith("[]")) {
      const list = cur[head.slice(0, -2)];
      if (!Array.isArray(list)) return;
      for (const item of list) walk(item, rest);
      return;
    }
    if (rest.length === 0) {
      if (head in cur) fn(cur[head], (v) => (cur[head] = v));
      return;
    }
    walk(cur[head], rest);
  };
  walk(obj, path.split("."));
}

const utcSeconds = (s: string) => new Date(s).toISOString().replace(/\.\d{3}Z$/, "Z");

/**
 * Decodes time fields the way the Go types do. metav1.MicroTime parses with
 * "2006-01-02T15:04:05.000000Z07:00": a plain JavaScript Date (3 fractional
 * digits) is a 400. metav1.Time accepts any RFC 3339 time but is stored (and
 * read back) in UTC with whole seconds.
 */
export function decodeTimes(r: ResourceType, obj: Obj): void {
  const fail = (value: unknown, layout: string, frac: string) => {
    throw errors.badRequest(
      `${r.kind} in version "${r.version}" cannot be handled as a ${r.kind}: parsing time ${JSON.stringify(String(value))} as "${layout}": cannot parse ${JSON.stringify(frac)} as "${layout.includes(".000000") ? ".000000" : "Z07:00"}"`,
    );
  };
  for (const path of r.microTimeFields) {
    visit(obj, path, (v, set) => {
      if (v === null) return;
      const m = typeof v === "string" ? MICRO.exec(v) : null;
      if (!m) return fail(v, "2006-01-02T15:04:05.000000Z07:00", typeof v === "string" ? v.slice(19) : String(v));
      if (m[3] !== "Z") set(`${utcSeconds(`${m[1]}${m[3]}`).slice(0, -1)}.${m[2]}Z`);
    });
  }
  for (const path of r.timeFields) {
    visit(obj, path, (v, set) => {
      if (v === null) return;
      if (typeof v !== "string" || !RFC3339.test(v) || Number.isNaN(Date.parse(v))) return fail(v, "2006-01-02T15:04:05Z07:00", typeof v === "string" ? v.slice(19) : String(v));
      set(utcSeconds(v));
    });
  }
}

export const NODES = defineResource("v1", "Node", "Cluster", {
  shortNames: ["no"],
  hasStatus: true,
  fieldSelectors: ["spec.unschedulable"],
  patchSchema: { ...metaSchema, "status.conditions": { mergeKey: "type" }, "status.addresses": { mergeKey: "type" } },
  printer: nodePrinter,
  timeFields: ["status.conditions[].lastHeartbeatTime", "status.conditions[].lastTransitionTime", "spec.taints[].timeAdded"],
  admit: ({ obj }) => metadataCauses(obj, "subdomain"),
});

export const SERVICES = defineResource("v1", "Service", "Namespaced", {
  shortNames: ["svc"],
  hasStatus: true,
  resetStatusOnCreate: true,
  allowCreateOnUpdate: true,
  fieldSelectors: ["spec.clusterIP", "spec.type"],
  patchSchema: { ...metaSchema, "spec.ports": { mergeKey: "port" }, "status.conditions": { mergeKey: "type" } },
  schema: SERVICE,
  categories: ["all"],
  printer: servicePrinter,
  timeFields: ["status.conditions[].lastTransitionTime"],
  admit: (ctx) => {
    ctx.obj.status ??= { loadBalancer: {} };
    return [
      ...metadataCauses(ctx.obj, "dns1035"),
      ...admitService({ op: ctx.op, obj: ctx.obj, old: ctx.old, others: ctx.others, range: ctx.nodePortRange }),
    ];
  },
  admitStatus: ({ obj }) => validateServiceStatus(obj),
});

export const NAMESPACES = defineResource("v1", "Namespace", "Cluster", {
  shortNames: ["ns"],
  hasStatus: true,
  fieldSelectors: ["status.phase"],
  printer: namespacePrinter,
  admit: ({ obj }) => {
    obj.metadata.labels = { ...obj.metadata.labels, "kubernetes.io/metadata.name": obj.metadata.name };
    obj.spec ??= { finalizers: ["kubernetes"] };
    obj.status = { phase: obj.metadata.deletionTimestamp ? "Terminating" : "Active", ...(obj.status?.conditions ? { conditions: obj.status.conditions } : {}) };
    return metadataCauses(obj, "label");
  },
});

const EVENT_FIELDS = [
  "involvedObject.kind",
  "involvedObject.namespace",
  "involvedObject.name",
  "involvedObject.uid",
  "involvedObject.apiVersion",
  "involvedObject.resourceVersion",
  "involvedObject.fieldPath",
  "reason",
  "reportingComponent",
  "source",
  "type",
];

export const EVENTS = defineResource("v1", "Event", "Namespaced", {
  shortNames: ["ev"],
  allowCreateOnUpdate: true,
  fieldSelectors: EVENT_FIELDS,
  printer: eventPrinter,
  microTimeFields: ["eventTime", "series.lastObservedTime"],
  timeFields: ["firstTimestamp", "lastTimestamp"],
  admit: ({ obj }) => {
    const out = metadataCauses(obj, "subdomain");
    const io = obj.involvedObject;
    if (!io || typeof io !== "object") {
      if (!obj.eventTime) out.push(cause("involvedObject", "FieldValueRequired", "Required value"));
    } else if (io.namespace && io.namespace !== obj.metadata.namespace) {
      out.push(cause("involvedObject.namespace", "FieldValueInvalid", `Invalid value: "${io.namespace}": does not match event.namespace`));
    }
    if (obj.eventTime) {
      if (!obj.reportingComponent) out.push(cause("reportingController", "FieldValueRequired", "Required value"));
      if (!obj.reportingInstance) out.push(cause("reportingInstance", "FieldValueRequired", "Required value"));
      if (!obj.action) out.push(cause("action", "FieldValueRequired", "Required value"));
      if (!obj.reason) out.push(cause("reason", "FieldValueRequired", "Required value"));
    }
    if (obj.type && !["Normal", "Warning"].includes(obj.type)) out.push(cause("type", "FieldValueInvalid", `Invalid value: "${obj.type}": has invalid value: ${obj.type}`));
    return out;
  },
});

/** Field renames between events.k8s.io/v1 and core/v1 Events (same storage upstream). */
const EVENT_RENAMES: [string, string][] = [
  ["regarding", "involvedObject"],
  ["note", "message"],
  ["reportingController", "reportingComponent"],
  ["deprecatedSource", "source"],
  ["deprecatedFirstTimestamp", "firstTimestamp"],
  ["deprecatedLastTimestamp", "lastTimestamp"],
  ["deprecatedCount", "count"],
];

function renameFields(o: Obj, pairs: [string, string][], apiVersion: string): Obj {
  const out: Obj = { ...o, apiVersion, kind: "Event" };
  for (const [from, to] of pairs) {
    delete out[from];
    if (o[from] !== undefined) out[to] = o[from];
  }
  return out;
}

export const EVENTS_V1 = defineResource("events.k8s.io/v1", "Event", "Namespaced", {
  shortNames: ["ev"],
  allowCreateOnUpdate: true,
  fieldSelectors: ["regarding.kind", "regarding.namespace", "regarding.name", "regarding.uid", "reason", "reportingController", "type"],
  printer: eventPrinter,
  microTimeFields: ["eventTime", "series.lastObservedTime"],
  timeFields: ["deprecatedFirstTimestamp", "deprecatedLastTimestamp"],
  admit: ({ obj }) => {
    const out = metadataCauses(obj, "subdomain");
    for (const f of ["eventTime", "reportingController", "reportingInstance", "action", "reason"]) {
      if (!obj[f]) out.push(cause(f, "FieldValueRequired", "Required value"));
    }
    if (obj.type && !["Normal", "Warning"].includes(obj.type)) out.push(cause("type", "FieldValueInvalid", `Invalid value: "${obj.type}": has invalid value: ${obj.type}`));
    if (typeof obj.note === "string" && obj.note.length > 1024) out.push(cause("note", "FieldValueInvalid", "Invalid value: can have at most 1024 characters"));
    return out;
  },
});

export const ENDPOINT_SLICES = defineResource("discovery.k8s.io/v1", "EndpointSlice", "Namespaced", {
  printer: endpointSlicePrinter,
  admit: ({ obj }) => {
    const out = metadataCauses(obj, "subdomain");
    if (!["IPv4", "IPv6", "FQDN"].includes(obj.addressType)) {
      out.push(obj.addressType ? cause("addressType", "FieldValueNotSupported", `Unsupported value: "${obj.addressType}": supported values: "FQDN", "IPv4", "IPv6"`) : cause("addressType", "FieldValueRequired", "Required value"));
    }
    (obj.endpoints ?? []).forEach((e: Obj, i: number) => {
      if (!Array.isArray(e.addresses) || e.addresses.length !== 1) out.push(cause(`endpoints[${i}].addresses`, "FieldValueRequired", "Required value: must contain exactly 1 address"));
    });
    return out;
  },
});

export const LEASES = defineResource("coordination.k8s.io/v1", "Lease", "Namespaced", {
  printer: leasePrinter,
  microTimeFields: ["spec.acquireTime", "spec.renewTime"],
  admit: ({ obj }) => {
    const out = metadataCauses(obj, "subdomain");
    const s = obj.spec ?? {};
    const d = s.leaseDurationSeconds;
    if (d !== undefined && d !== null && (!Number.isInteger(d) || d <= 0)) out.push(cause("spec.leaseDurationSeconds", "FieldValueInvalid", `Invalid value: ${JSON.stringify(d)}: must be greater than 0`));
    const t = s.leaseTransitions;
    if (t !== undefined && t !== null && (!Number.isInteger(t) || t < 0)) out.push(cause("spec.leaseTransitions", "FieldValueInvalid", `Invalid value: ${JSON.stringify(t)}: must be greater than or equal to 0`));
    return out;
  },
});

export const PODS = defineResource("v1", "Pod", "Namespaced", {
  shortNames: ["po"],
  hasStatus: true,
  resetStatusOnCreate: true,
  fieldSelectors: ["spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"],
  patchSchema: { ...metaSchema, ...mergeKeys(POD) },
  printer: podPrinter,
  schema: POD,
  categories: ["all"],
  graceful: true,
  timeFields: [
    "status.startTime",
    "status.conditions[].lastTransitionTime",
    "status.conditions[].lastProbeTime",
    "status.containerStatuses[].state.running.startedAt",
  ],
  admit: ({ obj, op, old }) => {
    const out = metadataCauses(obj, "subdomain");
    const containers = obj.spec?.containers;
    if (!Array.isArray(containers) || containers.length === 0) out.push(cause("spec.containers", "FieldValueRequired", "Required value"));
    else
      containers.forEach((c: Obj, i: number) => {
        if (!c.name) out.push(cause(`spec.containers[${i}].name`, "FieldValueRequired", "Required value"));
        if (!c.image) out.push(cause(`spec.containers[${i}].image`, "FieldValueRequired", "Required value"));
      });
    if (op === "create") obj.status ??= { phase: "Pending", qosClass: "BestEffort" };
    if (op === "update" && old && old.spec?.nodeName && obj.spec?.nodeName !== old.spec.nodeName) {
      out.push(cause("spec", "FieldValueForbidden", "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"));
    }
    return out;
  },
});

export const ENDPOINTS = defineResource("v1", "Endpoints", "Namespaced", {
  shortNames: ["ep"],
  allowCreateOnUpdate: true,
  printer: endpointsPrinter,
  admit: ({ obj }) => metadataCauses(obj, "subdomain"),
});

EVENTS_V1.storage = {
  resource: EVENTS,
  toStorage: (o) => renameFields(o, EVENT_RENAMES, "v1"),
  fromStorage: (o) => renameFields(o, EVENT_RENAMES.map(([a, b]) => [b, a]), "events.k8s.io/v1"),
};

const podTimes = (prefix: string) => [`${prefix}.metadata.creationTimestamp`];

export const DEPLOYMENTS = defineResource("apps/v1", "Deployment", "Namespaced", {
  shortNames: ["deploy"],
  hasStatus: true,
  resetStatusOnCreate: true,
  patchSchema: { ...metaSchema, ...mergeKeys(DEPLOYMENT) },
  printer: deploymentPrinter,
  schema: DEPLOYMENT,
  scale: true,
  categories: ["all"],
  timeFields: ["status.conditions[].lastUpdateTime", "status.conditions[].lastTransitionTime", ...podTimes("spec.template")],
  admit: (ctx) => admitDeployment(ctx),
});

export const REPLICA_SETS = defineResource("apps/v1", "ReplicaSet", "Namespaced", {
  shortNames: ["rs"],
  hasStatus: true,
  resetStatusOnCreate: true,
  patchSchema: { ...metaSchema, ...mergeKeys(REPLICA_SET) },
  printer: replicaSetPrinter,
  schema: REPLICA_SET,
  scale: true,
  categories: ["all"],
  timeFields: ["status.conditions[].lastTransitionTime", ...podTimes("spec.template")],
  admit: (ctx) => admitReplicaSet(ctx),
});

// One entry per line: other modules register their kinds here.
export const RESOURCES: ResourceType[] = [
  NODES,
  SERVICES,
  NAMESPACES,
  PODS,
  ENDPOINTS,
  EVENTS,
  EVENTS_V1,
  ENDPOINT_SLICES,
  LEASES,
  DEPLOYMENTS,
  REPLICA_SETS,
  ...GATEWAY_RESOURCES,
];
