// The worker's bindings and the settings derived from them (parsed once per isolate).
import type { TransportName } from "../snapshot/schema.ts";

export interface Env {
  EDGELB_KV: KVNamespace;
  /** Comma-separated cluster names whose snapshots are routed. */
  EDGELB_CLUSTERS?: string;
  /** Seconds a snapshot is served from memory before a background refresh. */
  EDGELB_CACHE_TTL?: string;
  /** auto | fetch | socket */
  EDGELB_TRANSPORT?: string;
  /** "true" logs one line per proxied request. */
  EDGELB_REQUEST_LOGS?: string;
  /** Bearer token of the control endpoints; unset disables them. */
  EDGELB_PUSH_TOKEN?: string;
  /** Largest accepted push body in bytes (default 10 MiB). */
  EDGELB_MAX_PUSH_BYTES?: string;
}

export interface Settings {
  clusters: string[];
  cacheTtlMs: number;
  transport: TransportName;
  requestLogs: boolean;
  pushToken: string | undefined;
  maxPushBytes: number;
  /** Problems with the vars, logged once at start; defaults are used instead. */
  problems: string[];
}

const DEFAULT_TTL_S = 10;
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

  let maxPushBytes = DEFAULT_MAX_PUSH;
  if (env.EDGELB_MAX_PUSH_BYTES) {
    const n = Number(env.EDGELB_MAX_PUSH_BYTES);
    if (Number.isInteger(n) && n > 0) maxPushBytes = n;
    else problems.push(`EDGELB_MAX_PUSH_BYTES "${env.EDGELB_MAX_PUSH_BYTES}" is not a positive integer; using ${DEFAULT_MAX_PUSH}`);
  }

  const token = env.EDGELB_PUSH_TOKEN?.trim();
  return {
    clusters: [...new Set(clusters)],
    cacheTtlMs,
    transport,
    requestLogs: (env.EDGELB_REQUEST_LOGS ?? "").trim().toLowerCase() === "true",
    pushToken: token ? token : undefined,
    maxPushBytes,
    problems,
  };
}
