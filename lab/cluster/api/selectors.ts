// Label and field selectors as the API server parses them (the subset real
// clients send: equality, inequality, set-based, existence).
import { errors } from "./status.ts";

export type Obj = Record<string, any>;

type Requirement =
  | { key: string; op: "=" | "!="; value: string }
  | { key: string; op: "in" | "notin"; values: string[] }
  | { key: string; op: "exists" | "!exists" };

export type Selector = (labels: Record<string, string>) => boolean;

/** Splits on commas that are not inside parentheses. */
function splitTopLevel(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of s) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out.map((p) => p.trim()).filter((p) => p !== "");
}

export function parseLabelSelector(raw: string | null | undefined): Selector {
  if (!raw || raw.trim() === "") return () => true;
  const reqs: Requirement[] = splitTopLevel(raw).map((part) => {
    let m = /^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(part);
    if (m) return { key: m[1]!, op: m[2] as "in" | "notin", values: m[3]!.split(",").map((v) => v.trim()) };
    m = /^([^\s!=]+)\s*(==|=|!=)\s*([^\s]*)$/.exec(part);
    if (m) return { key: m[1]!, op: m[2] === "!=" ? "!=" : "=", value: m[3]! };
    m = /^!\s*([^\s!=]+)$/.exec(part);
    if (m) return { key: m[1]!, op: "!exists" };
    m = /^([^\s!=()]+)$/.exec(part);
    if (m) return { key: m[1]!, op: "exists" };
    throw errors.badRequest(`unable to parse requirement: found '${part}', expected: in, notin, =, ==, !=, gt, lt`);
  });
  return (labels) =>
    reqs.every((r) => {
      const has = Object.prototype.hasOwnProperty.call(labels, r.key);
      const v = labels[r.key];
      switch (r.op) {
        case "=":
          return has && v === r.value;
        case "!=":
          return !has || v !== r.value;
        case "in":
          return has && r.values.includes(v!);
        case "notin":
          return !has || !r.values.includes(v!);
        case "exists":
          return has;
        case "!exists":
          return !has;
      }
    });
}

export type FieldSelector = (obj: Obj) => boolean;

// Boolean fields the server renders with strconv.FormatBool: unset is "false".
const BOOLEAN_FIELDS = new Set(["spec.unschedulable", "spec.hostNetwork"]);

function getPath(obj: Obj, path: string): string {
  let cur: any = obj;
  for (const k of path.split(".")) cur = cur?.[k];
  if (cur === undefined || cur === null) return BOOLEAN_FIELDS.has(path) ? "false" : "";
  return String(cur);
}

/**
 * Field selectors are only allowed on the fields a resource declares (the real
 * server answers 400 for anything else), with =, == and !=.
 */
export function parseFieldSelector(raw: string | null | undefined, allowed: readonly string[]): FieldSelector {
  if (!raw || raw.trim() === "") return () => true;
  const reqs = raw
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "")
    .map((part) => {
      const m = /^([^!=]+?)\s*(==|=|!=)\s*(.*)$/.exec(part);
      if (!m) throw errors.badRequest(`invalid selector: '${raw}'; can't understand '${part}'`);
      const field = m[1]!;
      if (!allowed.includes(field)) {
        throw errors.badRequest(`field label not supported: ${field}`);
      }
      return { field, neg: m[2] === "!=", value: m[3]! };
    });
  return (obj) => reqs.every((r) => (getPath(obj, r.field) === r.value) !== r.neg);
}
