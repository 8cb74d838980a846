// Contract between agent and worker: the Gateway API section of a cluster's
// snapshot (`snapshot.gateway`). The agent resolves everything the edge cannot
// know (GatewayClass/Gateway acceptance, listener allowedRoutes, hostname
// intersection, ReferenceGrants, Service ports → NodePorts) and writes only
// what routes a request: one entry per HTTPRoute attachment (route × parent
// listener), its effective hostnames, and its rules in the route's order.
// The worker compiles these into per-hostname match tables once per snapshot
// change (worker/gateway). Field names follow gateway.networking.k8s.io/v1.
import * as v from "valibot";
import { RE2JS } from "re2js";
// schema.ts imports this module and this one reads schema.ts's schemas: lazily,
// on both sides, so either may be loaded first.
import { Endpoint, Policy } from "./schema.ts";
import { regexKeyOverflow } from "./regex-key.ts";

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** A DNS subdomain (RFC 1123): route and Gateway names may hold dots. */
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;
const WILDCARD_HOST = /^\*\.(?=.{1,251}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;
/** An HTTP header name (RFC 7230 token), as the spec's HTTPHeaderName pattern allows. */
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]{1,256}$/;

/** Most hostname × match pairs a snapshot's routes may hold in all (5,000 routes × 5 rules × 2 hostnames is 50,000). */
export const MAX_MATCH_ENTRIES = 250_000;

/** Longest regular expression the edge compiles (RE2 syntax, linear-time matching). */
export const MAX_REGEX_LENGTH = 1024;

/**
 * Regular expressions (path, header and query matches) are RE2 syntax and run
 * on a linear-time engine (re2js): no backreferences or lookaround, and no
 * pattern can make a match take more than linear time in the input. Both the
 * agent (to set a clear route status) and the worker (the snapshot schema)
 * refuse a pattern that does not compile. Returns why, or undefined when fine.
 */
export function regexProblem(pattern: string): string | undefined {
  if (pattern.length > MAX_REGEX_LENGTH) return `longer than ${MAX_REGEX_LENGTH} characters`;
  // Routes repeat patterns: each distinct one is compiled once per process (bounded).
  const known = checked.get(pattern);
  if (known !== undefined) return known || undefined;
  let problem = "";
  try {
    RE2JS.compile(pattern);
  } catch (err) {
    problem = `not an RE2 regular expression: ${(err as Error).message}`;
  }
  if (checked.size >= 10_000) checked.clear();
  checked.set(pattern, problem);
  return problem || undefined;
}
const checked = new Map<string, string>();

const Regex = v.pipe(
  v.string(),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const problem = regexProblem(dataset.value);
    if (problem) addIssue({ message: problem });
  }),
);

/** An HTTPRoute hostname after intersection with its listener: exact, `*.suffix` (any number of labels), or `*` (any host). */
export const GatewayHostname = v.pipe(
  v.string(),
  v.check((s) => s === "*" || HOSTNAME.test(s) || WILDCARD_HOST.test(s), "must be a lowercase hostname, a '*.' wildcard or '*'"),
);

/** A path as the spec allows it: absolute, at most 1024 characters, no control characters. */
const PathValue = v.pipe(
  v.string(),
  v.minLength(1),
  v.maxLength(1024),
  v.startsWith("/", "must start with '/'"),
  v.regex(/^[^\x00-\x20\x7f]*$/, "must not hold spaces or control characters"),
);

export const PathMatch = v.variant("type", [
  v.object({ type: v.literal("Exact"), value: PathValue }),
  v.object({ type: v.literal("PathPrefix"), value: PathValue }),
  v.object({ type: v.literal("RegularExpression"), value: Regex }),
]);

const HeaderName = v.pipe(v.string(), v.regex(HEADER_NAME, "must be an HTTP header name"));
/** Header and query values: printable, no CR/LF/NUL (the edge must never forward a line break). */
const HeaderValue = v.pipe(v.string(), v.maxLength(4096), v.regex(/^[^\x00\r\n]*$/, "must not hold CR, LF or NUL"));

export const HeaderMatch = v.variant("type", [
  v.object({ type: v.literal("Exact"), name: HeaderName, value: HeaderValue }),
  v.object({ type: v.literal("RegularExpression"), name: HeaderName, value: Regex }),
]);

/** Query parameter names are case-sensitive (unlike headers). */
const QueryName = v.pipe(v.string(), v.minLength(1), v.maxLength(256));
export const QueryParamMatch = v.variant("type", [
  v.object({ type: v.literal("Exact"), name: QueryName, value: v.pipe(v.string(), v.maxLength(1024)) }),
  v.object({ type: v.literal("RegularExpression"), name: QueryName, value: Regex }),
]);

export const HTTPMethod = v.picklist(["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]);

/**
 * One HTTPRouteMatch: every present condition must hold. The agent fills the
 * spec's default (PathPrefix "/") and drops header/query entries that repeat
 * an earlier name (the spec says only the first counts).
 */
export const RouteMatch = v.object({
  path: v.optional(PathMatch, { type: "PathPrefix", value: "/" }),
  headers: v.optional(v.pipe(v.array(HeaderMatch), v.maxLength(16)), []),
  queryParams: v.optional(v.pipe(v.array(QueryParamMatch), v.maxLength(16)), []),
  method: v.optional(HTTPMethod),
});

const HeaderPair = v.object({ name: HeaderName, value: HeaderValue });
/** HTTPHeaderFilter: set replaces, add appends, remove deletes (names are case-insensitive). */
export const HeaderModifier = v.object({
  set: v.optional(v.pipe(v.array(HeaderPair), v.maxLength(16)), []),
  add: v.optional(v.pipe(v.array(HeaderPair), v.maxLength(16)), []),
  remove: v.optional(v.pipe(v.array(HeaderName), v.maxLength(16)), []),
});

/** HTTPPathModifier. ReplacePrefixMatch is valid only in a rule whose matches are all PathPrefix (the agent checks). */
export const PathModifier = v.variant("type", [
  v.object({ type: v.literal("ReplaceFullPath"), replaceFullPath: PathValue }),
  v.object({ type: v.literal("ReplacePrefixMatch"), replacePrefixMatch: PathValue }),
]);

const PreciseHostname = v.pipe(v.string(), v.regex(HOSTNAME, "must be a lowercase hostname (no wildcard)"));

export const RouteFilter = v.variant("type", [
  v.object({ type: v.literal("RequestHeaderModifier"), requestHeaderModifier: HeaderModifier }),
  v.object({ type: v.literal("ResponseHeaderModifier"), responseHeaderModifier: HeaderModifier }),
  v.object({
    type: v.literal("RequestRedirect"),
    requestRedirect: v.object({
      /** Absent: the request's scheme. */
      scheme: v.optional(v.picklist(["http", "https"])),
      /** Absent: the request's Host. */
      hostname: v.optional(PreciseHostname),
      path: v.optional(PathModifier),
      /** Absent: the scheme's well-known port when a scheme is set, else the request's port. */
      port: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65535))),
      statusCode: v.optional(v.picklist([301, 302, 303, 307, 308]), 302),
    }),
  }),
  v.object({
    type: v.literal("URLRewrite"),
    urlRewrite: v.object({
      hostname: v.optional(PreciseHostname),
      path: v.optional(PathModifier),
    }),
  }),
]);

const Weight = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(1_000_000));
const Name = v.pipe(v.string(), v.regex(DNS_SUBDOMAIN, "must be a DNS subdomain"));
const Namespace = v.pipe(v.string(), v.regex(DNS_LABEL, "must be a DNS label"));
const Port = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65535));

/**
 * A backendRef of a rule: a Service port listed in `backends`, or invalid
 * (unknown kind, missing Service, no NodePort, cross-namespace without a
 * ReferenceGrant): its weight's share of requests gets 500, as the spec says.
 */
export const BackendRef = v.union([
  v.object({ namespace: Namespace, name: Name, port: Port, weight: v.optional(Weight, 1) }),
  v.object({
    /** Why it cannot be served (logged by the edge, never sent to clients). */
    invalid: v.pipe(v.string(), v.minLength(1), v.maxLength(256)),
    weight: v.optional(Weight, 1),
  }),
]);

export const RouteRule = v.object({
  /** The rule's `name` (v1.2+), for logs. */
  name: v.optional(v.pipe(v.string(), v.maxLength(253))),
  matches: v.optional(v.pipe(v.array(RouteMatch), v.minLength(1), v.maxLength(64)), [{}]),
  filters: v.optional(v.pipe(v.array(RouteFilter), v.maxLength(16)), []),
  /** Empty without a RequestRedirect: every matching request gets 500. */
  backendRefs: v.optional(v.pipe(v.array(BackendRef), v.maxLength(16)), []),
});

/** One HTTPRoute attached to one Gateway listener, with what the edge needs to order it. */
export const RouteAttachment = v.object({
  namespace: Namespace,
  name: Name,
  /** The route's metadata.creationTimestamp: older routes win ties (spec precedence). */
  creationTimestamp: v.pipe(v.string(), v.isoTimestamp()),
  /** The parent Gateway (namespace/name) and listener name: for logs and the status page. */
  gateway: v.pipe(v.string(), v.maxLength(507)),
  listener: v.optional(v.pipe(v.string(), v.maxLength(253))),
  /**
   * The listener's protocol. Where a hostname has routes of both an HTTP and an HTTPS listener, http://
   * requests get only the HTTP listener's and https:// ones only the HTTPS listener's (the HTTP→HTTPS
   * redirect pattern); otherwise, and when absent (older agents), a route serves both schemes.
   */
  protocol: v.optional(v.picklist(["HTTP", "HTTPS"])),
  /** Effective hostnames: the route's intersected with the listener's (`*` when neither sets one). */
  hostnames: v.pipe(v.array(GatewayHostname), v.minLength(1), v.maxLength(16)),
  rules: v.pipe(v.array(RouteRule), v.minLength(1), v.maxLength(16)),
});

/**
 * A Service port some rule sends traffic to: the same node model as a
 * LoadBalancer Service (NodePort on every node, or Local endpoints). Listed
 * here even when the Service is also in `services`, so a NodePort-only
 * Service can be a Gateway backend.
 */
export const GatewayBackend = v.object({
  namespace: Namespace,
  name: Name,
  /** The Service port a backendRef names. */
  port: Port,
  nodePort: Port,
  scheme: v.optional(v.picklist(["http", "https"]), "http"),
  trafficPolicy: v.optional(v.picklist(["Cluster", "Local"]), "Cluster"),
  endpoints: v.optional(v.array(v.lazy(() => Endpoint))),
  policy: v.optional(v.lazy(() => Policy), {}),
});

/**
 * An HTTPRoute × parent Gateway the agent refused (Accepted: False), with the
 * reason its status gives: shown on the worker's status page, never routed.
 */
export const RefusedRoute = v.object({
  namespace: v.pipe(v.string(), v.maxLength(253)),
  name: v.pipe(v.string(), v.maxLength(253)),
  gateway: v.pipe(v.string(), v.maxLength(507)),
  reason: v.pipe(v.string(), v.maxLength(1024)),
});

/** At most this many refused routes are published (the first, by namespace/name). */
export const MAX_REFUSED_ROUTES = 1000;

export const GatewaySection = v.pipe(
  v.object({
    backends: v.pipe(v.array(GatewayBackend), v.maxLength(100_000)),
    routes: v.pipe(v.array(RouteAttachment), v.maxLength(100_000)),
    refused: v.optional(v.pipe(v.array(RefusedRoute), v.maxLength(MAX_REFUSED_ROUTES)), []),
  }),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const known = new Set<string>();
    for (const b of dataset.value.backends) {
      const key = backendKey(b);
      if (known.has(key)) addIssue({ message: `duplicate gateway backend "${key}"` });
      known.add(key);
    }
    const attachments = new Set<string>();
    let entries = 0;
    for (const r of dataset.value.routes) {
      for (const rule of r.rules) entries += r.hostnames.length * rule.matches.length;
      const id = `${r.namespace}/${r.name} → ${r.gateway}/${r.listener ?? ""}`;
      if (attachments.has(id)) addIssue({ message: `duplicate route attachment "${id}"` });
      attachments.add(id);
      for (const rule of r.rules) {
        for (const ref of rule.backendRefs) {
          if ("invalid" in ref) continue;
          const key = backendKey(ref);
          if (!known.has(key)) addIssue({ message: `route "${r.namespace}/${r.name}" refers to unlisted backend "${key}"` });
        }
      }
    }
    // The edge keeps one match entry per hostname × match: bounded, so no cluster can exhaust an isolate's memory.
    if (entries > MAX_MATCH_ENTRIES) {
      addIssue({ message: `${entries} hostname × match entries in all routes, more than the edge keeps (${MAX_MATCH_ENTRIES})` });
    }
    // Bounded regex work per decision (regex-key.ts): the agent refuses the excess routes first.
    const overflow = regexKeyOverflow(dataset.value.routes);
    if (overflow) addIssue({ message: overflow });
  }),
);

/** The key of a backend: namespace/name:port. */
export function backendKey(b: { namespace: string; name: string; port: number }): string {
  return `${b.namespace}/${b.name}:${b.port}`;
}

export type GatewaySectionInput = v.InferInput<typeof GatewaySection>;
export type GatewaySection = v.InferOutput<typeof GatewaySection>;
export type GatewayRoute = v.InferOutput<typeof RouteAttachment>;
export type GatewayRule = v.InferOutput<typeof RouteRule>;
export type GatewayMatch = v.InferOutput<typeof RouteMatch>;
export type GatewayFilter = v.InferOutput<typeof RouteFilter>;
export type GatewayBackendRef = v.InferOutput<typeof BackendRef>;
export type GatewayBackend = v.InferOutput<typeof GatewayBackend>;
export type GatewayHeaderModifier = v.InferOutput<typeof HeaderModifier>;
export type GatewayPathModifier = v.InferOutput<typeof PathModifier>;
export type GatewayRefusedRoute = v.InferOutput<typeof RefusedRoute>;
