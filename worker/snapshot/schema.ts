// The KV contract between the sync agent and the edge worker: one snapshot per
// cluster under the key `cluster/<name>`. Both sides import this module and
// nothing else crosses between them. Valibot because it tree-shakes to a few KB
// in the Worker bundle.
import * as v from "valibot";
import { parseCidr } from "../source-ranges/index.ts";
import { GatewaySection } from "./gateway.ts";

export { parseCidr, parseIP, cidrContains, formatCidr, type Cidr, type IP } from "../source-ranges/index.ts";

export const SNAPSHOT_SCHEMA = "edgelb.dev/snapshot/v1";

/** The KV key a cluster's snapshot lives under. */
export function snapshotKey(cluster: string): string {
  return `cluster/${cluster}`;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const IPV4 =
  /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
// Permissive IPv6 check (hex groups, one "::", optional embedded IPv4); the
// socket layer rejects anything it cannot connect to anyway.
const IPV6 = /^[0-9a-fA-F:]*:[0-9a-fA-F:]*(\d+\.\d+\.\d+\.\d+)?$/;
const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;
const WILDCARD_HOST = /^\*\.(?=.{1,251}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;

export function isIPv4(s: string): boolean {
  return IPV4.test(s);
}
export function isIPv6(s: string): boolean {
  return s.includes(":") && IPV6.test(s) && s.split("::").length <= 2;
}
export function isIPLiteral(s: string): boolean {
  return isIPv4(s) || isIPv6(s);
}

export const ClusterName = v.pipe(
  v.string(),
  v.regex(DNS_LABEL, "must be a DNS label (lowercase letters, digits and '-', at most 63)"),
);

export const NodeAddress = v.pipe(
  v.string(),
  v.check(
    (s) => isIPv4(s) || isIPv6(s) || HOSTNAME.test(s),
    "must be an IPv4 address, an IPv6 address or a lowercase hostname",
  ),
);

export const Hostname = v.pipe(
  v.string(),
  v.check(
    (s) => HOSTNAME.test(s) || WILDCARD_HOST.test(s),
    "must be a lowercase hostname or a '*.' wildcard",
  ),
);

const Port = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65535));
const Millis = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(600_000));

/** An IPv4 or IPv6 CIDR, e.g. "203.0.113.0/24" or "2001:db8::/32". */
export const SourceRange = v.pipe(v.string(), v.maxLength(64), v.check((s) => parseCidr(s) !== null, "must be an IPv4 or IPv6 CIDR"));

/** A short label for where a cluster runs, e.g. "eu-west" (agent --region). */
export const Region = v.pipe(v.string(), v.regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, "must be 1-63 letters, digits, '-', '_' or '.'"));

/** The cluster's coordinates in degrees (agent --location LAT,LON): proximity steering. */
export const Location = v.object({
  lat: v.pipe(v.number(), v.minValue(-90), v.maxValue(90)),
  lon: v.pipe(v.number(), v.minValue(-180), v.maxValue(180)),
});

export const Node = v.object({
  name: v.pipe(v.string(), v.minLength(1), v.maxLength(253)),
  address: NodeAddress,
  /** The agent's verdict from active health checks (kube-proxy /healthz or TCP). */
  healthy: v.boolean(),
  zone: v.optional(v.string()),
});

export const Algorithm = v.picklist(["round-robin", "random", "weighted", "least-request"]);
export const Affinity = v.picklist(["none", "client-ip", "cookie"]);
export const Transport = v.picklist(["auto", "fetch", "socket"]);

/** docs/worker.md "Connect timeout": a SYN lost once (resent after 1 s) on a path up to ~500 ms RTT still connects; shorter waits at a dropping node. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 1_500;

/** RFC 8305's recommended Connection Attempt Delay, the connect hedge's default floor (worker/proxy/hedge). */
export const DEFAULT_CONNECT_ATTEMPT_DELAY_MS = 250;

export const Policy = v.object({
  algorithm: v.optional(Algorithm, "round-robin"),
  /** client-ip: consistent hash on CF-Connecting-IP; cookie: sticky cookie. */
  affinity: v.optional(Affinity, "none"),
  cookieName: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9_.-]{1,64}$/)), "edgelb_affinity"),
  /** Total tries per request (1 = no retry) on connection failures. */
  attempts: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(10)), 3),
  connectTimeoutMs: v.optional(Millis, DEFAULT_CONNECT_TIMEOUT_MS),
  /**
   * Connect hedging (docs/worker.md "Connect hedging"): a connect not opened after this long
   * races a second node's (RFC 8305's Connection Attempt Delay, at least 10 ms); 0 turns it off.
   */
  connectAttemptDelayMs: v.optional(
    v.pipe(
      v.number(),
      v.integer(),
      v.check((n) => n === 0 || (n >= 10 && n <= 600_000), "must be 0 (no hedging) or 10 to 600000 ms (RFC 8305: never below 10 ms)"),
    ),
    DEFAULT_CONNECT_ATTEMPT_DELAY_MS,
  ),
  /** Time to the first response byte once connected (up to an hour, for long-poll apps). */
  responseTimeoutMs: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(3_600_000)), 30_000),
  transport: v.optional(Transport),
  /** Retry POST/PATCH too after bytes reached a node or on 502/503/504 (may run them twice). */
  retryNonIdempotent: v.optional(v.boolean(), false),
});

/** For externalTrafficPolicy: Local, a node with ready local endpoints. */
export const Endpoint = v.object({
  node: v.string(),
  /** Number of ready local endpoints (kube-proxy's X-Load-Balancing-Endpoint-Weight). */
  weight: v.pipe(v.number(), v.integer(), v.minValue(1)),
  /** Result of probing the Service's healthCheckNodePort on that node. */
  healthy: v.optional(v.boolean(), true),
});

export const Service = v.object({
  namespace: v.pipe(v.string(), v.regex(DNS_LABEL)),
  name: v.pipe(v.string(), v.regex(DNS_LABEL)),
  hostnames: v.pipe(v.array(Hostname), v.minLength(1)),
  nodePort: Port,
  scheme: v.optional(v.picklist(["http", "https"]), "http"),
  trafficPolicy: v.optional(v.picklist(["Cluster", "Local"]), "Cluster"),
  /**
   * Local: only these nodes are backends. Cluster: absent = every node; `[]` = the Service
   * has no ready endpoint anywhere (scaled to 0), so no node can serve it: the edge answers 503.
   */
  endpoints: v.optional(v.array(Endpoint)),
  /** loadBalancerSourceRanges: when present, only clients (CF-Connecting-IP) in one of these CIDRs get through. */
  sourceRanges: v.optional(v.pipe(v.array(SourceRange), v.minLength(1), v.maxLength(1000))),
  policy: v.optional(Policy, {}),
});

/**
 * How the edge reaches this cluster's nodes: "direct" (nodeIP:NodePort, the default when absent)
 * or "gate" (nodeIP:port of the node gate, with signed requests naming the NodePort).
 */
export const Origins = v.variant("mode", [
  v.object({ mode: v.literal("direct") }),
  v.object({ mode: v.literal("gate"), port: Port }),
]);

export const Snapshot = v.pipe(
  v.object({
    schema: v.literal(SNAPSHOT_SCHEMA),
    cluster: ClusterName,
    /** The cluster's identity (its kube-system Namespace UID): tells two clusters pushing under one name apart. */
    clusterId: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(128))),
    /** Strictly increasing per cluster; the worker refuses to go backwards. */
    generation: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(Number.MAX_SAFE_INTEGER)),
    publishedAt: v.pipe(v.string(), v.isoTimestamp()),
    /** Where the cluster is (agent --region, --location): steering by geography and proximity. */
    region: v.optional(Region),
    location: v.optional(Location),
    /**
     * Every node failed the agent's health checks, so it published them all as healthy (fail open, as a
     * cloud load balancer does). Steering prefers another cluster that has really healthy nodes.
     */
    failOpen: v.optional(v.boolean()),
    nodes: v.array(Node),
    services: v.array(Service),
    /** Absent: direct. */
    origins: v.optional(Origins),
    /** Gateway API routes (worker/snapshot/gateway.ts); lazy: that module reads this one's schemas. */
    gateway: v.optional(v.lazy(() => GatewaySection)),
  }),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const s = dataset.value;
    const names = new Set<string>();
    for (const n of s.nodes) {
      if (names.has(n.name)) addIssue({ message: `duplicate node name "${n.name}"` });
      names.add(n.name);
    }
    const ids = new Set<string>();
    for (const svc of s.services) {
      const id = `${svc.namespace}/${svc.name}`;
      if (ids.has(id)) addIssue({ message: `duplicate service "${id}"` });
      ids.add(id);
      for (const ep of svc.endpoints ?? []) {
        if (!names.has(ep.node)) {
          addIssue({ message: `service "${id}" has an endpoint on unknown node "${ep.node}"` });
        }
      }
    }
  }),
);

export type SnapshotInput = v.InferInput<typeof Snapshot>;
export type Snapshot = v.InferOutput<typeof Snapshot>;
export type SnapshotLocation = v.InferOutput<typeof Location>;
export type SnapshotNode = v.InferOutput<typeof Node>;
export type SnapshotService = v.InferOutput<typeof Service>;
export type ServicePolicy = v.InferOutput<typeof Policy>;
export type SnapshotEndpoint = v.InferOutput<typeof Endpoint>;
export type AlgorithmName = v.InferOutput<typeof Algorithm>;
export type AffinityName = v.InferOutput<typeof Affinity>;
export type TransportName = v.InferOutput<typeof Transport>;
export type OriginsMode = v.InferOutput<typeof Origins>;

export type ParseResult =
  | { ok: true; snapshot: Snapshot }
  | { ok: false; error: string };

/** Validates an already-decoded value. Errors name the path, e.g. `services.3.nodePort: ...`. */
export function validateSnapshot(value: unknown): ParseResult {
  const result = v.safeParse(Snapshot, value);
  if (result.success) return { ok: true, snapshot: result.output };
  const first = result.issues.slice(0, 5).map((issue) => {
    const path = v.getDotPath(issue);
    return path ? `${path}: ${issue.message}` : issue.message;
  });
  const more = result.issues.length > 5 ? ` (and ${result.issues.length - 5} more)` : "";
  return { ok: false, error: `invalid snapshot: ${first.join("; ")}${more}` };
}

/** Decodes and validates the JSON text stored in KV or sent to the push endpoint. */
export function parseSnapshot(text: string): ParseResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: `snapshot is not valid JSON: ${(err as Error).message}` };
  }
  return validateSnapshot(value);
}
