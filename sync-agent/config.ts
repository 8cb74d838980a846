// The agent's resolved configuration: what the CLI (flags + environment)
// produces and what startAgent() takes. Tests build it directly.
import type { ProbeMode } from "./health/probe.ts";
import type { HealthOptions } from "./health/table.ts";
import type { AddressFamily, AddressType, ProbeAddressPreference } from "./model/node.ts";
import type { OriginsMode } from "../worker/snapshot/schema.ts";

export type SinkKind = "worker" | "kv-api";

export interface AgentConfig {
  cluster: string;
  /** Path to a kubeconfig; undefined = in-cluster, then KUBECONFIG, then ~/.kube/config. */
  kubeconfig?: string | undefined;
  sink: SinkKind;
  workerUrl?: string | undefined;
  pushToken?: string | undefined;
  /** Where the push token came from: re-read when it changes (a rotated Secret). */
  pushTokenFile?: string | undefined;
  accountId?: string | undefined;
  namespaceId?: string | undefined;
  apiToken?: string | undefined;
  apiTokenFile?: string | undefined;
  /** How often a token file is checked for a new secret (default 10 s). */
  tokenRecheckMs?: number | undefined;
  /** Cloudflare API base URL (tests point it at the fake). */
  cloudflareApiUrl?: string | undefined;
  loadBalancerClass: string;
  onlyClass: boolean;
  defaultDomain?: string | undefined;
  addressPreference: AddressType[];
  /** Which family a dual-stack node publishes; undefined = its first address of the preferred type. */
  addressFamily?: AddressFamily | undefined;
  /** Where nodes are probed: address types (default InternalIP, ExternalIP) or "published" (model/node.ts). */
  probeAddressPreference?: ProbeAddressPreference | undefined;
  /** Node addresses Cloudflare refuses (private, loopback, …) are expected (a lab, the tests): no warnings. */
  allowPrivateAddresses?: boolean | undefined;
  /** Patterns every annotated hostname must match (--allowed-hostnames); undefined = any. */
  allowedHostnames?: string[] | undefined;
  health: HealthOptions;
  /** How the edge reaches the nodes, published in the snapshot: undefined = direct (nodeIP:NodePort). */
  origins?: OriginsMode | undefined;
  /** Losing a Service's last ready endpoint is published after this hold (model/no-endpoint-hold.ts); undefined = NO_ENDPOINT_HOLD_MS. */
  noEndpointHoldMs?: number | undefined;
  /** Quiet period before a write. */
  coalesceMs: number;
  /** Longest a change may wait for quiet. */
  maxDelayMs: number;
  /** Minimum time between writes (KV: one write per second per key). */
  minWriteIntervalMs: number;
  /** Writes per UTC day; 0 = unlimited. */
  dailyWriteBudget: number;
  /** A heartbeat this long after the last push or heartbeat (sinks/heartbeat.ts); 0 = none; undefined = the sink's default. */
  heartbeatMs?: number | undefined;
  /** Fresh LIST of every resource this often; 0 = never. */
  resyncMs: number;
  /** While the Gateway API CRDs are missing, ask discovery again this often (default 60 s). */
  gatewayRecheckMs?: number;
  dryRun: boolean;
  /** Push even when the edge holds another cluster's snapshot under our name (--take-over). */
  takeOver?: boolean | undefined;
  logFormat: "json" | "pretty";
  logLevel: "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";
  /** --region: a label for where the cluster runs, carried in the snapshot (steering, status page). */
  region?: string | undefined;
  /** --location LAT,LON: the cluster's coordinates, for proximity steering at the edge. */
  location?: { lat: number; lon: number } | undefined;
}

export const DEFAULTS = {
  loadBalancerClass: "edgelb.dev/worker",
  addressPreference: ["ExternalIP", "InternalIP"] as AddressType[],
  health: { mode: "kube-proxy" as ProbeMode, intervalMs: 5_000, timeoutMs: 2_000, rise: 2, fall: 2, healthzPort: 10256 },
  coalesceMs: 250,
  maxDelayMs: 2_000,
  minWriteIntervalMs: 1_000,
  dailyWriteBudget: 0,
  resyncMs: 10 * 60_000,
};

/** A config with defaults for everything but the cluster and sink. */
export function defaultConfig(over: Partial<AgentConfig> & Pick<AgentConfig, "cluster">): AgentConfig {
  return {
    sink: "worker",
    loadBalancerClass: DEFAULTS.loadBalancerClass,
    onlyClass: false,
    addressPreference: [...DEFAULTS.addressPreference],
    health: { ...DEFAULTS.health },
    coalesceMs: DEFAULTS.coalesceMs,
    maxDelayMs: DEFAULTS.maxDelayMs,
    minWriteIntervalMs: DEFAULTS.minWriteIntervalMs,
    dailyWriteBudget: DEFAULTS.dailyWriteBudget,
    resyncMs: DEFAULTS.resyncMs,
    dryRun: false,
    logFormat: "json",
    logLevel: "info",
    ...over,
  };
}

/** The configuration as it is safe to log: secrets replaced. */
export function redactConfig(c: AgentConfig): Record<string, unknown> {
  return {
    ...c,
    ...(c.pushToken ? { pushToken: "[redacted]" } : {}),
    ...(c.apiToken ? { apiToken: "[redacted]" } : {}),
  };
}
