// Prometheus metrics for the agent, on a registry of its own (no hidden
// global): pass one Metrics object to whatever records, and serve it with
// startMetricsServer() next to /healthz and /readyz.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export type PushResult = "success" | "unchanged" | "error" | "rejected";
export type NodeState = "healthy" | "unhealthy" | "excluded";

export class Metrics {
  readonly registry: Registry;
  private readonly pushes: Counter<"result">;
  private readonly pushDuration: Histogram<"result">;
  private readonly kvWrites: Counter<"sink">;
  private readonly nodes: Gauge<"state">;
  private readonly services: Gauge<"state">;
  private readonly leader: Gauge;
  private readonly lastPush: Gauge;
  private readonly generation: Gauge;
  private readonly informerRestarts: Counter<"resource">;
  private readonly statusWrites: Counter<"result">;
  private readonly events: Counter<"reason" | "result">;
  private lastSuccessfulPushMs: number | null = null;
  private restartSource: (() => Record<string, number>) | null = null;
  private pushLagSource: (() => number) | null = null;

  constructor(opts: { defaultMetrics?: boolean; prefix?: string } = {}) {
    const p = opts.prefix ?? "edgelb_";
    const registers = [(this.registry = new Registry())];
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.pushes = new Counter({
      name: `${p}pushes_total`,
      help: "Snapshot pushes to the edge by result (success, unchanged = identical snapshot not rewritten, error, rejected = refused by the edge).",
      labelNames: ["result"],
      registers,
    });
    this.pushDuration = new Histogram({
      name: `${p}push_duration_seconds`,
      help: "Time taken by one push to the edge, retries included.",
      labelNames: ["result"],
      buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.kvWrites = new Counter({
      name: `${p}kv_writes_total`,
      help: "Writes of the cluster snapshot that reached storage (each one counts against the KV write quota).",
      labelNames: ["sink"],
      registers,
    });
    this.nodes = new Gauge({
      name: `${p}nodes`,
      help: "Nodes by state: healthy and unhealthy are eligible backends by their health checks; excluded are not eligible (label, taint, deleting).",
      labelNames: ["state"],
      registers,
    });
    this.services = new Gauge({
      name: `${p}services`,
      help: "LoadBalancer Services of our class: served are published, skipped cannot be served (see their Events).",
      labelNames: ["state"],
      registers,
    });
    this.leader = new Gauge({
      name: `${p}leader`,
      help: "1 while this replica holds the leader lease and may push and write status, else 0.",
      registers,
    });
    this.lastPush = new Gauge({
      name: `${p}last_successful_push_timestamp_seconds`,
      help: "Unix time of the last push the edge accepted (0 before the first).",
      registers,
    });
    this.generation = new Gauge({
      name: `${p}snapshot_generation`,
      help: "Generation of the last snapshot the edge accepted.",
      registers,
    });
    const seenRestarts = new Map<string, number>();
    const source = () => this.restartSource;
    this.informerRestarts = new Counter({
      name: `${p}informer_restarts_total`,
      help: "Informer (list+watch) restarts after an error, by resource.",
      labelNames: ["resource"],
      registers,
      // Informers count their own restarts; bring the counter up to date at scrape time.
      collect() {
        const counts = source()?.() ?? {};
        for (const [resource, n] of Object.entries(counts)) {
          const seen = seenRestarts.get(resource) ?? 0;
          this.inc({ resource }, Math.max(0, n - seen)); // inc by 0 makes the series visible from the start
          seenRestarts.set(resource, Math.max(n, seen));
        }
      },
    });
    const lagSource = () => this.pushLagSource;
    new Gauge({
      name: `${p}push_lag_seconds`,
      help: "How long the newest change has been waiting to reach the edge (0 when the edge is up to date).",
      registers,
      collect() {
        this.set(lagSource()?.() ?? 0);
      },
    });
    this.statusWrites = new Counter({
      name: `${p}service_status_writes_total`,
      help: "Patches of Service status.loadBalancer by result (conflict: refused with 409, planned again from the new version).",
      labelNames: ["result"],
      registers,
    });
    this.events = new Counter({
      name: `${p}events_total`,
      help: "Kubernetes Events by reason and result (created, updated = count bumped, dropped = rate-limited, error).",
      labelNames: ["reason", "result"],
      registers,
    });
    this.leader.set(0);
    this.lastPush.set(0);
    for (const state of ["healthy", "unhealthy", "excluded"] as const) this.nodes.set({ state }, 0);
    for (const state of ["served", "skipped"] as const) this.services.set({ state }, 0);
  }

  /** Records one push; `seconds` is wall time of the attempt (undefined when unknown). */
  push(result: PushResult, seconds: number | undefined, generation?: number, at: number = Date.now()): void {
    this.pushes.inc({ result });
    if (seconds !== undefined) this.pushDuration.observe({ result }, seconds);
    if (result === "success" || result === "unchanged") {
      this.lastSuccessfulPushMs = at;
      this.lastPush.set(at / 1000);
      if (generation !== undefined) this.generation.set(generation);
    }
  }

  kvWrite(sink: string): void {
    this.kvWrites.inc({ sink });
  }

  setNodes(counts: Partial<Record<NodeState, number>>): void {
    for (const state of ["healthy", "unhealthy", "excluded"] as const) this.nodes.set({ state }, counts[state] ?? 0);
  }

  setServices(counts: { served: number; skipped: number }): void {
    this.services.set({ state: "served" }, counts.served);
    this.services.set({ state: "skipped" }, counts.skipped);
  }

  setLeader(isLeader: boolean): void {
    this.leader.set(isLeader ? 1 : 0);
  }

  informerRestart(resource: string): void {
    this.informerRestarts.inc({ resource });
  }

  /** Reads restart counts kept elsewhere (the informers) at every scrape. */
  observeInformerRestarts(counts: () => Record<string, number>): void {
    this.restartSource = counts;
  }

  /** Reads the push lag (seconds) at every scrape. */
  observePushLag(seconds: () => number): void {
    this.pushLagSource = seconds;
  }

  statusWrite(result: "success" | "error" | "conflict"): void {
    this.statusWrites.inc({ result });
  }

  event(reason: string, result: "created" | "updated" | "dropped" | "error"): void {
    this.events.inc({ reason, result });
  }

  /** Epoch ms of the last accepted push, for readiness. */
  lastSuccessfulPushAt(): number | null {
    return this.lastSuccessfulPushMs;
  }
}

export { startMetricsServer, parseListenAddress, type MetricsServer, type Readiness, type ReadinessCheck } from "./server.ts";
export { agentReadiness, pushLagReport, type AgentReadinessInput, type PushLagInput } from "./readiness.ts";
