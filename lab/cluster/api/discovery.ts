// Legacy (unaggregated) discovery documents: what kubectl reads to map
// `svc` -> services/v1 before it makes a request. kubectl asks for aggregated
// discovery first and falls back to these when the answer is plain JSON.
import { RESOURCES, type ResourceType } from "./resources.ts";
import type { Obj } from "./selectors.ts";

const VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"];

function resourceEntries(r: ResourceType): Obj[] {
  const main: Obj = {
    name: r.plural,
    singularName: r.singular,
    namespaced: r.namespaced,
    kind: r.kind,
    verbs: VERBS,
    ...(r.shortNames.length ? { shortNames: r.shortNames } : {}),
    ...(r.categories ? { categories: r.categories } : r.plural === "services" ? { categories: ["all"] } : r.crd ? { categories: ["gateway-api"] } : {}),
  };
  const status = r.hasStatus
    ? [{ name: `${r.plural}/status`, singularName: "", namespaced: r.namespaced, kind: r.kind, verbs: ["get", "patch", "update"] }]
    : [];
  const scale = r.scale
    ? [{ name: `${r.plural}/scale`, singularName: "", namespaced: r.namespaced, group: "autoscaling", version: "v1", kind: "Scale", verbs: ["get", "patch", "update"] }]
    : [];
  const log = r.graceful ? [{ name: `${r.plural}/log`, singularName: "", namespaced: r.namespaced, kind: r.kind, verbs: ["get"] }] : [];
  // kubectl drain looks for pods/eviction (kind Eviction, group policy) here before it evicts instead of deleting.
  const eviction = r.graceful
    ? [{ name: `${r.plural}/eviction`, singularName: "", namespaced: r.namespaced, group: "policy", version: "v1", kind: "Eviction", verbs: ["create"] }]
    : [];
  return [main, ...status, ...scale, ...log, ...eviction];
}

type Served = (r: ResourceType) => boolean;
const always: Served = () => true;

function groupVersions(served: Served): Map<string, ResourceType[]> {
  const m = new Map<string, ResourceType[]>();
  for (const r of RESOURCES.filter(served)) {
    const gv = r.group ? `${r.group}/${r.version}` : r.version;
    m.set(gv, [...(m.get(gv) ?? []), r]);
  }
  return m;
}

export function apiVersions(serverAddress: string): Obj {
  return { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress }] };
}

/** A group with every version it serves; the first one listed in RESOURCES is preferred. */
function apiGroup(group: string, served: Served): Obj {
  const versions = [...new Set(RESOURCES.filter((r) => r.group === group && served(r)).map((r) => r.version))].map((version) => ({ groupVersion: `${group}/${version}`, version }));
  return { name: group, versions, preferredVersion: versions[0] };
}

export function apiGroupList(served: Served = always): Obj {
  const groups = [...new Set(RESOURCES.filter((r) => r.group && served(r)).map((r) => r.group))].map((g) => apiGroup(g, served));
  return { kind: "APIGroupList", apiVersion: "v1", groups };
}

export function apiGroupDoc(group: string, served: Served = always): Obj | undefined {
  const r = RESOURCES.find((x) => x.group === group && served(x));
  return r ? { kind: "APIGroup", apiVersion: "v1", ...apiGroup(group, served) } : undefined;
}

export function apiResourceList(groupVersion: string, served: Served = always): Obj | undefined {
  const rs = groupVersions(served).get(groupVersion);
  if (!rs) return undefined;
  return { kind: "APIResourceList", apiVersion: "v1", groupVersion, resources: rs.flatMap(resourceEntries) };
}

export const VERSION_INFO = {
  major: "1",
  minor: "32",
  gitVersion: "v1.32.4-edgelb-fake",
  gitCommit: "0000000000000000000000000000000000000000",
  gitTreeState: "clean",
  buildDate: "2026-01-01T00:00:00Z",
  goVersion: "go1.23.8",
  compiler: "gc",
  platform: "linux/amd64",
};
