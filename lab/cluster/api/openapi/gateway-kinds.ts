// Field descriptions of the Gateway API kinds (gateway.networking.k8s.io,
// standard channel) as the simulated cluster serves them: the upstream field
// names and structure of what edgelb reads and writes, descriptions written
// here and shortened. They give the CRDs their openAPIV3Schema, the OpenAPI v3
// documents kubectl reads (`kubectl explain`, client-side and strict server
// validation) and the store's unknown-field pruning: a misspelt `hostnamez` or
// `matchs` is refused under fieldValidation=Strict (kubectl's default) and
// dropped with a warning otherwise, as a real API server does for a CRD with a
// structural schema. Deep structures edgelb does not act on are "any".
import { any, int, list, obj, str, strMap, time, type Field } from "./fields.ts";

const CONDITION = obj(
  {
    type: str("Type of condition in CamelCase (Accepted, Programmed, ResolvedRefs…)."),
    status: str("Status of the condition.", ["True", "False", "Unknown"]),
    observedGeneration: int("The .metadata.generation the condition was set from."),
    lastTransitionTime: time("Last time the condition changed status."),
    reason: str("A programmatic identifier for the condition's last transition, in CamelCase."),
    message: str("A human readable message about the transition."),
  },
  "Condition contains details for one aspect of the current state of this API resource.",
  ["type", "status", "lastTransitionTime", "reason", "message"],
);
const conditions = (d: string) => list(CONDITION, d, "type");

const GROUP = str("Group of the referent. The empty string is the core API group.");
const KIND = str("Kind of the referent.");
const NAME = str("Name of the referent.");
const NAMESPACE = str("Namespace of the referent; defaults to the local namespace.");
const PORT = int("Port number of the referent (a Service port).");

const PARAMETERS_REF = obj({ group: GROUP, kind: KIND, name: NAME, namespace: NAMESPACE }, "A reference to a resource holding implementation-specific configuration.", ["group", "kind", "name"]);

// ---- GatewayClass ----

export const GATEWAY_CLASS = obj(
  {
    spec: obj(
      {
        controllerName: str("The name of the controller managing Gateways of this class (edgelb.dev/gateway-controller for edgelb). Immutable."),
        parametersRef: PARAMETERS_REF,
        description: str("Describes the GatewayClass for users."),
      },
      "Spec defines the desired state of GatewayClass.",
      ["controllerName"],
    ),
    status: obj(
      {
        conditions: conditions("Conditions of the GatewayClass, set by its controller (Accepted)."),
        supportedFeatures: list(obj({ name: str("The feature's name.") }, undefined, ["name"]), "Features the controller supports."),
      },
      "Status defines the current state of GatewayClass.",
    ),
  },
  "GatewayClass describes a class of Gateways available to the user for creating Gateway resources.",
);

// ---- Gateway ----

const ALLOWED_ROUTES = obj(
  {
    namespaces: obj(
      {
        from: str("Where Routes may attach from: All, Selector or Same (default).", ["All", "Selector", "Same"]),
        selector: any("A label selector over namespaces, used when from is Selector."),
      },
      "Namespaces from which Routes may be attached to this Listener.",
    ),
    kinds: list(obj({ group: GROUP, kind: KIND }, undefined, ["kind"]), "The kinds of Routes allowed to attach (default: those of the protocol)."),
  },
  "The types of routes that may attach to the Listener and the namespaces they may come from.",
);

const LISTENER = obj(
  {
    name: str("Name of the Listener, unique within the Gateway."),
    hostname: str("The virtual hostname to match for protocols that define one; a wildcard prefix (*.example.com) is allowed."),
    port: int("The network port (1-65535)."),
    protocol: str("The network protocol this listener expects to receive (HTTP, HTTPS…)."),
    tls: any("TLS configuration for the Listener (HTTPS, TLS protocols)."),
    allowedRoutes: ALLOWED_ROUTES,
  },
  "A logical endpoint where a Gateway accepts network connections.",
  ["name", "port", "protocol"],
);

const GATEWAY_ADDRESS = obj({ type: str("Type of the address (IPAddress, Hostname or a domain-prefixed type)."), value: str("The address itself.") }, "An address requested for or bound to the Gateway.", ["value"]);

export const GATEWAY = obj(
  {
    spec: obj(
      {
        gatewayClassName: str("The name of the GatewayClass used for this Gateway."),
        listeners: list(LISTENER, "Logical endpoints bound on this Gateway's addresses; at least one.", "name"),
        addresses: list(GATEWAY_ADDRESS, "Addresses requested for this Gateway."),
        infrastructure: obj(
          { labels: strMap("Labels for resources created for this Gateway."), annotations: strMap("Annotations for resources created for this Gateway."), parametersRef: obj({ group: GROUP, kind: KIND, name: NAME }, undefined, ["group", "kind", "name"]) },
          "Infrastructure-level attributes of this Gateway instance.",
        ),
      },
      "Spec defines the desired state of Gateway.",
      ["gatewayClassName", "listeners"],
    ),
    status: obj(
      {
        addresses: list(GATEWAY_ADDRESS, "The addresses bound to the Gateway (for edgelb: the edge hostname)."),
        conditions: conditions("Conditions of the Gateway (Accepted, Programmed)."),
        listeners: list(
          obj(
            {
              name: str("The name of the Listener this status is for."),
              supportedKinds: list(obj({ group: GROUP, kind: KIND }, undefined, ["kind"]), "The kinds of Routes this Listener supports."),
              attachedRoutes: int("The number of Routes successfully attached to this Listener."),
              conditions: conditions("Conditions of the Listener."),
            },
            undefined,
            ["name", "supportedKinds", "attachedRoutes", "conditions"],
          ),
          "The status of each Listener.",
          "name",
        ),
      },
      "Status defines the current state of Gateway.",
    ),
  },
  "Gateway represents an instance of a service-traffic handling infrastructure by binding Listeners to a set of IP addresses.",
);

// ---- HTTPRoute ----

const PARENT_REF = obj(
  {
    group: str("Group of the parent (default gateway.networking.k8s.io)."),
    kind: str("Kind of the parent (default Gateway)."),
    namespace: NAMESPACE,
    name: str("Name of the parent Gateway."),
    sectionName: str("The name of a section (a Listener's name) within the parent."),
    port: int("The network port within the parent the route attaches to."),
  },
  "A reference to the resource (usually a Gateway) this Route wants to attach to.",
  ["name"],
);

const HEADER_MATCH = obj(
  { type: str("How to match the header's value: Exact (default) or RegularExpression.", ["Exact", "RegularExpression"]), name: str("The HTTP header name (case-insensitive)."), value: str("The value to match.") },
  "Matches an HTTP request header.",
  ["name", "value"],
);
const QUERY_MATCH = obj(
  { type: str("How to match the parameter's value: Exact (default) or RegularExpression.", ["Exact", "RegularExpression"]), name: str("The query parameter name (case-sensitive)."), value: str("The value to match.") },
  "Matches an HTTP query parameter.",
  ["name", "value"],
);

const MATCH = obj(
  {
    path: obj(
      { type: str("How to match the path: Exact, PathPrefix (default) or RegularExpression.", ["Exact", "PathPrefix", "RegularExpression"]), value: str("The path to match against (default /).") },
      "Matches the request path. Defaults to a PathPrefix match on /.",
    ),
    headers: list(HEADER_MATCH, "Header matchers, ANDed.", "name"),
    queryParams: list(QUERY_MATCH, "Query parameter matchers, ANDed.", "name"),
    method: str("Matches the HTTP method.", ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]),
  },
  "The predicate a request must satisfy to match a rule; conditions within a match are ANDed, matches are ORed.",
);

const HEADER = obj({ name: str("The HTTP header name."), value: str("The header's value.") }, undefined, ["name", "value"]);
const HEADER_FILTER = obj(
  { set: list(HEADER, "Headers to overwrite.", "name"), add: list(HEADER, "Headers to append.", "name"), remove: list(str(), "Header names to remove.") },
  "Modifies HTTP headers.",
);
const PATH_MODIFIER = obj(
  { type: str("ReplaceFullPath or ReplacePrefixMatch.", ["ReplaceFullPath", "ReplacePrefixMatch"]), replaceFullPath: str("The path that replaces the whole request path."), replacePrefixMatch: str("The value that replaces the matched prefix.") },
  "How to modify the request path.",
  ["type"],
);

const FILTER = obj(
  {
    type: str("The kind of filter: RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect, URLRewrite, RequestMirror or ExtensionRef.", [
      "RequestHeaderModifier",
      "ResponseHeaderModifier",
      "RequestMirror",
      "RequestRedirect",
      "URLRewrite",
      "ExtensionRef",
    ]),
    requestHeaderModifier: HEADER_FILTER,
    responseHeaderModifier: HEADER_FILTER,
    requestMirror: any("Mirrors requests to another backend."),
    requestRedirect: obj(
      {
        scheme: str("The scheme of the redirect Location.", ["http", "https"]),
        hostname: str("The hostname of the redirect Location."),
        path: PATH_MODIFIER,
        port: int("The port of the redirect Location."),
        statusCode: int("The redirect's HTTP status code (301 or 302; default 302)."),
      },
      "Answers the request with a redirect.",
    ),
    urlRewrite: obj({ hostname: str("The Host the backend receives."), path: PATH_MODIFIER }, "Rewrites the request's URL before it is forwarded."),
    extensionRef: obj({ group: GROUP, kind: KIND, name: NAME }, "An implementation-specific filter.", ["group", "kind", "name"]),
  },
  "Processing applied to requests matching a rule.",
  ["type"],
);

const BACKEND_REF = obj(
  {
    group: GROUP,
    kind: str("Kind of the referent (default Service)."),
    name: NAME,
    namespace: str("Namespace of the backend; another namespace needs a ReferenceGrant there."),
    port: PORT,
    weight: int("The proportion of requests sent to this backend, relative to the rule's other backends (default 1; 0 sends none)."),
    filters: list(FILTER, "Filters applied only to requests sent to this backend."),
  },
  "A backend (a Service) requests matching the rule are forwarded to.",
  ["name"],
);

export const HTTP_ROUTE = obj(
  {
    spec: obj(
      {
        parentRefs: list(PARENT_REF, "The Gateways (and listeners) this route wants to attach to."),
        hostnames: list(str(), "Hostnames matched against the request's Host header; empty means any the listener accepts."),
        rules: list(
          obj(
            {
              name: str("The name of the rule, unique within the route."),
              matches: list(MATCH, "Conditions for matching the rule against requests (default: PathPrefix /)."),
              filters: list(FILTER, "Filters applied to requests that match this rule."),
              backendRefs: list(BACKEND_REF, "Where matching requests are sent, weighted."),
              timeouts: obj({ request: str("Timeout for the whole request (a Gateway API Duration, e.g. 10s)."), backendRequest: str("Timeout for one request to a backend.") }, "Timeouts for requests matching the rule."),
            },
            "Conditions, processing and backends for a set of requests.",
          ),
          "Rules: matchers, filters and backends (default: one rule matching PathPrefix /).",
        ),
      },
      "Spec defines the desired state of HTTPRoute.",
    ),
    status: obj(
      {
        parents: list(
          obj(
            { parentRef: PARENT_REF, controllerName: str("The controller that wrote this entry."), conditions: conditions("Conditions of the route with respect to this parent (Accepted, ResolvedRefs).") },
            undefined,
            ["parentRef", "controllerName"],
          ),
          "The status of the route with respect to each parent, one entry per controller.",
        ),
      },
      "Status defines the current state of HTTPRoute.",
    ),
  },
  "HTTPRoute provides a way to route HTTP requests by hostname, path, header, query parameter or method to weighted backends.",
);

// ---- ReferenceGrant ----

export const REFERENCE_GRANT = obj(
  {
    spec: obj(
      {
        from: list(obj({ group: GROUP, kind: KIND, namespace: str("Namespace of the referents allowed.") }, undefined, ["group", "kind", "namespace"]), "The trusted namespaces and kinds that may refer to the resources in \"to\"."),
        to: list(obj({ group: GROUP, kind: KIND, name: str("Name of the referent; empty means all of that kind in this namespace.") }, undefined, ["group", "kind"]), "The resources in this namespace that may be referred to."),
      },
      "Spec defines the desired state of ReferenceGrant.",
      ["from", "to"],
    ),
  },
  "ReferenceGrant lets resources in other namespaces refer to resources in this namespace.",
);

/** One Field as a CRD's structural openAPIV3Schema (no $ref: int-or-string and any as the x-kubernetes extensions). */
export function structural(f: Field): Record<string, unknown> {
  const d = f.d ? { description: f.d } : {};
  switch (f.t) {
    case "object":
      return { ...d, type: "object", properties: Object.fromEntries(Object.entries(f.props).map(([k, v]) => [k, structural(v)])), ...(f.required ? { required: f.required } : {}) };
    case "map":
      return { ...d, type: "object", additionalProperties: structural(f.of) };
    case "list":
      return { ...d, type: "array", items: structural(f.of), ...(f.mergeKey ? { "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": [f.mergeKey] } : {}) };
    case "any":
      return { ...d, type: "object", "x-kubernetes-preserve-unknown-fields": true };
    case "int-or-string":
      return { ...d, "x-kubernetes-int-or-string": true };
    case "date-time":
      return { ...d, type: "string", format: "date-time" };
    case "quantity":
      return { ...d, type: "string" };
    default:
      return { ...d, type: f.t, ...(f.enum ? { enum: f.enum } : {}) };
  }
}

/** A kind's openAPIV3Schema: apiVersion, kind, metadata and its own fields. */
export function crdSchema(f: Field): Record<string, unknown> {
  const own = structural(f) as { properties: Record<string, unknown> };
  return {
    openAPIV3Schema: {
      description: f.d,
      type: "object",
      properties: {
        apiVersion: { type: "string", description: "APIVersion defines the versioned schema of this representation of an object." },
        kind: { type: "string", description: "Kind is a string value representing the REST resource this object represents." },
        metadata: { type: "object" },
        ...own.properties,
      },
    },
  };
}
