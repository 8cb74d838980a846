// Gateway API (gateway.networking.k8s.io) as the fake API server serves it:
// CustomResourceDefinitions (apiextensions.k8s.io/v1) plus the four kinds
// edgelb reads, each served only while its CRD exists, like a real cluster
// where `kubectl apply -f standard-install.yaml` makes them appear in discovery.
// Printers follow the upstream CRDs' additionalPrinterColumns; defaults follow
// the CRDs' OpenAPI defaults (status "Waiting for controller", PathPrefix /).
import { crdSchema, GATEWAY, GATEWAY_CLASS, HTTP_ROUTE, REFERENCE_GRANT } from "./openapi/gateway-kinds.ts";
import { defineResource } from "./resource-type.ts";
import type { ResourceType } from "./resources.ts";
import type { Obj } from "./selectors.ts";
import { cause, type StatusCause } from "./status.ts";
import { defaultPrinter, humanDuration, type Column, type TablePrinter } from "./table.ts";

export const GATEWAY_GROUP = "gateway.networking.k8s.io";

// ---- printers: CRD additionalPrinterColumns, evaluated like the apiextensions table convertor ----

const col = (name: string, type: Column["type"], description: string, priority = 0): Column => ({
  name,
  type,
  format: name === "Name" ? "name" : "",
  description,
  priority,
});
const nameCol = col("Name", "string", "Name must be unique within a namespace.");

/** A cell as the convertor renders it: scalars as is, lists and maps as JSON, nothing as null (kubectl prints <none>). */
function cell(values: unknown[]): unknown {
  const present = values.filter((v) => v !== undefined && v !== null);
  if (present.length === 0) return null;
  return present.map((v) => (typeof v === "object" ? JSON.stringify(v) : String(v))).join(",");
}

const conditionStatus = (o: Obj, type: string) => cell((o.status?.conditions ?? []).filter((c: Obj) => c?.type === type).map((c: Obj) => c.status));

function age(o: Obj, now: number): unknown {
  const t = Date.parse(o.metadata?.creationTimestamp ?? "");
  return Number.isNaN(t) ? null : humanDuration(now - t);
}

const ageCol = col("Age", "date", "");

export const gatewayClassPrinter: TablePrinter = {
  columns: [nameCol, col("Controller", "string", ""), col("Accepted", "string", ""), ageCol, col("Description", "string", "", 1)],
  cells: (o, now) => [o.metadata?.name, cell([o.spec?.controllerName]), conditionStatus(o, "Accepted"), age(o, now), cell([o.spec?.description])],
};

export const gatewayPrinter: TablePrinter = {
  columns: [nameCol, col("Class", "string", ""), col("Address", "string", ""), col("Programmed", "string", ""), ageCol],
  cells: (o, now) => [
    o.metadata?.name,
    cell([o.spec?.gatewayClassName]),
    cell((o.status?.addresses ?? []).map((a: Obj) => a?.value)),
    conditionStatus(o, "Programmed"),
    age(o, now),
  ],
};

export const httpRoutePrinter: TablePrinter = {
  columns: [nameCol, col("Hostnames", "string", ""), ageCol],
  cells: (o, now) => [o.metadata?.name, cell([o.spec?.hostnames]), age(o, now)],
};

export const referenceGrantPrinter: TablePrinter = {
  columns: [nameCol, ageCol],
  cells: (o, now) => [o.metadata?.name, age(o, now)],
};

// ---- admission: required fields and the CRDs' defaults ----

// Not imported from ./resources.ts, which imports this module (its resource list).
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
function metadataCauses(obj: Obj, _rule: "subdomain"): StatusCause[] {
  const name = obj.metadata?.name ?? "";
  return DNS1123_SUBDOMAIN.test(name) && name.length <= 253
    ? []
    : [cause("metadata.name", "FieldValueInvalid", `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`)];
}

/** The status a new object gets from the CRD's default: a controller has not looked yet. */
function pendingConditions(types: string[]): Obj[] {
  return types.map((type) => ({
    type,
    status: "Unknown",
    reason: "Pending",
    message: "Waiting for controller",
    lastTransitionTime: "1970-01-01T00:00:00Z",
  }));
}

function required(obj: Obj, path: string): StatusCause[] {
  let cur: unknown = obj;
  for (const p of path.split(".")) cur = cur && typeof cur === "object" ? (cur as Obj)[p] : undefined;
  return cur === undefined || cur === null || cur === "" ? [cause(path, "FieldValueRequired", "Required value")] : [];
}

const timeFields = (prefix: string) => [`${prefix}conditions[].lastTransitionTime`];

const LISTENER_PROTOCOLS = /^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9]+$/;

export const GATEWAY_CLASSES = defineResource(`${GATEWAY_GROUP}/v1`, "GatewayClass", "Cluster", {
  schema: GATEWAY_CLASS,
  shortNames: ["gc"],
  hasStatus: true,
  crd: `gatewayclasses.${GATEWAY_GROUP}`,
  printer: gatewayClassPrinter,
  timeFields: timeFields("status."),
  admit: ({ obj, op, old }) => {
    if (op === "create") obj.status ??= { conditions: pendingConditions(["Accepted"]) };
    const out = [...metadataCauses(obj, "subdomain"), ...required(obj, "spec.controllerName")];
    if (op === "update" && old && old.spec?.controllerName !== obj.spec?.controllerName) {
      out.push(cause("spec.controllerName", "FieldValueInvalid", "Invalid value: \"string\": Value is immutable"));
    }
    return out;
  },
});

export const GATEWAYS = defineResource(`${GATEWAY_GROUP}/v1`, "Gateway", "Namespaced", {
  schema: GATEWAY,
  shortNames: ["gtw"],
  hasStatus: true,
  crd: `gateways.${GATEWAY_GROUP}`,
  printer: gatewayPrinter,
  timeFields: [...timeFields("status."), "status.listeners[].conditions[].lastTransitionTime"],
  admit: ({ obj, op }) => {
    if (op === "create") obj.status ??= { conditions: pendingConditions(["Accepted", "Programmed"]) };
    const out = [...metadataCauses(obj, "subdomain"), ...required(obj, "spec.gatewayClassName")];
    const listeners = obj.spec?.listeners;
    if (!Array.isArray(listeners) || listeners.length === 0) out.push(cause("spec.listeners", "FieldValueRequired", "Required value"));
    else {
      const names = new Set<string>();
      listeners.forEach((l: Obj, i: number) => {
        for (const f of ["name", "port", "protocol"]) out.push(...required(l, f).map((c) => ({ ...c, field: `spec.listeners[${i}].${f}` })));
        if (typeof l.protocol === "string" && !LISTENER_PROTOCOLS.test(l.protocol)) out.push(cause(`spec.listeners[${i}].protocol`, "FieldValueInvalid", `Invalid value: "${l.protocol}"`));
        if (l.port !== undefined && (!Number.isInteger(l.port) || l.port < 1 || l.port > 65535)) out.push(cause(`spec.listeners[${i}].port`, "FieldValueInvalid", `Invalid value: ${JSON.stringify(l.port)}: must be between 1 and 65535`));
        if (names.has(l.name)) out.push(cause("spec.listeners", "FieldValueInvalid", "Invalid value: \"array\": Listener name must be unique within the Gateway"));
        names.add(l.name);
        l.allowedRoutes ??= { namespaces: { from: "Same" } };
      });
    }
    return out;
  },
});

export const HTTP_ROUTES = defineResource(`${GATEWAY_GROUP}/v1`, "HTTPRoute", "Namespaced", {
  schema: HTTP_ROUTE,
  hasStatus: true,
  crd: `httproutes.${GATEWAY_GROUP}`,
  printer: httpRoutePrinter,
  timeFields: ["status.parents[].conditions[].lastTransitionTime"],
  admit: ({ obj }) => {
    const out = metadataCauses(obj, "subdomain");
    obj.spec ??= {};
    obj.spec.rules ??= [{ matches: [{ path: { type: "PathPrefix", value: "/" } }] }];
    if (!Array.isArray(obj.spec.rules)) out.push(cause("spec.rules", "FieldValueInvalid", "Invalid value: must be a list"));
    else if (obj.spec.rules.length > 16) out.push(cause("spec.rules", "FieldValueInvalid", `Too many: ${obj.spec.rules.length}: must have at most 16 items`));
    else
      for (const rule of obj.spec.rules as Obj[]) {
        if (!rule || typeof rule !== "object") continue;
        rule.matches ??= [{ path: { type: "PathPrefix", value: "/" } }];
        for (const m of rule.matches ?? []) if (m && typeof m === "object" && m.path) m.path.type ??= "PathPrefix";
        for (const b of rule.backendRefs ?? []) if (b && typeof b === "object") b.weight ??= 1;
      }
    return out;
  },
});

export const REFERENCE_GRANTS = defineResource(`${GATEWAY_GROUP}/v1beta1`, "ReferenceGrant", "Namespaced", {
  schema: REFERENCE_GRANT,
  shortNames: ["refgrant"],
  crd: `referencegrants.${GATEWAY_GROUP}`,
  printer: referenceGrantPrinter,
  admit: ({ obj }) => [...metadataCauses(obj, "subdomain"), ...required(obj, "spec.from"), ...required(obj, "spec.to")],
});

/** ReferenceGrant is served as v1 too (newer bundles), from the same v1beta1 storage. */
export const REFERENCE_GRANTS_V1: ResourceType = {
  ...REFERENCE_GRANTS,
  version: "v1",
  storage: {
    resource: REFERENCE_GRANTS,
    toStorage: (o) => ({ ...o, apiVersion: `${GATEWAY_GROUP}/v1beta1` }),
    fromStorage: (o) => ({ ...o, apiVersion: `${GATEWAY_GROUP}/v1` }),
  },
};

// ---- the CRDs themselves ----

export const CUSTOM_RESOURCE_DEFINITIONS = defineResource("apiextensions.k8s.io/v1", "CustomResourceDefinition", "Cluster", {
  shortNames: ["crd", "crds"],
  hasStatus: true,
  admit: ({ obj }) => {
    const out = [...metadataCauses(obj, "subdomain"), ...required(obj, "spec.group"), ...required(obj, "spec.names.plural"), ...required(obj, "spec.names.kind")];
    const s = obj.spec ?? {};
    if (s.names?.plural && s.group && obj.metadata?.name !== `${s.names.plural}.${s.group}`) {
      out.push(cause("metadata.name", "FieldValueInvalid", `Invalid value: "${obj.metadata?.name}": must be spec.names.plural+"."+spec.group`));
    }
    obj.status = { acceptedNames: s.names ?? {}, storedVersions: (s.versions ?? []).filter((v: Obj) => v.storage).map((v: Obj) => v.name), conditions: [{ type: "Established", status: "True", reason: "InitialNamesAccepted", message: "the initial names have been accepted" }] };
    return out;
  },
});

/** The Gateway API kinds the fake server can serve (each only while its CRD exists). */
export const GATEWAY_RESOURCES: ResourceType[] = [CUSTOM_RESOURCE_DEFINITIONS, GATEWAY_CLASSES, GATEWAYS, HTTP_ROUTES, REFERENCE_GRANTS_V1, REFERENCE_GRANTS];

/** The CustomResourceDefinition objects of the Gateway API standard channel (the kinds served here), each version with
 * the structural schema of the fields the lab knows (openapi/gateway-kinds.ts), so what `kubectl get crd -o yaml`
 * shows is what the server validates against. */
export function gatewayCrds(): Obj[] {
  const kinds = [GATEWAY_CLASSES, GATEWAYS, HTTP_ROUTES, REFERENCE_GRANTS];
  return kinds.map((r) => {
    const versions = r === REFERENCE_GRANTS ? ["v1", "v1beta1"] : ["v1", "v1beta1"];
    const storageVersion = r === REFERENCE_GRANTS ? "v1beta1" : "v1";
    return {
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name: r.crd, annotations: { "gateway.networking.k8s.io/bundle-version": "v1.3.0", "gateway.networking.k8s.io/channel": "standard" } },
      spec: {
        group: GATEWAY_GROUP,
        names: { kind: r.kind, listKind: `${r.kind}List`, plural: r.plural, singular: r.singular, categories: ["gateway-api"], ...(r.shortNames.length ? { shortNames: r.shortNames } : {}) },
        scope: r.namespaced ? "Namespaced" : "Cluster",
        versions: versions.map((name) => ({ name, served: true, storage: name === storageVersion, schema: crdSchema(r.schema!), ...(r.hasStatus ? { subresources: { status: {} } } : {}) })),
      },
    };
  });
}

/** Is `r` served now? Built-ins always; a custom resource while its CRD exists and is not being deleted. */
export function isServed(r: ResourceType, crd: (name: string) => Obj | undefined): boolean {
  if (!r.crd) return true;
  const o = crd(r.crd);
  return o !== undefined && !o.metadata?.deletionTimestamp;
}
