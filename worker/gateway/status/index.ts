// Pure: one cluster's Gateway API routes as the status page shows them —
// hostname → routes → rules (matches, backends by weight) — and every route
// the edge does not serve, with why: refused by the agent (its status reason,
// published in snapshot.gateway.refused), a hostname another cluster owns, or
// a filter entry dropped at load. Bounded output: a status call never grows
// with a tenant's route count beyond the limits below (the rest is counted).
import type { GatewayMatch, GatewayRoute } from "../../snapshot/gateway.ts";
import type { Snapshot } from "../../snapshot/schema.ts";
import type { GatewayIndex } from "../index.ts";

/** Hostnames listed per cluster, and routes listed per hostname. */
export const STATUS_MAX_HOSTNAMES = 200;
export const STATUS_MAX_ROUTES_PER_HOSTNAME = 50;
export const STATUS_MAX_REFUSED = 200;

export interface GatewayRuleStatus {
  /** Each match as one line: "PathPrefix /api · method POST · header x-canary=true". */
  matches: string[];
  /** "namespace/name:port" and weight, or why the backendRef is invalid (its share answers 500). */
  backends: { backend: string | null; weight: number; invalid: string | null }[];
  /** What the rule's filters do (e.g. "RequestRedirect 302"). */
  filters: string[];
}

export interface GatewayRouteStatus {
  route: string;
  gateway: string;
  listener: string | null;
  rules: GatewayRuleStatus[];
}

export interface GatewayHostnameStatus {
  hostname: string;
  routes: GatewayRouteStatus[];
  /** Routes on this hostname not listed (over STATUS_MAX_ROUTES_PER_HOSTNAME). */
  moreRoutes: number;
}

export interface GatewayRefusal {
  route: string;
  gateway: string | null;
  reason: string;
}

export interface GatewayClusterStatus {
  routes: number;
  hostnames: GatewayHostnameStatus[];
  moreHostnames: number;
  refused: GatewayRefusal[];
  moreRefused: number;
}

function describeMatch(m: GatewayMatch): string {
  const parts = [`${m.path.type} ${m.path.value}`];
  if (m.method) parts.push(`method ${m.method}`);
  for (const h of m.headers) parts.push(`header ${h.name}${h.type === "Exact" ? "=" : "~"}${h.value}`);
  for (const q of m.queryParams) parts.push(`query ${q.name}${q.type === "Exact" ? "=" : "~"}${q.value}`);
  return parts.join(" · ");
}

function describeRule(rule: GatewayRoute["rules"][number]): GatewayRuleStatus {
  return {
    matches: rule.matches.map(describeMatch),
    backends: rule.backendRefs.map((b) =>
      "invalid" in b ? { backend: null, weight: b.weight, invalid: b.invalid } : { backend: `${b.namespace}/${b.name}:${b.port}`, weight: b.weight, invalid: null },
    ),
    filters: rule.filters.map((f) => (f.type === "RequestRedirect" ? `RequestRedirect ${f.requestRedirect.statusCode}` : f.type)),
  };
}

/** The status of one cluster's routes; undefined when its snapshot has no Gateway section. */
export function gatewayStatus(cluster: string, snapshot: Snapshot | undefined, index: GatewayIndex): GatewayClusterStatus | undefined {
  const section = snapshot?.gateway;
  if (!section || (section.routes.length === 0 && section.refused.length === 0)) return undefined;
  const byHost = new Map<string, GatewayRoute[]>();
  for (const r of section.routes) {
    for (const h of new Set(r.hostnames)) {
      const list = byHost.get(h);
      if (list) list.push(r);
      else byHost.set(h, [r]);
    }
  }
  const hosts = [...byHost.keys()].sort();
  const hostnames = hosts.slice(0, STATUS_MAX_HOSTNAMES).map((hostname): GatewayHostnameStatus => {
    const routes = byHost.get(hostname)!;
    return {
      hostname,
      routes: routes.slice(0, STATUS_MAX_ROUTES_PER_HOSTNAME).map((r) => ({
        route: `${r.namespace}/${r.name}`,
        gateway: r.gateway,
        listener: r.listener ?? null,
        rules: r.rules.map(describeRule),
      })),
      moreRoutes: Math.max(0, routes.length - STATUS_MAX_ROUTES_PER_HOSTNAME),
    };
  });
  const refused: GatewayRefusal[] = section.refused.map((r) => ({ route: `${r.namespace}/${r.name}`, gateway: r.gateway, reason: r.reason }));
  for (const c of index.conflicts) {
    if (c.dropped === cluster)
      refused.push({
        route: `every route for ${c.hostname}`,
        gateway: null,
        reason: c.under
          ? `hostname ${c.hostname} is under ${c.under}, which cluster ${c.kept} serves and comes first in EDGELB_CLUSTERS`
          : `hostname ${c.hostname} is served by cluster ${c.kept}, which comes first in EDGELB_CLUSTERS`,
      });
  }
  const mine = `cluster ${cluster}, `;
  for (const p of index.problems) if (p.startsWith(mine)) refused.push({ route: p.slice(mine.length).split(":")[0]!, gateway: null, reason: `filter entry ignored: ${p.slice(mine.length)}` });
  return {
    routes: section.routes.length,
    hostnames,
    moreHostnames: Math.max(0, hosts.length - STATUS_MAX_HOSTNAMES),
    refused: refused.slice(0, STATUS_MAX_REFUSED),
    moreRefused: Math.max(0, refused.length - STATUS_MAX_REFUSED),
  };
}
