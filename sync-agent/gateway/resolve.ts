// Gateway API, resolved: a pure function of the caches (GatewayClasses,
// Gateways, HTTPRoutes, ReferenceGrants, Services, Namespaces) → the statuses
// edgelb owes (its GatewayClasses, their Gateways, its entries in HTTPRoute
// status.parents) and the snapshot's gateway section (worker/snapshot/gateway.ts).
// Conditions carry no lastTransitionTime: the status writer keeps the stored
// one when a condition's status did not change.
import type { V1Namespace, V1Service } from "@kubernetes/client-node";
import * as v from "valibot";
import {
  RouteAttachment,
  backendKey,
  regexProblem,
  type GatewayBackend,
  type GatewayBackendRef,
  type GatewayFilter,
  type GatewayMatch,
  type GatewayRefusedRoute,
} from "../../worker/snapshot/gateway.ts";
import type { SnapshotEndpoint } from "../../worker/snapshot/schema.ts";
import { hostnameRefusal, namespacePatterns, type HostnamePolicy } from "../model/hostnames.ts";
import { byAgeOf, RouteCaps } from "./caps.ts";
import { effectiveHostnames } from "./hostnames.ts";
import { supportedVersionCondition } from "./versions.ts";
import {
  CONTROLLER_NAME,
  GATEWAY_GROUP,
  type Condition,
  type Gateway,
  type GatewayCaches,
  type GatewayClass,
  type GatewayStatus,
  type HTTPRoute,
  type LabelSelector,
  type Listener,
  type ListenerStatus,
  type ParentRef,
  type RouteParentStatus,
  type RouteRuleSpec,
} from "./types.ts";

export interface ResolveInput extends GatewayCaches {
  services: readonly V1Service[];
  namespaces: readonly V1Namespace[];
  /** Local-traffic backends: the nodes with endpoints and their health (same model as LoadBalancer Services). */
  endpointsFor?: (namespace: string, name: string, healthCheckNodePort: number | undefined) => SnapshotEndpoint[] | undefined;
  /** Cluster backends: the Service selects pods and none serves (scaled to 0): published with no endpoint, the edge answers 503. */
  noEndpoint?: (svc: V1Service) => boolean;
  controllerName?: string;
  /** The hostname rules LoadBalancer Services obey (--default-domain, --allowed-hostnames; namespaces' edgelb.dev/allowed-hostnames come from `namespaces`). */
  hostnamePolicy?: { defaultDomain?: string | undefined; allowed?: readonly string[] | undefined };
  /** Hostnames this cluster's LoadBalancer Services serve → namespace/name: the edge serves the Service there, never a route. */
  serviceHostnames?: ReadonlyMap<string, string>;
}

export interface GatewayResolution {
  /** The snapshot's gateway section (routes sorted by namespace/name, then parent). */
  section: { backends: GatewayBackend[]; routes: v.InferInput<typeof RouteAttachment>[]; refused?: GatewayRefusedRoute[] };
  /** Our GatewayClasses' conditions, by name. */
  classes: Map<string, Condition[]>;
  /** Status of every Gateway of one of our accepted classes, by namespace/name. */
  gateways: Map<string, GatewayStatus>;
  /** Our entries in status.parents, by route namespace/name; [] = we have none (remove stale ones). */
  routes: Map<string, RouteParentStatus[]>;
  /** Local backends with a healthCheckNodePort: what the health table should probe. */
  localBackends: { namespace: string; name: string; healthCheckNodePort: number }[];
  /** Route × parent refused because the edge's tables are full (caps.ts): for the log. */
  capped: { route: string; gateway: string; reason: string }[];
}

const idOf = (o: { metadata?: { namespace?: string; name?: string } }) => `${o.metadata?.namespace ?? ""}/${o.metadata?.name ?? ""}`;
const str = (x: unknown): x is string => typeof x === "string" && x.length > 0;
const arr = <T>(x: unknown): T[] => (Array.isArray(x) ? (x as T[]) : []);
/** Any value as message text: objects from the cluster may have no prototype (no toString). */
const text = (x: unknown): string => {
  if (typeof x === "string") return x;
  try {
    return JSON.stringify(x) ?? "undefined";
  } catch {
    return "?";
  }
};

function cond(type: string, ok: boolean, reason: string, message: string, generation: number | undefined): Condition {
  return { type, status: ok ? "True" : "False", reason, message, ...(typeof generation === "number" ? { observedGeneration: generation } : {}) };
}

// ---- namespaces and selectors ----

function selects(sel: LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (!sel || typeof sel !== "object") return false;
  for (const [k, val] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== val) return false;
  for (const e of arr<{ key?: string; operator?: string; values?: string[] }>(sel.matchExpressions)) {
    const has = str(e.key) && Object.hasOwn(labels, e.key);
    const value = str(e.key) ? labels[e.key] : undefined;
    const values = arr<string>(e.values);
    switch (e.operator) {
      case "In":
        if (!has || !values.includes(value!)) return false;
        break;
      case "NotIn":
        if (has && values.includes(value!)) return false;
        break;
      case "Exists":
        if (!has) return false;
        break;
      case "DoesNotExist":
        if (has) return false;
        break;
      default:
        return false; // an unknown operator selects nothing (fail closed)
    }
  }
  return true;
}

// ---- listeners ----

interface ListenerView {
  listener: Listener;
  name: string;
  status: ListenerStatus;
  /** Routes may attach (valid, not conflicted). */
  usable: boolean;
  acceptsHTTPRoute: boolean;
}

const SUPPORTED_PROTOCOLS = new Set(["HTTP", "HTTPS"]);

function evaluateListeners(gw: Gateway, generation: number | undefined): ListenerView[] {
  const listeners = arr<Listener>(gw.spec?.listeners);
  const byPort = new Map<number, Listener[]>();
  for (const l of listeners) if (typeof l.port === "number") byPort.set(l.port, [...(byPort.get(l.port) ?? []), l]);
  return listeners.map((l) => {
    const name = str(l.name) ? l.name : "";
    const conditions: Condition[] = [];
    const protocolOk = str(l.protocol) && SUPPORTED_PROTOCOLS.has(l.protocol);
    // allowedRoutes.kinds: only HTTPRoute exists here.
    const kinds = arr<{ group?: string; kind?: string }>(l.allowedRoutes?.kinds);
    const validKinds = kinds.filter((k) => (k.group ?? GATEWAY_GROUP) === GATEWAY_GROUP && k.kind === "HTTPRoute");
    const invalidKinds = kinds.filter((k) => !validKinds.includes(k));
    const supportedKinds = protocolOk && (kinds.length === 0 || validKinds.length > 0) ? [{ group: GATEWAY_GROUP, kind: "HTTPRoute" }] : [];
    // Distinct listeners (spec): on one port, one protocol and unique hostnames.
    const samePort = byPort.get(l.port as number) ?? [];
    const protocolConflict = samePort.some((o) => o !== l && o.protocol !== l.protocol);
    const hostnameConflict = !protocolConflict && samePort.some((o) => o !== l && (o.hostname ?? "") === (l.hostname ?? ""));
    const conflicted = protocolConflict || hostnameConflict;
    conditions.push(
      protocolOk
        ? cond("Accepted", true, "Accepted", "listener accepted", generation)
        : cond("Accepted", false, "UnsupportedProtocol", `protocol ${JSON.stringify(l.protocol ?? "")} is not supported: edgelb serves HTTP and HTTPS listeners (HTTPS is terminated by Cloudflare)`, generation),
    );
    conditions.push(
      conflicted
        ? cond("Conflicted", true, protocolConflict ? "ProtocolConflict" : "HostnameConflict", protocolConflict ? `another listener on port ${text(l.port)} uses a different protocol` : `another listener on port ${text(l.port)} has the same hostname`, generation)
        : cond("Conflicted", false, "NoConflicts", "no conflicts", generation),
    );
    conditions.push(
      invalidKinds.length > 0
        ? cond("ResolvedRefs", false, "InvalidRouteKinds", `unsupported route kinds: ${invalidKinds.map((k) => `${text(k?.group ?? GATEWAY_GROUP)}/${text(k?.kind ?? "")}`).join(", ")}; edgelb supports HTTPRoute`, generation)
        : cond("ResolvedRefs", true, "ResolvedRefs", "all references resolved", generation),
    );
    const usable = protocolOk && !conflicted;
    conditions.push(
      usable
        ? cond("Programmed", true, "Programmed", "listener programmed at the edge", generation)
        : cond("Programmed", false, "Invalid", conflicted ? "listener conflicts with another one" : "listener is not valid", generation),
    );
    const certs = arr<{ name?: string; namespace?: string }>(l.tls?.certificateRefs);
    if (l.protocol === "HTTPS" && certs.length > 0) {
      conditions.push(
        cond(
          "edgelb.dev/CertificateRefsIgnored",
          true,
          "TLSTerminatedByCloudflare",
          `TLS is terminated by Cloudflare with its edge certificate; certificateRefs (${certs.map((c) => (c?.namespace ? `${text(c.namespace)}/` : "") + text(c?.name ?? "")).join(", ")}) are accepted and not used`,
          generation,
        ),
      );
    }
    return {
      listener: l,
      name,
      usable,
      acceptsHTTPRoute: supportedKinds.length > 0,
      status: { name, supportedKinds, attachedRoutes: 0, conditions },
    };
  });
}

function allowsNamespace(l: Listener, gwNamespace: string, routeNamespace: string, nsLabels: (ns: string) => Record<string, string> | undefined): boolean {
  const from = l.allowedRoutes?.namespaces?.from ?? "Same";
  if (from === "All") return true;
  if (from === "Same") return routeNamespace === gwNamespace;
  if (from === "Selector") {
    const labels = nsLabels(routeNamespace);
    return labels !== undefined && selects(l.allowedRoutes?.namespaces?.selector, labels);
  }
  return false;
}

// ---- backends ----

interface BackendVerdict {
  ref: GatewayBackendRef;
  /** ResolvedRefs reason when invalid. */
  reason?: string;
  message?: string;
  backend?: GatewayBackend;
}

function grantAllows(caches: GatewayCaches, fromNamespace: string, toNamespace: string, name: string): boolean {
  return caches.referenceGrants.some((g) => {
    if (g.metadata?.namespace !== toNamespace) return false;
    const from = arr<{ group?: string; kind?: string; namespace?: string }>(g.spec?.from);
    const to = arr<{ group?: string; kind?: string; name?: string }>(g.spec?.to);
    return (
      from.some((f) => f.group === GATEWAY_GROUP && f.kind === "HTTPRoute" && f.namespace === fromNamespace) &&
      to.some((t) => (t.group ?? "") === "" && t.kind === "Service" && (!t.name || t.name === name))
    );
  });
}

function resolveBackend(
  input: ResolveInput,
  services: Map<string, V1Service>,
  routeNamespace: string,
  ref: { group?: string; kind?: string; namespace?: string; name?: string; port?: number; weight?: number; filters?: unknown[] },
): BackendVerdict {
  const weight = typeof ref.weight === "number" && Number.isInteger(ref.weight) && ref.weight >= 0 ? ref.weight : 1;
  const invalid = (reason: string, message: string): BackendVerdict => ({ ref: { invalid: message.slice(0, 256), weight }, reason, message });
  if ([ref.group, ref.kind, ref.namespace, ref.name].some((f) => f !== undefined && typeof f !== "string")) {
    return invalid("BackendNotFound", `malformed backendRef ${text(ref)}`.slice(0, 256));
  }
  const group = ref.group ?? "";
  const kind = ref.kind ?? "Service";
  if (group !== "" || kind !== "Service") return invalid("InvalidKind", `backendRef ${group ? `${group}/` : ""}${kind} ${ref.name ?? ""}: only core Services are supported`);
  const namespace = ref.namespace ?? routeNamespace;
  const name = ref.name ?? "";
  if (namespace !== routeNamespace && !grantAllows(input, routeNamespace, namespace, name)) {
    return invalid("RefNotPermitted", `backendRef Service ${namespace}/${name} is in another namespace and no ReferenceGrant in ${namespace} allows HTTPRoutes from ${routeNamespace}`);
  }
  const svc = services.get(`${namespace}/${name}`);
  if (!svc) return invalid("BackendNotFound", `backendRef Service ${namespace}/${name} not found`);
  if (typeof ref.port !== "number") return invalid("BackendNotFound", `backendRef Service ${namespace}/${name}: port is required`);
  const port = (svc.spec?.ports ?? []).find((p) => p.port === ref.port && (p.protocol ?? "TCP") === "TCP");
  if (!port) return invalid("BackendNotFound", `backendRef Service ${namespace}/${name} has no TCP port ${ref.port}`);
  if (!port.nodePort) {
    return invalid(
      "NodePortRequired",
      `Service ${namespace}/${name} port ${ref.port} has no NodePort (type ${svc.spec?.type ?? "ClusterIP"}): the edge reaches backends through nodeIP:NodePort; set spec.type: NodePort (or LoadBalancer) on the Service`,
    );
  }
  if (arr(ref.filters).length > 0) return invalid("UnsupportedValue", `backendRef Service ${namespace}/${name}: per-backend filters are not supported`);
  const trafficPolicy = svc.spec?.externalTrafficPolicy === "Local" ? "Local" : "Cluster";
  const endpoints =
    trafficPolicy === "Local" ? (input.endpointsFor?.(namespace, name, svc.spec?.healthCheckNodePort) ?? []) : input.noEndpoint?.(svc) ? [] : undefined;
  return {
    ref: { namespace, name, port: ref.port, weight },
    backend: { namespace, name, port: ref.port, nodePort: port.nodePort, scheme: "http", trafficPolicy, ...(endpoints ? { endpoints } : {}), policy: {} } as GatewayBackend,
  };
}

// ---- rules: spec → contract ----

class Unsupported extends Error {}

const PATH_TYPES = new Set(["Exact", "PathPrefix", "RegularExpression"]);
const VALUE_TYPES = new Set(["Exact", "RegularExpression"]);

function regexOk(type: string | undefined, value: unknown, what: string): void {
  if (type === "RegularExpression") {
    if (typeof value !== "string") throw new Unsupported(`${what} regular expression must be a string`);
    const why = regexProblem(value);
    if (why) throw new Unsupported(`${what} regular expression ${JSON.stringify(value)}: ${why}`);
  }
}

function convertMatch(m: any): GatewayMatch {
  if (!m || typeof m !== "object") throw new Unsupported("a match is not an object");
  const out: any = {};
  if (m.path !== undefined) {
    const type = m.path?.type ?? "PathPrefix";
    if (!PATH_TYPES.has(type)) throw new Unsupported(`path match type ${JSON.stringify(type)} is not supported`);
    regexOk(type, m.path?.value, "path");
    out.path = { type, value: m.path?.value ?? "/" };
  }
  const seenHeaders = new Set<string>();
  const headers: any[] = [];
  for (const h of arr<any>(m.headers)) {
    const type = h?.type ?? "Exact";
    if (!VALUE_TYPES.has(type)) throw new Unsupported(`header match type ${JSON.stringify(type)} is not supported`);
    regexOk(type, h?.value, `header ${text(h?.name)}`);
    const key = text(h?.name ?? "").toLowerCase();
    if (seenHeaders.has(key)) continue; // the spec: only the first match of a name counts
    seenHeaders.add(key);
    headers.push({ type, name: h?.name, value: h?.value });
  }
  if (headers.length) out.headers = headers;
  const seenQuery = new Set<string>();
  const queryParams: any[] = [];
  for (const q of arr<any>(m.queryParams)) {
    const type = q?.type ?? "Exact";
    if (!VALUE_TYPES.has(type)) throw new Unsupported(`query match type ${JSON.stringify(type)} is not supported`);
    regexOk(type, q?.value, `query parameter ${text(q?.name)}`);
    if (seenQuery.has(text(q?.name))) continue;
    seenQuery.add(text(q?.name));
    queryParams.push({ type, name: q?.name, value: q?.value });
  }
  if (queryParams.length) out.queryParams = queryParams;
  if (m.method !== undefined) out.method = m.method;
  return out;
}

function convertHeaderModifier(f: any): any {
  return {
    ...(f?.set ? { set: arr(f.set).map((h: any) => ({ name: h?.name, value: h?.value })) } : {}),
    ...(f?.add ? { add: arr(f.add).map((h: any) => ({ name: h?.name, value: h?.value })) } : {}),
    ...(f?.remove ? { remove: arr(f.remove) } : {}),
  };
}

function convertPath(p: any, matches: GatewayMatch[]): any {
  if (!p) return undefined;
  if (p.type === "ReplaceFullPath") return { type: "ReplaceFullPath", replaceFullPath: p.replaceFullPath };
  if (p.type === "ReplacePrefixMatch") {
    // Spec: only with PathPrefix matches (what the prefix replaces must be known).
    if (matches.some((m) => (m.path?.type ?? "PathPrefix") !== "PathPrefix")) throw new Unsupported("ReplacePrefixMatch needs every match of its rule to be a PathPrefix match");
    return { type: "ReplacePrefixMatch", replacePrefixMatch: p.replacePrefixMatch };
  }
  throw new Unsupported(`path modifier type ${JSON.stringify(p.type)} is not supported`);
}

function convertFilter(f: any, matches: GatewayMatch[]): GatewayFilter {
  switch (f?.type) {
    case "RequestHeaderModifier":
      return { type: "RequestHeaderModifier", requestHeaderModifier: convertHeaderModifier(f.requestHeaderModifier) };
    case "ResponseHeaderModifier":
      return { type: "ResponseHeaderModifier", responseHeaderModifier: convertHeaderModifier(f.responseHeaderModifier) };
    case "RequestRedirect": {
      const r = f.requestRedirect ?? {};
      const path = convertPath(r.path, matches);
      return {
        type: "RequestRedirect",
        requestRedirect: {
          ...(r.scheme !== undefined ? { scheme: r.scheme } : {}),
          ...(r.hostname !== undefined ? { hostname: r.hostname } : {}),
          ...(path ? { path } : {}),
          ...(r.port !== undefined ? { port: r.port } : {}),
          ...(r.statusCode !== undefined ? { statusCode: r.statusCode } : {}),
        },
      } as GatewayFilter;
    }
    case "URLRewrite": {
      const r = f.urlRewrite ?? {};
      const path = convertPath(r.path, matches);
      return { type: "URLRewrite", urlRewrite: { ...(r.hostname !== undefined ? { hostname: r.hostname } : {}), ...(path ? { path } : {}) } } as GatewayFilter;
    }
    default:
      throw new Unsupported(`filter type ${JSON.stringify(f?.type ?? "")} is not supported (edgelb: RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect, URLRewrite)`);
  }
}

// ---- hostname ownership ----

function createdMs(o: { metadata?: { creationTimestamp?: unknown } }): number {
  const ts = o.metadata?.creationTimestamp;
  const ms = typeof ts === "string" || ts instanceof Date ? new Date(ts).getTime() : 0;
  return Number.isNaN(ms) ? 0 : ms;
}

/** Why `namespace` (through Gateway `gwId`) may not serve hostname `h`, or undefined when it may. */
function hostnameProblem(
  h: string,
  namespace: string,
  policy: HostnamePolicy,
  services: ReadonlyMap<string, string> | undefined,
  owners: ReadonlyMap<string, string> | undefined,
  gwId: string,
): string | undefined {
  const svc = services?.get(h);
  if (svc) return `${h} is served by LoadBalancer Service ${svc}, which the edge prefers over routes`;
  const owner = owners?.get(h);
  if (owner !== undefined && owner !== gwId) return `${h} belongs to Gateway ${owner} (the oldest Gateway claiming it)`;
  if (h === "*") return policy.allowed || policy.byNamespace.has(namespace) ? `a route for every hostname is not allowed in namespace ${namespace} (hostnames are restricted)` : undefined;
  return hostnameRefusal(h, namespace, true, policy);
}

function conflictListener(l: ListenerView, why: string, generation: number | undefined): void {
  l.usable = false;
  const conditions = l.status.conditions.filter((c) => c.type !== "Conflicted" && c.type !== "Programmed");
  conditions.push(cond("Conflicted", true, "HostnameConflict", why, generation));
  conditions.push(cond("Programmed", false, "Invalid", `listener not programmed: ${why}`, generation));
  l.status.conditions = conditions;
}

// ---- the whole resolution ----

export function resolveGateway(input: ResolveInput): GatewayResolution {
  const controller = input.controllerName ?? CONTROLLER_NAME;
  const classes = new Map<string, Condition[]>();
  const ourClasses = new Set<string>();
  for (const gc of input.gatewayClasses) {
    const name = gc.metadata?.name;
    if (!str(name) || gc.spec?.controllerName !== controller) continue;
    const gen = gc.metadata?.generation;
    // The spec: set with Accepted. An unsupported bundle is served best effort (Accepted stays True).
    const version = input.crdBundles ? [supportedVersionCondition(input.crdBundles, gen)] : [];
    if (gc.spec?.parametersRef) {
      classes.set(name, [cond("Accepted", false, "InvalidParameters", "edgelb takes no parameters: remove spec.parametersRef", gen), ...version]);
      continue;
    }
    ourClasses.add(name);
    classes.set(name, [cond("Accepted", true, "Accepted", "handled by edgelb: HTTPRoutes are matched at the Cloudflare edge", gen), ...version]);
  }

  const services = new Map(input.services.map((s) => [idOf(s), s]));
  const nsLabels = new Map(input.namespaces.map((n) => [n.metadata?.name ?? "", n.metadata?.labels ?? {}]));
  const labelsOf = (ns: string) => nsLabels.get(ns) ?? (input.namespaces.length === 0 ? {} : undefined);

  // Gateways of our accepted classes, with their listeners evaluated.
  const gateways = new Map<string, { gw: Gateway; listeners: ListenerView[]; status: GatewayStatus; hostnames: Set<string>; rank: number }>();
  const policy: HostnamePolicy = { ...input.hostnamePolicy, byNamespace: namespacePatterns(input.namespaces) };
  // Each hostname belongs to one Gateway: the oldest (creationTimestamp, then namespace/name) keeps it.
  const listenerOwner = new Map<string, string>();
  const byAge = [...input.gateways].sort((a, b) => createdMs(a) - createdMs(b) || (idOf(a) < idOf(b) ? -1 : idOf(a) > idOf(b) ? 1 : 0));
  for (const gw of byAge) {
    if (!str(gw.spec?.gatewayClassName) || !ourClasses.has(gw.spec.gatewayClassName) || gw.metadata?.deletionTimestamp) continue;
    const gen = gw.metadata?.generation;
    const listeners = evaluateListeners(gw, gen);
    for (const l of listeners) {
      // A listener with no hostname claims nothing by itself: its routes' hostnames (or `*`) are owned route by route below.
      if (!l.usable || !str(l.listener.hostname)) continue;
      const h = l.listener.hostname.toLowerCase();
      const why = hostnameProblem(h, gw.metadata?.namespace ?? "", policy, input.serviceHostnames, listenerOwner, idOf(gw));
      if (why) {
        conflictListener(l, why, gen);
        continue;
      }
      listenerOwner.set(h, idOf(gw));
    }
    const conditions: Condition[] = [];
    const valid = listeners.filter((l) => l.usable).length;
    if (arr(gw.spec?.addresses).length > 0) {
      conditions.push(cond("Accepted", false, "UnsupportedAddress", "spec.addresses cannot be honoured: the Gateway is reached through Cloudflare at its listeners' hostnames; remove spec.addresses", gen));
      conditions.push(cond("Programmed", false, "Invalid", "the Gateway is not accepted", gen));
      for (const l of listeners) l.usable = false;
    } else if (gw.spec?.infrastructure?.parametersRef !== undefined) {
      // GatewayInvalidParametersRef: edgelb provisions no infrastructure, so no parameters object can be valid.
      conditions.push(cond("Accepted", false, "InvalidParameters", "edgelb takes no infrastructure parameters (the Gateway is served by the Cloudflare edge): remove spec.infrastructure.parametersRef", gen));
      conditions.push(cond("Programmed", false, "Invalid", "the Gateway is not accepted", gen));
      for (const l of listeners) l.usable = false;
    } else if (valid === 0) {
      conditions.push(cond("Accepted", false, "ListenersNotValid", "no listener is valid", gen));
      conditions.push(cond("Programmed", false, "Invalid", "no listener is valid", gen));
    } else {
      conditions.push(
        valid < listeners.length
          ? cond("Accepted", true, "ListenersNotValid", `${listeners.length - valid} of ${listeners.length} listeners are not valid (see status.listeners)`, gen)
          : cond("Accepted", true, "Accepted", "accepted by edgelb", gen),
      );
      conditions.push(cond("Programmed", true, "Programmed", "routes are served by the edgelb worker", gen));
    }
    gateways.set(idOf(gw), { gw, listeners, status: { conditions, listeners: listeners.map((l) => l.status) }, hostnames: new Set(), rank: gateways.size });
  }

  const routesOut: GatewayResolution["section"]["routes"] = [];
  const backends = new Map<string, GatewayBackend>();
  const routeStatuses = new Map<string, RouteParentStatus[]>();
  const pending: {
    parents: RouteParentStatus[];
    slot: number;
    ref: ParentRef;
    gen: number | undefined;
    resolved: Condition;
    gwId: string;
    parent: { hostnames: Set<string>; rank: number };
    attached: { view: ListenerView; hostnames: string[] }[];
    entries: v.InferInput<typeof RouteAttachment>[];
    ruleBackends: GatewayBackend[];
    attachedTo: Set<string>;
    routeNs: string;
  }[] = [];
  const sortedRoutes = [...input.httpRoutes].sort((a, b) => (idOf(a) < idOf(b) ? -1 : idOf(a) > idOf(b) ? 1 : 0));
  for (const route of sortedRoutes) {
    const routeNs = route.metadata?.namespace ?? "";
    const routeName = route.metadata?.name ?? "";
    const gen = route.metadata?.generation;
    const parents: RouteParentStatus[] = [];
    routeStatuses.set(idOf(route), parents);
    const attachedTo = new Set<string>(); // two parentRefs may name the same listener: one attachment
    if (route.metadata?.deletionTimestamp) continue;

    // Rules once per route: the same for every parent.
    let rules: v.InferInput<typeof RouteAttachment>["rules"] | undefined;
    let unsupported: string | undefined;
    let refsProblem: { reason: string; message: string } | undefined;
    const ruleBackends: GatewayBackend[] = [];
    try {
      const specRules = arr<RouteRuleSpec>(route.spec?.rules);
      if (specRules.length === 0) throw new Unsupported("the route has no rules");
      rules = specRules.map((r) => {
        const matches = (arr<unknown>(r?.matches).length ? arr<unknown>(r.matches) : [{}]).map(convertMatch);
        const filters = arr<unknown>(r?.filters).map((f) => convertFilter(f, matches));
        const refs = arr<any>(r?.backendRefs).map((b) => {
          const verdict = resolveBackend(input, services, routeNs, b ?? {});
          if (verdict.reason) refsProblem ??= { reason: verdict.reason, message: verdict.message! };
          if (verdict.backend) ruleBackends.push(verdict.backend);
          return verdict.ref;
        });
        return { ...(str(r?.name) ? { name: r.name } : {}), matches, filters, backendRefs: refs };
      });
    } catch (e) {
      if (!(e instanceof Unsupported)) throw e;
      unsupported = e.message;
    }
    // Server-set; unparseable (never on a real server) sorts as oldest, like a missing one.
    const ts: unknown = route.metadata?.creationTimestamp;
    const createdMs = typeof ts === "string" || ts instanceof Date ? new Date(ts).getTime() : 0;
    const created = new Date(Number.isNaN(createdMs) ? 0 : createdMs).toISOString();
    const routeHostnames = arr<string>(route.spec?.hostnames).filter((h) => typeof h === "string").map((h) => h.toLowerCase());

    for (const ref of arr<ParentRef>(route.spec?.parentRefs)) {
      if (!ref || typeof ref !== "object" || (ref.group ?? GATEWAY_GROUP) !== GATEWAY_GROUP || (ref.kind ?? "Gateway") !== "Gateway") continue;
      if (typeof ref.name !== "string" || (ref.namespace !== undefined && typeof ref.namespace !== "string")) continue; // names no Gateway
      const gwId = `${ref.namespace ?? routeNs}/${ref.name ?? ""}`;
      const parent = gateways.get(gwId);
      if (!parent) continue; // not ours (another class or controller), or no such Gateway: not ours to report
      const resolved = refsProblem
        ? cond("ResolvedRefs", false, refsProblem.reason, refsProblem.message, gen)
        : cond("ResolvedRefs", true, "ResolvedRefs", "all backendRefs resolved", gen);
      const status = (accepted: Condition) => parents.push({ parentRef: ref, controllerName: controller, conditions: [accepted, resolved] });
      if (unsupported) {
        status(cond("Accepted", false, "UnsupportedValue", unsupported, gen));
        continue;
      }
      const candidates = parent.listeners.filter(
        (l) => (ref.sectionName === undefined || l.name === ref.sectionName) && (ref.port === undefined || l.listener.port === ref.port),
      );
      if (candidates.length === 0) {
        status(cond("Accepted", false, "NoMatchingParent", `Gateway ${gwId} has no listener${ref.sectionName !== undefined ? ` named ${text(ref.sectionName)}` : ""}${ref.port !== undefined ? ` on port ${text(ref.port)}` : ""}`, gen));
        continue;
      }
      const allowed = candidates.filter((l) => l.usable && l.acceptsHTTPRoute && allowsNamespace(l.listener, parent.gw.metadata?.namespace ?? "", routeNs, labelsOf));
      if (allowed.length === 0) {
        status(cond("Accepted", false, "NotAllowedByListeners", `no listener of Gateway ${gwId} allows HTTPRoutes from namespace ${routeNs}`, gen));
        continue;
      }
      const attached: { view: ListenerView; hostnames: string[] }[] = [];
      for (const view of allowed) {
        const hostnames = effectiveHostnames(view.listener.hostname, routeHostnames);
        if (hostnames.length > 0) attached.push({ view, hostnames });
      }
      if (attached.length === 0) {
        status(cond("Accepted", false, "NoMatchingListenerHostname", `no hostname of the route matches a listener hostname of Gateway ${gwId}`, gen));
        continue;
      }
      const entries = attached.map(({ view, hostnames }) => ({
        namespace: routeNs,
        name: routeName,
        creationTimestamp: created,
        gateway: gwId,
        listener: view.name,
        // Only HTTP and HTTPS listeners are usable: the edge separates schemes on a hostname that has both.
        ...(view.listener.protocol === "HTTP" || view.listener.protocol === "HTTPS" ? { protocol: view.listener.protocol as "HTTP" | "HTTPS" } : {}),
        hostnames: hostnames.slice(0, 16), // the spec's limit per route (and the contract's)
        rules: rules!,
      }));
      // Every byte the edge will read is checked here first: a route the
      // worker would refuse is reported, not published (the rest still is).
      const bad = entries.map((e) => v.safeParse(RouteAttachment, e)).find((r) => !r.success);
      if (bad && !bad.success) {
        const issue = bad.issues[0];
        status(cond("Accepted", false, "UnsupportedValue", `${v.getDotPath(issue) ?? "route"}: ${issue.message}`, gen));
        continue;
      }
      // Decided once every attachment is known: which Gateway owns each hostname.
      const slot = parents.length;
      parents.push(undefined as unknown as RouteParentStatus);
      pending.push({ parents, slot, ref, gen, resolved, gwId, parent, attached, entries, ruleBackends, attachedTo, routeNs });
    }
  }

  // Hostnames no listener names exactly (a route's under a wildcard or hostname-less listener): the oldest Gateway with such an attachment keeps it.
  const routeOwner = new Map<string, string>();
  for (const p of [...pending].sort((a, b) => a.parent.rank - b.parent.rank)) {
    for (const { hostnames } of p.attached) for (const h of hostnames) if (!listenerOwner.has(h) && !routeOwner.has(h)) routeOwner.set(h, p.gwId);
  }
  // Bounded edge tables (caps.ts): routes are admitted oldest first, so a new
  // route can never push out one that is already served.
  const caps = new RouteCaps();
  const out: { order: number; route: v.InferInput<typeof RouteAttachment> }[] = [];
  const capped: GatewayResolution["capped"] = [];
  for (const { p, order } of byAgeOf(pending)) {
    const lost: string[] = [];
    const kept = p.attached.map(({ view, hostnames }) => ({
      view,
      hostnames: hostnames.filter((h) => {
        const owner = listenerOwner.get(h) ?? routeOwner.get(h);
        const why =
          owner !== undefined && owner !== p.gwId
            ? `${h} belongs to Gateway ${owner} (the oldest Gateway claiming it)`
            : hostnameProblem(h, p.routeNs, policy, input.serviceHostnames, undefined, p.gwId);
        if (why) lost.push(why);
        return !why;
      }),
    }));
    const serving = kept.map((k, i) => ({ ...k, entry: p.entries[i]! })).filter((k) => k.hostnames.length > 0);
    if (serving.length === 0) {
      p.parents[p.slot] = { parentRef: p.ref, controllerName: controller, conditions: [cond("Accepted", false, "HostnameConflict", `not served: ${[...new Set(lost)].join("; ")}`.slice(0, 32768), p.gen), p.resolved] };
      continue;
    }
    const adding = serving.filter(({ view }) => !p.attachedTo.has(`${p.gwId}/${view.name}`)).map(({ hostnames, entry }) => ({ ...entry, hostnames }));
    const refusal = caps.admit(adding);
    if (refusal) {
      p.parents[p.slot] = { parentRef: p.ref, controllerName: controller, conditions: [cond("Accepted", false, "UnsupportedValue", `not served: ${refusal}`, p.gen), p.resolved] };
      capped.push({ route: `${p.routeNs}/${p.entries[0]!.name}`, gateway: p.gwId, reason: refusal });
      continue;
    }
    const note = lost.length > 0 ? `; not served on: ${[...new Set(lost)].join("; ")}` : "";
    p.parents[p.slot] = {
      parentRef: p.ref,
      controllerName: controller,
      conditions: [cond("Accepted", true, "Accepted", `attached to ${serving.map((a) => a.view.name).join(", ")}${note}`.slice(0, 32768), p.gen), p.resolved],
    };
    for (const { view, hostnames, entry } of serving) {
      const key = `${p.gwId}/${view.name}`;
      if (p.attachedTo.has(key)) continue;
      p.attachedTo.add(key);
      view.status.attachedRoutes++;
      for (const h of hostnames) if (!h.includes("*")) p.parent.hostnames.add(h);
      out.push({ order, route: hostnames.length === entry.hostnames.length ? entry : { ...entry, hostnames } });
    }
    for (const b of p.ruleBackends) backends.set(backendKey(b), b);
  }
  // The section keeps its order (routes by namespace/name, then parent), whatever order they were admitted in.
  for (const o of out.sort((a, b) => a.order - b.order)) routesOut.push(o.route);

  const gatewayStatuses = new Map<string, GatewayStatus>();
  for (const [id, g] of gateways) {
    // Addresses: the hostnames clients reach the Gateway at (listener hostnames first, then attached routes'); at most 16 (spec).
    const fromListeners = g.listeners.filter((l) => l.usable).map((l) => l.listener.hostname).filter((h): h is string => str(h) && !h.includes("*"));
    const all = [...new Set([...fromListeners, ...[...g.hostnames].sort()])].slice(0, 16);
    gatewayStatuses.set(id, { ...g.status, addresses: all.map((value) => ({ type: "Hostname", value })) });
  }

  const sortedBackends = [...backends.values()].sort((a, b) => (backendKey(a) < backendKey(b) ? -1 : 1));
  const localBackends = sortedBackends
    .filter((b) => b.trafficPolicy === "Local")
    .flatMap((b) => {
      const hc = services.get(`${b.namespace}/${b.name}`)?.spec?.healthCheckNodePort;
      return hc ? [{ namespace: b.namespace, name: b.name, healthCheckNodePort: hc }] : [];
    });
  return { section: { backends: sortedBackends, routes: routesOut }, classes, gateways: gatewayStatuses, routes: routeStatuses, localBackends, capped };
}

export type { GatewayClass, HTTPRoute };
