// Pure: the snapshots' Gateway sections in, a hostname → match table index out,
// built once per snapshot change (ConfigStore.rebuild), never per request.
// A decision (decide) is: the hostname's table (exact name, else the longest
// matching `*.suffix`, else `*`), the winning rule in spec precedence, then a
// backendRef chosen by weight. It yields the same Route the proxy serves a
// LoadBalancer Service with, so node choice, failover and ejection are the
// proxy's, unchanged.
import { nodeTable, serviceBackend, type Route } from "../config/routes.ts";
import { backendKey, type GatewayRoute, type GatewayRule } from "../snapshot/gateway.ts";
import type { Snapshot } from "../snapshot/schema.ts";
import { compileFilters, type RuleFilters } from "./filters/index.ts";
import { buildMatchTable, matchRequest, type EntrySource, type MatchInput, type MatchTable } from "./match/index.ts";

/** One weighted backendRef of a rule: a Service's Route, or invalid (its share answers 500). */
export interface WeightedBackend {
  weight: number;
  route: Route | undefined;
  /** Why the backend is invalid (logged, never sent to the client). */
  invalid: string | undefined;
}

/** What a matching rule does. Shared by every hostname and match of the rule. */
export interface RuleAction {
  cluster: string;
  /** namespace/name of the HTTPRoute, and the rule index: for logs. */
  routeId: string;
  rule: number;
  filters: RuleFilters;
  backends: WeightedBackend[];
  totalWeight: number;
}

/**
 * A hostname's table (https:// requests, and http:// ones too unless `plain` is set).
 * plain: the table for http:// requests when the hostname has routes of both an HTTP and an
 * HTTPS listener: then each scheme sees only its own listener's routes, so an HTTP listener's
 * redirect to https does not answer the https requests it sends there (a loop).
 */
export type GatewayTable = MatchTable<RuleAction> & { pattern: string; plain?: MatchTable<RuleAction> };

/** The table for a request's scheme (http: or https:, as in URL.protocol). */
export function tableForScheme(table: GatewayTable, protocol: string): MatchTable<RuleAction> {
  return table.plain && protocol === "http:" ? table.plain : table;
}

export interface GatewayIndex {
  exact: Map<string, GatewayTable>;
  /** Keyed by the suffix after `*.`; matches any number of labels (the Gateway API's wildcard). */
  wildcard: Map<string, GatewayTable>;
  /** `*`: a listener and route with no hostname: every hostname no Service or other route claims. */
  any: GatewayTable | undefined;
  /** Number of hostname patterns. */
  size: number;
  /** Filter entries dropped while compiling (protected or invalid headers): logged once per snapshot change. */
  problems: string[];
  /**
   * Hostnames two clusters' routes claim: the first cluster in EDGELB_CLUSTERS order keeps it (as for Services).
   * under: the earlier cluster's `*.suffix` that covers the refused name (an exact name or a longer wildcard).
   */
  conflicts: { hostname: string; kept: string; dropped: string; under?: string }[];
}

export const EMPTY_GATEWAY_INDEX: GatewayIndex = { exact: new Map(), wildcard: new Map(), any: undefined, size: 0, problems: [], conflicts: [] };

export function buildGatewayIndex(snapshots: { cluster: string; snapshot: Snapshot }[]): GatewayIndex {
  const sources = new Map<string, EntrySource<RuleAction>[]>();
  // The listener protocol each entry came from (absent: an older agent's snapshot, serves both schemes).
  const protocols = new Map<EntrySource<RuleAction>, "HTTP" | "HTTPS">();
  const problems: string[] = [];
  // One owner per hostname across clusters: routes from two clusters are never mixed in one table.
  const owner = new Map<string, string>();
  const conflicts: GatewayIndex["conflicts"] = [];
  for (const { cluster, snapshot } of snapshots) {
    const section = snapshot.gateway;
    if (!section || section.routes.length === 0) continue;
    const table = nodeTable(cluster, snapshot);
    // One Route per backend Service port, shared by every rule that names it (one balancer state).
    const backends = new Map<string, Route>();
    for (const b of section.backends) {
      const id = `${b.namespace}/${b.name}`;
      const backend = serviceBackend(cluster, table, { ...b, hostnames: [] }, id);
      backends.set(backendKey(b), {
        pattern: `${id}:${b.port}`,
        cluster,
        services: [{ cluster, id }],
        policy: b.policy,
        backends: [backend],
        size: backend.size,
        healthyCount: backend.healthy.length,
        uniformWeights: !backend.weights || backend.weights.every((w) => w === 1),
      });
    }
    const mine = new Set<string>();
    for (const route of section.routes) {
      const hostnames = route.hostnames.filter((h) => {
        const o = owner.get(h);
        // A name under an earlier cluster's wildcard is that cluster's, as for Services
        // (config/routes.ts): otherwise an exact route would win the lookup over it.
        const under = o === undefined ? coveringWildcard(owner, h, cluster) : undefined;
        if ((o === undefined || o === cluster) && !under) {
          mine.add(h);
          return true;
        }
        if (!conflicts.some((c) => c.hostname === h && c.dropped === cluster)) conflicts.push({ hostname: h, kept: under ? owner.get(under)! : o!, dropped: cluster, ...(under ? { under } : {}) });
        return false;
      });
      if (hostnames.length > 0) addRoute(sources, protocols, cluster, hostnames.length === route.hostnames.length ? route : { ...route, hostnames }, backends, problems);
    }
    for (const h of mine) owner.set(h, cluster);
  }
  const index: GatewayIndex = { exact: new Map(), wildcard: new Map(), any: undefined, size: 0, problems, conflicts };
  for (const [pattern, list] of sources) {
    const split = list.some((e) => protocols.get(e) === "HTTP") && list.some((e) => protocols.get(e) === "HTTPS");
    const t: GatewayTable = split
      ? Object.assign(buildMatchTable(list.filter((e) => protocols.get(e) !== "HTTP")), { pattern, plain: buildMatchTable(list.filter((e) => protocols.get(e) !== "HTTPS")) })
      : Object.assign(buildMatchTable(list), { pattern });
    index.size++;
    if (pattern === "*") index.any = t;
    else if (pattern.startsWith("*.")) index.wildcard.set(pattern.slice(2), t);
    else index.exact.set(pattern, t);
  }
  return index;
}

/**
 * The `*.suffix` pattern of another (earlier) cluster that covers hostname
 * `host` (an exact name, or a longer `*.x.suffix`), if any. Gateway wildcards
 * match any number of labels, so every parent suffix is checked. `*` covers
 * nothing: it serves only names no other route or Service claims.
 */
function coveringWildcard(owner: Map<string, string>, host: string, cluster: string): string | undefined {
  if (host === "*") return undefined;
  const name = host.startsWith("*.") ? host.slice(2) : host;
  for (let dot = name.indexOf("."); dot > 0; dot = name.indexOf(".", dot + 1)) {
    const w = `*.${name.slice(dot + 1)}`;
    const o = owner.get(w);
    if (o !== undefined && o !== cluster) return w;
  }
  return undefined;
}

function addRoute(
  sources: Map<string, EntrySource<RuleAction>[]>,
  protocols: Map<EntrySource<RuleAction>, "HTTP" | "HTTPS">,
  cluster: string,
  route: GatewayRoute,
  backends: Map<string, Route>,
  problems: string[],
): void {
  const routeId = `${route.namespace}/${route.name}`;
  const createdAt = Date.parse(route.creationTimestamp);
  const actions = route.rules.map((rule, i) => {
    const action = ruleAction(cluster, routeId, i, rule, backends);
    for (const p of action.filters.ignored) problems.push(`cluster ${cluster}, HTTPRoute ${routeId}, rule ${i}: ${p}`);
    return action;
  });
  const seen = new Set<string>();
  for (const host of route.hostnames) {
    // A hostname listed twice (or by two listeners of one attachment) adds the rules once.
    if (seen.has(host)) continue;
    seen.add(host);
    let list = sources.get(host);
    if (!list) sources.set(host, (list = []));
    route.rules.forEach((rule, r) => {
      rule.matches.forEach((match, m) => {
        const entry: EntrySource<RuleAction> = { match, createdAt, routeId, rule: r, matchIndex: m, target: actions[r]! };
        if (route.protocol) protocols.set(entry, route.protocol);
        list.push(entry);
      });
    });
  }
}

function ruleAction(cluster: string, routeId: string, rule: number, spec: GatewayRule, backends: Map<string, Route>): RuleAction {
  const list: WeightedBackend[] = spec.backendRefs.map((ref) => {
    if ("invalid" in ref) return { weight: ref.weight, route: undefined, invalid: ref.invalid };
    // The schema guarantees the backend is listed.
    return { weight: ref.weight, route: backends.get(backendKey(ref)), invalid: undefined };
  });
  return {
    cluster,
    routeId,
    rule,
    filters: compileFilters(spec.filters),
    backends: list,
    totalWeight: list.reduce((n, b) => n + b.weight, 0),
  };
}

/** The table serving a hostname (already normalized: lowercase, no port, no trailing dot). */
export function lookupGateway(index: GatewayIndex, host: string): GatewayTable | undefined {
  if (index.size === 0) return undefined;
  const exact = index.exact.get(host);
  if (exact) return exact;
  if (index.wildcard.size > 0) {
    // Longest suffix first: `*.a.example.com` beats `*.example.com` for x.a.example.com.
    for (let dot = host.indexOf("."); dot > 0; dot = host.indexOf(".", dot + 1)) {
      const t = index.wildcard.get(host.slice(dot + 1));
      if (t) return t;
    }
  }
  return index.any;
}

export type Decision =
  | { kind: "none" }
  | { kind: "matched"; action: RuleAction; prefix: string | undefined; backend: WeightedBackend | undefined };

/**
 * The rule for a request and, when it forwards, the backend by weight.
 * prefix: the matched PathPrefix (for ReplacePrefixMatch). backend undefined:
 * no backend can take it (none listed or every weight 0): 500 unless the rule redirects.
 */
export function decide(table: MatchTable<RuleAction>, input: MatchInput, random: () => number): Decision {
  const entry = matchRequest(table, input);
  if (!entry) return { kind: "none" };
  const action = entry.target;
  const prefix = entry.kind === "PathPrefix" ? entry.path : undefined;
  return { kind: "matched", action, prefix, backend: pickBackend(action, random) };
}

/** A backend by weight; weight-0 entries never get traffic. */
export function pickBackend(action: RuleAction, random: () => number): WeightedBackend | undefined {
  const list = action.backends;
  if (action.totalWeight <= 0) return undefined;
  if (list.length === 1) return list[0];
  let r = random() * action.totalWeight;
  for (const b of list) {
    if (b.weight === 0) continue;
    if (r < b.weight) return b;
    r -= b.weight;
  }
  // Rounding at the top end: the last backend with weight.
  for (let i = list.length - 1; i >= 0; i--) if (list[i]!.weight > 0) return list[i];
  return undefined;
}

/** A MatchInput over a web-standard Request and its parsed URL (query parsed only when a rule asks). */
export function matchInput(request: Request, url: URL): MatchInput {
  let params: URLSearchParams | undefined;
  return {
    method: request.method,
    path: url.pathname,
    header: (name) => request.headers.get(name),
    query: (name) => (params ??= url.searchParams).get(name),
  };
}
