// The gate's Prometheus metrics, on a registry of its own (served on the admin
// listener, never on the internet-facing port).
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { REJECT_REASONS, type RejectReason } from "../verify/index.ts";

export type UpstreamErrorKind = "connect" | "connect_timeout" | "reset" | "timeout";

export interface GateMetrics {
  registry: Registry;
  forwarded: Counter<"kind">;
  rejected: Counter<"reason">;
  upstreamErrors: Counter<"kind">;
  /** From the request head to the NodePort's response head (verification included). */
  latency: Histogram<never>;
  keys: Gauge<never>;
  replayEntries: Gauge<never>;
  /** 1, labelled with how connections from the edge are handled (--edge: wrap or net). */
  info: Gauge<"edge">;
}

export function createGateMetrics(opts: { defaults?: boolean; /** The replay cache's size, read at each scrape (not on every request). */ replaySize?: () => number } = {}): GateMetrics {
  const registry = new Registry();
  if (opts.defaults !== false) collectDefaultMetrics({ register: registry, prefix: "edgelb_gate_" });
  const forwarded = new Counter({
    name: "edgelb_gate_forwarded_total",
    help: "Signed requests forwarded to a NodePort (kind: http or websocket)",
    labelNames: ["kind"] as const,
    registers: [registry],
  });
  const rejected = new Counter({
    name: "edgelb_gate_rejected_total",
    help: "Requests refused with 403, by reason",
    labelNames: ["reason"] as const,
    registers: [registry],
  });
  for (const reason of REJECT_REASONS) rejected.inc({ reason: reason satisfies RejectReason }, 0);
  const upstreamErrors = new Counter({
    name: "edgelb_gate_upstream_errors_total",
    help: "Forwarded requests the NodePort failed (connect: refused or unreachable; connect_timeout: no connection within --connect-timeout, the NodePort drops them; reset: the connection broke; timeout: no answer in time)",
    labelNames: ["kind"] as const,
    registers: [registry],
  });
  for (const kind of ["connect", "connect_timeout", "reset", "timeout"] as const) upstreamErrors.inc({ kind }, 0);
  const latency = new Histogram({
    name: "edgelb_gate_request_duration_seconds",
    help: "Time from a signed request's head to the NodePort's response head",
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const keys = new Gauge({ name: "edgelb_gate_keys_loaded", help: "Signing keys the gate accepts (0: every request is refused)", registers: [registry] });
  const replaySize = opts.replaySize;
  const replayEntries = new Gauge({
    name: "edgelb_gate_replay_cache_entries",
    help: "Nonces remembered to refuse replays",
    registers: [registry],
    ...(replaySize ? { collect(this: Gauge) { this.set(replaySize()); } } : {}),
  });
  // On the firewalled metrics port only: the internet-facing /healthz does not say what the gate runs on (rv-gate 3).
  const info = new Gauge({ name: "edgelb_gate_info", help: "1, labelled with the gate's edge path (edge: wrap = Node's TCP handle, net = node:net sockets)", labelNames: ["edge"] as const, registers: [registry] });
  return { registry, forwarded, rejected, upstreamErrors, latency, keys, replayEntries, info };
}
