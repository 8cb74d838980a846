// OpenAPI v3, as kube-apiserver serves it at /openapi/v3: a root listing one
// document per group-version, each with the paths and the schemas of its
// kinds. kubectl reads it to learn that the server validates fields itself
// (a PATCH operation per kind with a fieldValidation query parameter: then
// `kubectl apply/create` send fieldValidation=Strict and skip client-side
// validation), for `kubectl explain`, and for strategic merge keys. Generated
// from each kind's field description; kinds without one get their known
// fields, untyped.
import { createHash } from "node:crypto";
import { SCHEMAS, type Schema } from "../prune.ts";
import { apiVersionOf, RESOURCES, type ResourceType } from "../resources.ts";
import type { Obj } from "../selectors.ts";
import { any, obj, type Field } from "./fields.ts";
import { OBJECT_META, SCALE } from "./kinds.ts";
import { VERSION_INFO } from "../discovery.ts";

const META_REF = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";

/** io.k8s.api.<pkg>.<version>.<Kind>, the names upstream documents use. */
export function definitionName(r: Pick<ResourceType, "group" | "version" | "kind">): string {
  const pkg = r.group === "" ? "core" : r.group.replace(/\.k8s\.io$/, "").replace(/\./g, "");
  return `io.k8s.api.${pkg}.${r.version}.${r.kind}`;
}

function fromPrune(s: Schema | undefined): Field {
  if (s === undefined || s === true) return any();
  if (Array.isArray(s)) return { t: "list", of: fromPrune(s[0]) };
  return obj(Object.fromEntries(Object.entries(s).map(([k, v]) => [k, fromPrune(v)])));
}

export function describe(r: ResourceType): Field {
  if (r.schema) return r.schema;
  const d = fromPrune(SCHEMAS[r.group ? `${r.group}/${r.kind}` : r.kind]);
  return d.t === "object" ? d : obj({});
}

/** One Field as an OpenAPI v3 schema. */
function toOpenApi(f: Field): Obj {
  const d = f.d ? { description: f.d } : {};
  switch (f.t) {
    case "object": {
      if (f.ref) return { allOf: [{ $ref: `#/components/schemas/${f.ref}` }], default: {}, ...d };
      return { type: "object", ...d, properties: Object.fromEntries(Object.entries(f.props).map(([k, v]) => [k, toOpenApi(v)])), ...(f.required ? { required: f.required } : {}) };
    }
    case "map":
      return { type: "object", ...d, additionalProperties: toOpenApi(f.of) };
    case "list":
      return {
        type: "array",
        ...d,
        items: toOpenApi(f.of),
        ...(f.mergeKey ? { "x-kubernetes-patch-merge-key": f.mergeKey } : {}),
        ...(f.strategy ? { "x-kubernetes-patch-strategy": f.strategy } : {}),
      };
    case "any":
      return { type: "object", ...d, "x-kubernetes-preserve-unknown-fields": true };
    case "int-or-string":
      return { allOf: [{ $ref: `#/components/schemas/${INT_OR_STRING}` }], ...d };
    case "date-time":
      return { type: "string", format: "date-time", ...d };
    case "quantity":
      return { type: "string", ...d };
    default:
      return { type: f.t, ...d, ...(f.enum ? { enum: f.enum } : {}) };
  }
}

function kindSchema(r: Pick<ResourceType, "group" | "version" | "kind">, f: Field): Obj {
  const body = f.t === "object" ? f.props : {};
  const gv = r.group ? `${r.group}/${r.version}` : r.version;
  return {
    type: "object",
    description: f.d ?? `${r.kind} (${gv}).`,
    properties: {
      apiVersion: { type: "string", description: "APIVersion defines the versioned schema of this representation of an object." },
      kind: { type: "string", description: "Kind is a string value representing the REST resource this object represents." },
      metadata: { allOf: [{ $ref: `#/components/schemas/${META_REF}` }], default: {}, description: "Standard object's metadata." },
      ...Object.fromEntries(Object.entries(body).map(([k, v]) => [k, toOpenApi(v)])),
    },
    "x-kubernetes-group-version-kind": [{ group: r.group, kind: r.kind, version: r.version }],
  };
}

const query = (name: string, description: string) => ({ name, in: "query", description, schema: { type: "string", uniqueItems: true } });
const WRITE_PARAMS = [
  query("dryRun", "When present, indicates that modifications should not be persisted (All)."),
  query("fieldManager", "A name associated with the actor or entity that is making these changes."),
  query("fieldValidation", "How the server handles unknown or duplicate fields: Ignore, Warn (default) or Strict."),
];
const PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json"];
/** Custom resources take no strategic merge patch (kube-apiserver answers 415): kubectl sees that here and computes a JSON merge patch. */
const CUSTOM_PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json"];

function operation(action: string, gvk: Obj, id: string, ref: string, params: Obj[] = [], patch: false | string[] = false): Obj {
  const content = { "application/json": { schema: { $ref: `#/components/schemas/${ref}` } } };
  return {
    operationId: id,
    ...(params.length ? { parameters: params } : {}),
    ...(action === "put" || action === "post" ? { requestBody: { content, required: true } } : {}),
    ...(patch ? { requestBody: { content: Object.fromEntries(patch.map((t) => [t, { schema: { type: "object" } }])), required: true } } : {}),
    responses: { "200": { description: "OK", content } },
    "x-kubernetes-action": action,
    "x-kubernetes-group-version-kind": gvk,
  };
}

function pathsOf(r: ResourceType): Obj {
  const prefix = r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
  const base = r.namespaced ? `${prefix}/namespaces/{namespace}/${r.plural}` : `${prefix}/${r.plural}`;
  const gvk = { group: r.group, version: r.version, kind: r.kind };
  const ref = definitionName(r);
  const id = `${r.group.split(".")[0] || "core"}${r.version}${r.kind}`.replace(/^./, (c) => c.toUpperCase());
  const patchTypes = r.crd ? CUSTOM_PATCH_TYPES : PATCH_TYPES;
  const nsParam = r.namespaced ? [{ name: "namespace", in: "path", required: true, schema: { type: "string" } }] : [];
  const item = { parameters: [{ name: "name", in: "path", required: true, schema: { type: "string" } }, ...nsParam] };
  const out: Obj = {
    [base]: { ...(nsParam.length ? { parameters: nsParam } : {}), get: operation("list", gvk, `list${id}`, ref), post: operation("post", gvk, `create${id}`, ref, WRITE_PARAMS) },
    [`${base}/{name}`]: {
      ...item,
      get: operation("get", gvk, `read${id}`, ref),
      put: operation("put", gvk, `replace${id}`, ref, WRITE_PARAMS),
      patch: operation("patch", gvk, `patch${id}`, ref, WRITE_PARAMS, patchTypes),
      delete: operation("delete", gvk, `delete${id}`, ref),
    },
  };
  if (r.hasStatus) {
    out[`${base}/{name}/status`] = {
      ...item,
      get: operation("get", gvk, `read${id}Status`, ref),
      put: operation("put", gvk, `replace${id}Status`, ref, WRITE_PARAMS),
      patch: operation("patch", gvk, `patch${id}Status`, ref, WRITE_PARAMS, patchTypes),
    };
  }
  if (r.scale) {
    const sgvk = { group: "autoscaling", version: "v1", kind: "Scale" };
    const sref = "io.k8s.api.autoscaling.v1.Scale";
    out[`${base}/{name}/scale`] = {
      ...item,
      get: operation("get", sgvk, `read${id}Scale`, sref),
      put: operation("put", sgvk, `replace${id}Scale`, sref, WRITE_PARAMS),
      patch: operation("patch", sgvk, `patch${id}Scale`, sref, WRITE_PARAMS, patchTypes),
    };
  }
  return out;
}

const gvOf = (r: ResourceType) => apiVersionOf(r);
const docKey = (gv: string) => (gv.includes("/") ? `apis/${gv}` : `api/${gv}`);

/** The document for one group-version (`api/v1`, `apis/apps/v1`), or undefined. */
export function groupVersionDocument(key: string): Obj | undefined {
  const rs = RESOURCES.filter((r) => docKey(gvOf(r)) === key && !r.storage);
  const views = RESOURCES.filter((r) => docKey(gvOf(r)) === key && r.storage);
  const all = [...rs, ...views];
  if (all.length === 0) return undefined;
  const schemas: Obj = {
    [META_REF]: toOpenApi({ ...OBJECT_META, ref: undefined } as Field),
    [INT_OR_STRING]: { type: "string", format: "int-or-string", description: "IntOrString is a type that can hold an int32 or a string." },
  };
  let paths: Obj = {};
  for (const r of all) {
    schemas[definitionName(r)] = kindSchema(r, describe(r));
    paths = { ...paths, ...pathsOf(r) };
    if (r.scale) schemas["io.k8s.api.autoscaling.v1.Scale"] = kindSchema({ group: "autoscaling", version: "v1", kind: "Scale" }, SCALE);
  }
  return {
    openapi: "3.0.0",
    info: { title: "Kubernetes", version: VERSION_INFO.gitVersion },
    paths,
    components: { schemas },
  };
}

const hashes = new Map<string, string>();
function hashOf(key: string): string {
  let h = hashes.get(key);
  if (!h) {
    h = createHash("sha512").update(JSON.stringify(groupVersionDocument(key))).digest("hex").toUpperCase();
    hashes.set(key, h);
  }
  return h;
}

/** GET /openapi/v3: where each group-version's document is. */
export function openApiRoot(): Obj {
  const keys = [...new Set(RESOURCES.map((r) => docKey(gvOf(r))))].sort();
  return { paths: Object.fromEntries(keys.map((k) => [k, { serverRelativeURL: `/openapi/v3/${k}?hash=${hashOf(k)}` }])) };
}
