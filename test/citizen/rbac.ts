// RBAC as the API server evaluates it, for checking deploy/ against the
// requests the agent really makes. requestAttributes() follows the API
// server's RequestInfoFactory: the URL says the group, resource, subresource,
// namespace and name; the method (and ?watch) says the verb.
import type { V1PolicyRule } from "@kubernetes/client-node";

export interface RequestAttributes {
  verb: string;
  apiGroup: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
}

export function requestAttributes(method: string, url: string): RequestAttributes | null {
  const u = new URL(url, "http://x");
  const parts = u.pathname.split("/").filter(Boolean);
  let rest: string[];
  let apiGroup: string;
  if (parts[0] === "api" && parts.length >= 2) {
    apiGroup = "";
    rest = parts.slice(2);
  } else if (parts[0] === "apis" && parts.length >= 3) {
    apiGroup = parts[1]!;
    rest = parts.slice(3);
  } else {
    return null; // discovery, /version, /healthz: non-resource URLs
  }
  if (rest.length === 0) return null; // group discovery
  // Legacy watch paths: /api/v1/watch/namespaces/x/services
  let watchPath = false;
  if (rest[0] === "watch") {
    watchPath = true;
    rest = rest.slice(1);
  }
  let namespace = "";
  if (rest[0] === "namespaces" && rest.length >= 3) {
    namespace = rest[1]!;
    rest = rest.slice(2);
  }
  const resource = rest[0] ?? "";
  const name = rest[1] ?? "";
  const subresource = rest[2] ?? "";
  if (resource === "namespaces" && rest.length >= 2 && !namespace) namespace = name;
  const watch = watchPath || ["true", "1"].includes(u.searchParams.get("watch") ?? "");
  let verb: string;
  switch (method.toUpperCase()) {
    case "GET":
    case "HEAD":
      verb = watch ? "watch" : name ? "get" : "list";
      break;
    case "POST":
      verb = "create";
      break;
    case "PUT":
      verb = "update";
      break;
    case "PATCH":
      verb = "patch";
      break;
    case "DELETE":
      verb = name ? "delete" : "deletecollection";
      break;
    default:
      verb = method.toLowerCase();
  }
  return { verb, apiGroup, resource, subresource, namespace, name };
}

function matches(list: readonly string[] | undefined, value: string): boolean {
  return (list ?? []).includes("*") || (list ?? []).includes(value);
}

export function ruleAllows(rule: V1PolicyRule, a: RequestAttributes): boolean {
  const res = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  if (!matches(rule.verbs, a.verb)) return false;
  if (!matches(rule.apiGroups, a.apiGroup)) return false;
  if (!matches(rule.resources, res)) return false;
  if (rule.resourceNames && rule.resourceNames.length > 0 && !rule.resourceNames.includes(a.name)) return false;
  return true;
}

export interface Grants {
  /** ClusterRole rules bound cluster-wide. */
  cluster: readonly V1PolicyRule[];
  /** Role rules bound in one namespace. */
  namespaced: { namespace: string; rules: readonly V1PolicyRule[] };
}

export function allowed(g: Grants, a: RequestAttributes): boolean {
  if (g.cluster.some((r) => ruleAllows(r, a))) return true;
  return a.namespace === g.namespaced.namespace && g.namespaced.rules.some((r) => ruleAllows(r, a));
}

export function describeRequest(a: RequestAttributes): string {
  const res = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  return `${a.verb} ${a.apiGroup || "core"}/${res}${a.namespace ? ` in ${a.namespace}` : ""}${a.name ? ` name=${a.name}` : ""}`;
}
