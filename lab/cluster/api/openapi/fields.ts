// A compact description of a kind's fields: one source for the OpenAPI
// documents kubectl reads (validation support, `kubectl explain`, strategic
// merge keys) and for the unknown-field pruning the store does on write.
import type { Schema } from "../prune.ts";

export type Scalar = "string" | "integer" | "boolean" | "number" | "int-or-string" | "date-time" | "quantity";

export type Field =
  | { t: Scalar; d?: string; enum?: string[] }
  | { t: "object"; d?: string; props: Record<string, Field>; required?: string[]; ref?: string }
  | { t: "map"; d?: string; of: Field }
  | { t: "list"; d?: string; of: Field; mergeKey?: string; strategy?: "merge" | "merge,retainKeys" }
  /** Any JSON kept as is (deep structures this simulator does not look into). */
  | { t: "any"; d?: string };

export const str = (d?: string, values?: string[]): Field => ({ t: "string", ...(d ? { d } : {}), ...(values ? { enum: values } : {}) });
export const int = (d?: string): Field => ({ t: "integer", ...(d ? { d } : {}) });
export const bool = (d?: string): Field => ({ t: "boolean", ...(d ? { d } : {}) });
export const intOrString = (d?: string): Field => ({ t: "int-or-string", ...(d ? { d } : {}) });
export const time = (d?: string): Field => ({ t: "date-time", ...(d ? { d } : {}) });
export const any = (d?: string): Field => ({ t: "any", ...(d ? { d } : {}) });
export const strMap = (d?: string): Field => ({ t: "map", of: str(), ...(d ? { d } : {}) });
export const obj = (props: Record<string, Field>, d?: string, required?: string[]): Field => ({ t: "object", props, ...(d ? { d } : {}), ...(required ? { required } : {}) });
export const list = (of: Field, d?: string, mergeKey?: string): Field => ({ t: "list", of, ...(d ? { d } : {}), ...(mergeKey ? { mergeKey, strategy: "merge" as const } : {}) });
/** A list of strings merged as a set by strategic merge patch (finalizers). */
export const stringSet = (d?: string): Field => ({ t: "list", of: str(), strategy: "merge", ...(d ? { d } : {}) });

/** The prune schema (known fields) of a description. */
export function pruneSchema(f: Field): Schema {
  if (f.t === "object") return Object.fromEntries(Object.entries(f.props).map(([k, v]) => [k, pruneSchema(v)]));
  if (f.t === "list") {
    const inner = pruneSchema(f.of);
    return inner === true ? true : [inner];
  }
  return true;
}

/** Dotted paths of lists with a merge key, for the store's strategic merge patch. */
export function mergeKeys(f: Field, path = ""): Record<string, { mergeKey?: string }> {
  const out: Record<string, { mergeKey?: string }> = {};
  const walk = (x: Field, p: string) => {
    if (x.t === "object") for (const [k, v] of Object.entries(x.props)) walk(v, p ? `${p}.${k}` : k);
    else if (x.t === "list") {
      if (x.strategy) out[p] = x.mergeKey ? { mergeKey: x.mergeKey } : {};
      walk(x.of, p);
    }
  };
  walk(f, path);
  return out;
}
