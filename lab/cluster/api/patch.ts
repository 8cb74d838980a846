// The three patch types the API server accepts: JSON merge patch (RFC 7386),
// JSON patch (RFC 6902) and an approximation of strategic merge patch (lists
// of named items merge by key; the directives kubectl sends are honoured).
import { ApiError, errors } from "./status.ts";
import type { Obj } from "./selectors.ts";

const isMap = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isMap(patch)) return structuredClone(patch);
  const out: Obj = isMap(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

// ---- JSON patch ----

interface JsonPatchOp {
  op: string;
  path: string;
  value?: unknown;
  from?: string;
}

function pointer(path: string): string[] {
  if (path === "") return [];
  if (!path.startsWith("/")) throw invalidPatch(`invalid JSON pointer "${path}"`);
  return path
    .slice(1)
    .split("/")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function invalidPatch(message: string): ApiError {
  return new ApiError(422, "Invalid", message);
}

function resolveParent(doc: unknown, parts: string[], path: string): { parent: any; key: string } {
  let cur: any = doc;
  for (const p of parts.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[Number(p)];
    else if (isMap(cur)) cur = cur[p];
    else cur = undefined;
    if (cur === undefined) throw invalidPatch(`doc is missing path: "${path}": missing value`);
  }
  return { parent: cur, key: parts[parts.length - 1]! };
}

function getAt(doc: unknown, path: string): unknown {
  let cur: any = doc;
  for (const p of pointer(path)) {
    cur = Array.isArray(cur) ? cur[Number(p)] : isMap(cur) ? cur[p] : undefined;
    if (cur === undefined) throw invalidPatch(`doc is missing path: "${path}": missing value`);
  }
  return cur;
}

export function jsonPatch(target: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw errors.badRequest("json: cannot unmarshal object into Go value of type jsonpatch.Patch");
  let doc: any = structuredClone(target);
  for (const raw of ops as JsonPatchOp[]) {
    const parts = pointer(raw.path);
    const add = (value: unknown) => {
      if (parts.length === 0) {
        doc = structuredClone(value);
        return;
      }
      const { parent, key } = resolveParent(doc, parts, raw.path);
      if (Array.isArray(parent)) {
        const i = key === "-" ? parent.length : Number(key);
        if (!(i >= 0 && i <= parent.length)) throw invalidPatch(`add operation does not apply: doc is missing path: "${raw.path}": missing value`);
        parent.splice(i, 0, structuredClone(value));
      } else if (isMap(parent)) parent[key] = structuredClone(value);
      else throw invalidPatch(`add operation does not apply: doc is missing path: "${raw.path}": missing value`);
    };
    const remove = (path: string, p: string[]) => {
      const { parent, key } = resolveParent(doc, p, path);
      if (Array.isArray(parent)) {
        const i = Number(key);
        if (!(i >= 0 && i < parent.length)) throw invalidPatch(`remove operation does not apply: doc is missing path: "${path}": missing value`);
        return parent.splice(i, 1)[0];
      }
      if (!isMap(parent) || !(key in parent)) throw invalidPatch(`remove operation does not apply: doc is missing path: "${path}": missing value`);
      const v = parent[key];
      delete parent[key];
      return v;
    };
    switch (raw.op) {
      case "add":
        add(raw.value);
        break;
      case "remove":
        remove(raw.path, parts);
        break;
      case "replace":
        getAt(doc, raw.path);
        if (parts.length === 0) doc = structuredClone(raw.value);
        else {
          const { parent, key } = resolveParent(doc, parts, raw.path);
          if (Array.isArray(parent)) parent[Number(key)] = structuredClone(raw.value);
          else parent[key] = structuredClone(raw.value);
        }
        break;
      case "move": {
        const v = remove(raw.from ?? "", pointer(raw.from ?? ""));
        add(v);
        break;
      }
      case "copy":
        add(getAt(doc, raw.from ?? ""));
        break;
      case "test": {
        const v = getAt(doc, raw.path);
        if (JSON.stringify(v) !== JSON.stringify(raw.value)) throw invalidPatch(`testing value ${raw.path} failed: test failed`);
        break;
      }
      default:
        throw invalidPatch(`Unexpected kind: ${raw.op}`);
    }
  }
  return doc;
}

// ---- strategic merge patch ----

/** Merge keys of lists that merge by item (dotted path from the object root). */
export type PatchSchema = Record<string, { mergeKey?: string }>;

const SET_ORDER = "$setElementOrder/";
const DELETE_PRIMITIVE = "$deleteFromPrimitiveList/";

function orderBy(list: unknown[], order: unknown[] | undefined, key: string | undefined): unknown[] {
  if (!order) return list;
  const id = (v: unknown) => JSON.stringify(key && isMap(v) ? v[key] : v);
  const rank = new Map(order.map((o, i) => [id(o), i]));
  return list
    .map((v, i) => ({ v, i, r: rank.get(id(v)) ?? order.length + i }))
    .sort((a, b) => a.r - b.r)
    .map((x) => x.v);
}

export function strategicMergePatch(target: unknown, patch: unknown, schema: PatchSchema, path = ""): unknown {
  if (!isMap(patch)) return structuredClone(patch);
  if (patch["$patch"] === "replace") {
    const { $patch: _drop, ...rest } = patch;
    return stripDirectives(rest);
  }
  if (patch["$patch"] === "delete") return undefined;
  let out: Obj = isMap(target) ? { ...target } : {};
  const retain = patch["$retainKeys"];
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith("$")) continue;
    const childPath = path ? `${path}.${k}` : k;
    if (v === null) {
      delete out[k];
      continue;
    }
    const spec = schema[childPath];
    if (Array.isArray(v) && spec) {
      out[k] = mergeList(Array.isArray(out[k]) ? out[k] : [], v, spec.mergeKey, schema, childPath);
    } else if (isMap(v)) {
      const merged = strategicMergePatch(out[k], v, schema, childPath);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    } else {
      out[k] = structuredClone(v);
    }
  }
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith(DELETE_PRIMITIVE) && Array.isArray(v)) {
      const field = k.slice(DELETE_PRIMITIVE.length);
      if (Array.isArray(out[field])) out[field] = out[field].filter((x: unknown) => !v.includes(x));
    }
    if (k.startsWith(SET_ORDER) && Array.isArray(v)) {
      const field = k.slice(SET_ORDER.length);
      const spec = schema[path ? `${path}.${field}` : field];
      if (Array.isArray(out[field])) out[field] = orderBy(out[field], v, spec?.mergeKey);
    }
  }
  if (Array.isArray(retain)) {
    out = Object.fromEntries(Object.entries(out).filter(([k]) => retain.includes(k)));
  }
  return out;
}

function mergeList(orig: unknown[], patch: unknown[], mergeKey: string | undefined, schema: PatchSchema, path: string): unknown[] {
  if (!mergeKey) {
    // A list of primitives with the merge strategy (finalizers): union.
    const out = [...orig];
    for (const v of patch) if (!out.some((o) => JSON.stringify(o) === JSON.stringify(v))) out.push(structuredClone(v));
    return out;
  }
  if (patch.some((p) => isMap(p) && p["$patch"] === "replace")) {
    return patch.filter((p) => !(isMap(p) && p["$patch"] === "replace")).map(stripDirectives);
  }
  const out = orig.map((o) => structuredClone(o));
  for (const p of patch) {
    if (!isMap(p) || !(mergeKey in p)) {
      throw errors.badRequest(`map: ${JSON.stringify(p)} does not contain declared merge key: ${mergeKey}`);
    }
    const i = out.findIndex((o) => isMap(o) && o[mergeKey] === p[mergeKey]);
    if (p["$patch"] === "delete") {
      if (i >= 0) out.splice(i, 1);
      continue;
    }
    if (i >= 0) out[i] = strategicMergePatch(out[i], p, schema, path);
    else out.push(stripDirectives(p));
  }
  return out;
}

function stripDirectives(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripDirectives);
  if (!isMap(v)) return v;
  return Object.fromEntries(Object.entries(v).filter(([k]) => !k.startsWith("$")).map(([k, x]) => [k, stripDirectives(x)]));
}

export const PATCH_TYPES = [
  "application/json-patch+json",
  "application/merge-patch+json",
  "application/strategic-merge-patch+json",
] as const;

/** Applies a PATCH body of the given content type to the current object. */
export function applyPatch(contentType: string, current: Obj, body: unknown, schema: PatchSchema): Obj {
  const type = contentType.split(";")[0]!.trim().toLowerCase();
  let out: unknown;
  switch (type) {
    case "application/json-patch+json":
      out = jsonPatch(current, body);
      break;
    case "application/merge-patch+json":
      if (!isMap(body)) throw errors.badRequest("json: cannot unmarshal array into Go value of type map[string]interface {}");
      out = mergePatch(current, body);
      break;
    case "application/strategic-merge-patch+json":
      if (!isMap(body)) throw errors.badRequest("json: cannot unmarshal array into Go value of type map[string]interface {}");
      out = strategicMergePatch(current, body, schema);
      break;
    default:
      throw errors.unsupportedMediaType(
        `the body of the request was in an unknown format - accepted media types include: ${PATCH_TYPES.join(", ")}`,
      );
  }
  if (!isMap(out)) throw new ApiError(422, "Invalid", "the patched object is not a JSON object");
  return out;
}
