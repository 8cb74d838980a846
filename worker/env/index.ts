// The worker's bindings and the settings derived from them (parsed once per isolate).
import * as v from "valibot";
import { normalizeHost } from "../config/routes.ts";
import { ClusterName, type TransportName } from "../snapshot/schema.ts";
import { MAX_HOLD_MS } from "../generations/api.ts";
import { DEFAULT_FAST_BUDGET } from "../generations/budget.ts";

export interface Env {
  EDGELB_KV: KVNamespace;
  /** Comma-separated cluster names whose snapshots are routed. */
  EDGELB_CLUSTERS?: string;
  /** Refresh interval in seconds: KV is read when the location's copy is older than this. */
  EDGELB_CACHE_TTL?: string;
  /** The fast path's generations Durable Object (worker/generations); absent: KV only. */
  EDGELB_GENERATIONS?: DurableObjectNamespace;
  /** At most one check per location per this many seconds to the generations object (default 5; 0: the fast path is off). */
  EDGELB_FAST_CHECK?: string;
  /** Seconds the generations object holds a location's check until a change (default 25, at most 25; 0: poll every EDGELB_FAST_CHECK instead). */
  EDGELB_FAST_HOLD?: string;
  /** Requests a UTC day the generations object serves before each location's checks back off (60 s to 1 h, so the day stays below 125 % of it; default 80,000; 0: no budget). Pushes are never refused. */
  EDGELB_FAST_BUDGET?: string;
  /** auto | fetch | socket */
  EDGELB_TRANSPORT?: string;
  /** "true" logs one line per proxied request. */
  EDGELB_REQUEST_LOGS?: string;
  /** errors | always: which origin answers carry X-Request-Id back to the client (default errors: 5xx only). */
  EDGELB_ECHO_REQUEST_ID?: string;
  /** "true": origins also get RFC 7239 Forwarded (X-Forwarded-* always). */
  EDGELB_FORWARDED?: string;
  /** The small-setup token: may push and delete any cluster and read everything. */
  EDGELB_PUSH_TOKEN?: string;
  /** JSON map {"cluster": "token"}: each token may push, read and delete only its own cluster. */
  EDGELB_PUSH_TOKENS?: string;
  /** Read-only token: the status page and the GET endpoints. */
  EDGELB_READ_TOKEN?: string;
  /** Comma-separated hostnames that serve /__edgelb/*; unset: any hostname no snapshot routes. */
  EDGELB_CONTROL_HOSTS?: string;
  /** Largest accepted push body in bytes (default 10 MiB). */
  EDGELB_MAX_PUSH_BYTES?: string;
  /**
   * This deployment's name in the zone's shared cache (caches.default is per zone, so staging and
   * production on one zone would read each other's location copies). Default: the generations
   * object's id (unique per deployment), else "default".
   */
  EDGELB_INSTANCE?: string;
  /** JSON: hostname pattern → steering rule (worker/steering, docs/multi-cluster.md). */
  EDGELB_STEERING?: string;
  /** Seconds after which a cluster whose snapshot did not change is skipped by steering; unset: never. */
  EDGELB_STALE_AFTER?: string;
}

export interface Settings {
  clusters: string[];
  cacheTtlMs: number;
  transport: TransportName;
  requestLogs: boolean;
  /** Which origin answers carry X-Request-Id back (EDGELB_ECHO_REQUEST_ID): 5xx only, or all. */
  echoRequestId: "errors" | "always";
  /** Origins also get RFC 7239 Forwarded (EDGELB_FORWARDED). */
  forwarded: boolean;
  pushToken: string | undefined;
  /** cluster → its push token (EDGELB_PUSH_TOKENS). */
  clusterTokens: Map<string, string>;
  readToken: string | undefined;
  /** Normalized hostnames; undefined: any hostname that no snapshot routes. */
  controlHosts: Set<string> | undefined;
  maxPushBytes: number;
  /** Fast path: at most one check per location per this many ms; 0: off. */
  fastCheckMs: number;
  /** How long the object holds a check (ms); 0: polling. */
  fastHoldMs: number;
  /** The generations object's daily budget (requests per UTC day); 0: none. */
  fastBudget: number;
  /** Problems with the vars, logged once at start; defaults are used instead. */
  problems: string[];
}

// KV itself takes up to ~60 s to reach other locations: reading it more often buys nothing.
const DEFAULT_TTL_S = 60;
// At most one check per location every 5 s: even a cluster that changes all the time costs at most
// 17,280 requests a day per location (5 busy locations inside the free plan's 100,000).
export const DEFAULT_FAST_CHECK_S = 5;
// Held 25 s: 3,456 checks a day per quiet location; a held check ends before waitUntil's 30 s.
export const DEFAULT_FAST_HOLD_S = MAX_HOLD_MS / 1000;
const MAX_FAST_HOLD_S = MAX_HOLD_MS / 1000;
const DEFAULT_MAX_PUSH = 10 * 1024 * 1024;

export function readSettings(env: Partial<Env>): Settings {
  const problems: string[] = [];
  const clusters = (env.EDGELB_CLUSTERS ?? "default")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (clusters.length === 0) {
    problems.push(`EDGELB_CLUSTERS is empty; serving "default"`);
    clusters.push("default");
  }

  let cacheTtlMs = DEFAULT_TTL_S * 1000;
  if (env.EDGELB_CACHE_TTL !== undefined && env.EDGELB_CACHE_TTL.trim() !== "") {
    const n = Number(env.EDGELB_CACHE_TTL);
    if (Number.isFinite(n) && n >= 0) cacheTtlMs = n * 1000;
    else problems.push(`EDGELB_CACHE_TTL "${env.EDGELB_CACHE_TTL}" is not a number of seconds; using ${DEFAULT_TTL_S}`);
  }

  let transport: TransportName = "auto";
  const t = (env.EDGELB_TRANSPORT ?? "").trim().toLowerCase();
  if (t === "fetch" || t === "socket" || t === "auto") transport = t;
  else if (t !== "") problems.push(`EDGELB_TRANSPORT "${env.EDGELB_TRANSPORT}" is not auto, fetch or socket; using auto`);

  let echoRequestId: Settings["echoRequestId"] = "errors";
  const echo = (env.EDGELB_ECHO_REQUEST_ID ?? "").trim().toLowerCase();
  if (echo === "errors" || echo === "always") echoRequestId = echo;
  else if (echo !== "") problems.push(`EDGELB_ECHO_REQUEST_ID "${env.EDGELB_ECHO_REQUEST_ID}" is not errors or always; using errors`);

  const fwd = (env.EDGELB_FORWARDED ?? "").trim().toLowerCase();
  const forwarded = fwd === "true";
  if (fwd !== "" && fwd !== "true" && fwd !== "false") problems.push(`EDGELB_FORWARDED "${env.EDGELB_FORWARDED}" is not true or false; using false`);

  let fastCheckMs = DEFAULT_FAST_CHECK_S * 1000;
  if (env.EDGELB_FAST_CHECK !== undefined && env.EDGELB_FAST_CHECK.trim() !== "") {
    const n = Number(env.EDGELB_FAST_CHECK);
    if (Number.isFinite(n) && n >= 0) fastCheckMs = n * 1000;
    else problems.push(`EDGELB_FAST_CHECK "${env.EDGELB_FAST_CHECK}" is not a number of seconds; using ${DEFAULT_FAST_CHECK_S}`);
  }

  let fastHoldMs = DEFAULT_FAST_HOLD_S * 1000;
  if (env.EDGELB_FAST_HOLD !== undefined && env.EDGELB_FAST_HOLD.trim() !== "") {
    const n = Number(env.EDGELB_FAST_HOLD);
    if (Number.isFinite(n) && n >= 0 && n <= MAX_FAST_HOLD_S) fastHoldMs = n * 1000;
    else problems.push(`EDGELB_FAST_HOLD "${env.EDGELB_FAST_HOLD}" is not a number of seconds from 0 to ${MAX_FAST_HOLD_S} (a check must end within waitUntil's 30 s); using ${DEFAULT_FAST_HOLD_S}`);
  }

  let fastBudget = DEFAULT_FAST_BUDGET;
  if (env.EDGELB_FAST_BUDGET !== undefined && env.EDGELB_FAST_BUDGET.trim() !== "") {
    const n = Number(env.EDGELB_FAST_BUDGET);
    if (Number.isSafeInteger(n) && n >= 0) fastBudget = n;
    else problems.push(`EDGELB_FAST_BUDGET "${env.EDGELB_FAST_BUDGET}" is not a whole number of requests a day; using ${DEFAULT_FAST_BUDGET}`);
  }

  let maxPushBytes = DEFAULT_MAX_PUSH;
  if (env.EDGELB_MAX_PUSH_BYTES) {
    const n = Number(env.EDGELB_MAX_PUSH_BYTES);
    if (Number.isInteger(n) && n > 0) maxPushBytes = n;
    else problems.push(`EDGELB_MAX_PUSH_BYTES "${env.EDGELB_MAX_PUSH_BYTES}" is not a positive integer; using ${DEFAULT_MAX_PUSH}`);
  }

  const token = env.EDGELB_PUSH_TOKEN?.trim() || undefined;
  const readToken = env.EDGELB_READ_TOKEN?.trim() || undefined;
  const clusterTokens = readClusterTokens(env.EDGELB_PUSH_TOKENS, problems);
  for (const [cluster, t] of clusterTokens) {
    // A token is one role: a cluster's token that is also the read or the
    // single token would carry both, so it is left out.
    if (t === token || t === readToken) {
      problems.push(`EDGELB_PUSH_TOKENS: the token of cluster "${cluster}" equals ${t === token ? "EDGELB_PUSH_TOKEN" : "EDGELB_READ_TOKEN"}; it is not accepted as a cluster token`);
      clusterTokens.delete(cluster);
    }
  }
  if (readToken !== undefined && readToken === token) {
    problems.push(`EDGELB_READ_TOKEN equals EDGELB_PUSH_TOKEN: that token can write; give the read token its own value`);
  }
  return {
    clusters: [...new Set(clusters)],
    cacheTtlMs,
    transport,
    requestLogs: (env.EDGELB_REQUEST_LOGS ?? "").trim().toLowerCase() === "true",
    echoRequestId,
    forwarded,
    pushToken: token,
    clusterTokens,
    readToken,
    controlHosts: readControlHosts(env.EDGELB_CONTROL_HOSTS, problems),
    maxPushBytes,
    fastCheckMs,
    fastHoldMs,
    fastBudget,
    problems,
  };
}

/**
 * EDGELB_PUSH_TOKENS: a JSON object of cluster name → token. A bad entry is
 * named and left out (that cluster's agent is refused: fail closed); a map that
 * is not JSON is ignored as a whole.
 */
function readClusterTokens(raw: string | undefined, problems: string[]): Map<string, string> {
  const out = new Map<string, string>();
  if (raw === undefined || raw.trim() === "") return out;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    // The message of JSON.parse would quote the secret: say only what is wrong.
    problems.push(`EDGELB_PUSH_TOKENS is not JSON (expected {"cluster": "token", ...}); no per-cluster token is accepted`);
    return out;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    problems.push(`EDGELB_PUSH_TOKENS is not a JSON object (expected {"cluster": "token", ...}); no per-cluster token is accepted`);
    return out;
  }
  const seen = new Map<string, string>();
  for (const [cluster, token] of Object.entries(value as Record<string, unknown>)) {
    if (!v.safeParse(ClusterName, cluster).success) {
      problems.push(`EDGELB_PUSH_TOKENS: "${cluster}" is not a cluster name (a DNS label); its token is not accepted`);
      continue;
    }
    if (typeof token !== "string" || token.trim() === "") {
      problems.push(`EDGELB_PUSH_TOKENS: the token of cluster "${cluster}" is not a non-empty string; it is not accepted`);
      continue;
    }
    const t = token.trim();
    const other = seen.get(t);
    if (other !== undefined) {
      // One token for two clusters would let either agent write the other's snapshot.
      problems.push(`EDGELB_PUSH_TOKENS: clusters "${other}" and "${cluster}" share a token; neither is accepted`);
      out.delete(other);
      continue;
    }
    seen.set(t, cluster);
    out.set(cluster, t);
  }
  return out;
}

function readControlHosts(raw: string | undefined, problems: string[]): Set<string> | undefined {
  if (raw === undefined || raw.trim() === "") return undefined;
  const hosts = new Set<string>();
  for (const entry of raw.split(",")) {
    const e = entry.trim();
    if (!e) continue;
    if (/[\s/*@?#]/.test(e)) {
      problems.push(`EDGELB_CONTROL_HOSTS: "${e}" is not a hostname; left out`);
      continue;
    }
    hosts.add(normalizeHost(e));
  }
  if (hosts.size === 0) {
    // Set but empty: serve control nowhere rather than everywhere.
    problems.push(`EDGELB_CONTROL_HOSTS names no valid hostname; the control endpoints answer on no hostname`);
  }
  return hosts;
}
