// The agent as a good cluster citizen, in one piece the controller wires in:
// leader election (only the leader writes), Service status and Events, and
// metrics with /healthz and /readyz. The controller
//   - asks `isLeader()` right before every push (and bounds the push by
//     `writeDeadline()`), and listens to `leadership` to start/stop pushing;
//   - calls `afterSync()` with the picture after every sync, leader or not;
//   - reports pushes, writes and counts on `metrics`;
//   - on shutdown stops itself first, then calls `stop()` (which releases the
//     lease, so the standby takes over at once).
import { EventEmitter } from "node:events";
import { hostname } from "node:os";
import type { KubeConfig } from "@kubernetes/client-node";
import { pino, type Logger } from "pino";
import {
  DEFAULT_LEASE_NAME,
  DEFAULT_TIMINGS,
  LeaderElector,
  defaultIdentity,
  defaultLeaseNamespace,
  kubeLeaseStore,
  type LeaseStore,
  type LeaderTimings,
} from "../leader/index.ts";
import { Metrics, agentReadiness, pushLagReport, startMetricsServer, type MetricsServer, type Readiness } from "../metrics/index.ts";
import {
  EventRecorder,
  StatusWriter,
  kubeEventSink,
  kubeServiceStatusClient,
  type CorrelatorOptions,
  type EventSink,
  type ReconcileInput,
  type ServiceStatusClient,
} from "../status/index.ts";

export interface CitizenConfig {
  /** Where /metrics, /healthz and /readyz listen, e.g. ":9090"; "" disables the server. */
  metricsAddress: string;
  leaderElect: boolean;
  leaseName: string;
  /** Namespace of the Lease; default: the pod's namespace, else "edgelb". */
  leaseNamespace?: string | undefined;
  /** Holder identity; default: pod name + random suffix. */
  identity?: string | undefined;
  timings: LeaderTimings;
  /** Write Service status and Events (off for --dry-run). */
  writeStatus: boolean;
  /** A change waiting longer than this to reach the edge is logged as a warning (not a readiness failure). */
  maxPushLagMs: number;
}

export const CITIZEN_DEFAULTS: CitizenConfig = {
  metricsAddress: ":9090",
  leaderElect: true,
  leaseName: DEFAULT_LEASE_NAME,
  timings: { ...DEFAULT_TIMINGS },
  writeStatus: true,
  maxPushLagMs: 5 * 60_000,
};

export interface CitizenOptions {
  kubeConfig: KubeConfig;
  config: CitizenConfig;
  logger?: Logger;
  /** For /readyz: have the informers listed once? */
  informersSynced: () => boolean;
  /** For /readyz: since when has a change been waiting to reach the edge (null = up to date)? */
  pendingSince?: () => number | null;
  /** Overrides for tests. */
  leaseStore?: LeaseStore;
  eventSink?: EventSink;
  statusClient?: ServiceStatusClient;
  correlator?: Partial<CorrelatorOptions>;
  metrics?: Metrics;
  /** Ask the controller for another sync (a Service status write was refused with 409). */
  resync?: () => void;
}

export interface CitizenEvents {
  /** true: became leader, start pushing. false: stop writing now. */
  leadership: [leading: boolean];
}

export class Citizen extends EventEmitter<CitizenEvents> {
  readonly metrics: Metrics;
  readonly elector: LeaderElector | null;
  readonly events: EventRecorder;
  readonly status: StatusWriter;
  readonly identity: string;
  private readonly opts: CitizenOptions;
  private readonly log: Logger;
  private server: MetricsServer | null = null;
  private stopped = false;
  private lastEdgeConfirmedAt: number | null = null;
  /** pendingSince of the lag episode reported as too long, else null. */
  private lagReported: number | null = null;
  private lastPushError: string | null = null;
  private lagTimer: NodeJS.Timeout | null = null;
  private leading = false;

  constructor(opts: CitizenOptions) {
    super();
    this.opts = opts;
    const c = opts.config;
    this.log = opts.logger ?? pino({ level: "silent" });
    this.metrics = opts.metrics ?? new Metrics();
    this.metrics.observePushLag(() => this.pushLagSeconds());
    this.identity = c.identity ?? defaultIdentity();
    this.elector = c.leaderElect
      ? new LeaderElector({
          store: opts.leaseStore ?? kubeLeaseStore(opts.kubeConfig, c.leaseNamespace ?? defaultLeaseNamespace(), c.leaseName),
          identity: this.identity,
          timings: c.timings,
          logger: this.log,
        })
      : null;
    this.elector?.on("started", () => this.setLeading(true));
    this.elector?.on("stopped", () => this.setLeading(false));
    this.events = new EventRecorder({
      sink: opts.eventSink ?? kubeEventSink(opts.kubeConfig),
      instance: this.identity,
      host: process.env.NODE_NAME || hostname(),
      logger: this.log,
      ...(opts.correlator ? { correlator: opts.correlator } : {}),
      canWrite: () => c.writeStatus && this.isLeader(),
      onOutcome: (reason, result) => this.metrics.event(reason, result),
    });
    this.status = new StatusWriter({
      client: opts.statusClient ?? kubeServiceStatusClient(opts.kubeConfig),
      events: this.events,
      isLeader: () => c.writeStatus && this.isLeader(),
      logger: this.log,
      onStatusWrite: (r) => this.metrics.statusWrite(r),
      ...(opts.resync ? { retry: opts.resync } : {}),
    });
  }

  private setLeading(leading: boolean): void {
    if (leading === this.leading || (leading && this.stopped)) return;
    this.leading = leading;
    this.metrics.setLeader(leading);
    if (!leading) this.status.reset();
    this.emit("leadership", leading);
  }

  /** stop() has begun. */
  get stopping(): boolean {
    return this.stopped;
  }

  /** May this replica write (push, status, Events) right now? */
  isLeader(): boolean {
    return !this.stopped && (this.elector ? this.elector.isLeader() : true);
  }

  /** Milliseconds within which a write started now must be done; Infinity without leader election; null when not leader. */
  writeTimeLeftMs(): number | null {
    if (!this.elector) return this.stopped ? null : Number.POSITIVE_INFINITY;
    return this.elector.writeTimeLeftMs();
  }

  /** The edge holds what we want (a push succeeded, or what is stored already matches). */
  edgeConfirmed(at: number = Date.now()): void {
    this.lastEdgeConfirmedAt = at;
  }

  readiness(): Readiness {
    return agentReadiness({ informersSynced: this.opts.informersSynced(), isLeader: this.isLeader() });
  }

  /** Seconds the newest change has waited to reach the edge (0: up to date, or not leading). */
  pushLagSeconds(now: number = Date.now()): number {
    const since = this.isLeader() ? (this.opts.pendingSince?.() ?? null) : null;
    return since === null ? 0 : Math.max(0, (now - since) / 1000);
  }

  /**
   * Says once when changes have not reached the edge for longer than
   * --max-push-lag (with the last push error), and once when they do again.
   */
  checkPushLag(lastError?: string | null, now: number = Date.now()): void {
    if (lastError !== undefined) this.lastPushError = lastError;
    const pendingSince = this.isLeader() ? (this.opts.pendingSince?.() ?? null) : null;
    const report = pushLagReport({ pendingSince, now, maxPushLagMs: this.opts.config.maxPushLagMs, reported: this.lagReported !== null });
    if (report === "lagging") {
      this.lagReported = pendingSince;
      const lagS = Number(((now - pendingSince!) / 1000).toFixed(1));
      const last = this.lastEdgeConfirmedAt === null ? "never" : new Date(this.lastEdgeConfirmedAt).toISOString();
      this.log.warn(
        { pushLagSeconds: lagS, maxPushLagSeconds: this.opts.config.maxPushLagMs / 1000, lastSuccessfulPush: last, err: this.lastPushError },
        `changes have not reached the edge for ${lagS}s (last successful push: ${last})${this.lastPushError ? `: ${this.lastPushError}` : ""}`,
      );
    } else if (report === "caught-up") {
      const lagS = Number(((now - this.lagReported!) / 1000).toFixed(1));
      this.lagReported = null;
      this.log.info({ pushLagSeconds: lagS }, `the edge is up to date again after ${lagS}s`);
    }
  }

  /** Starts the metrics server and the campaign for the lease. */
  async start(): Promise<void> {
    const c = this.opts.config;
    if (c.metricsAddress) {
      this.server = await startMetricsServer(c.metricsAddress, this.metrics.registry, () => this.readiness());
      this.log.info({ url: this.server.url, paths: ["/metrics", "/healthz", "/readyz"] }, `metrics, health and readiness at ${this.server.url}/metrics, /healthz, /readyz`);
    }
    // Lag grows while nothing happens: look at it periodically, not only on events.
    const every = Math.max(50, Math.min(10_000, Math.floor(c.maxPushLagMs / 4)));
    this.lagTimer = setInterval(() => this.checkPushLag(), every);
    this.lagTimer.unref?.();
    if (this.elector) {
      this.elector.run();
    } else {
      this.log.info("leader election disabled: this replica always writes (run only one)");
      this.setLeading(true);
    }
  }

  /** Status and Events for the current picture; the standby only keeps track. */
  afterSync(input: ReconcileInput): Promise<void> {
    if (this.stopped) return Promise.resolve();
    // Not an async function on purpose: a suspended async frame would keep
    // `input` (every Service, every verdict) alive while status writes run.
    return this.status.reconcile(input).then(() => undefined);
  }

  /** The metrics server's URL once started. */
  get metricsUrl(): string | null {
    return this.server?.url ?? null;
  }

  /**
   * Stop writing, flush Events, release the lease, close the server.
   * `release: false` leaves the lease to expire (what a crash looks like to the others).
   */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.lagTimer) clearInterval(this.lagTimer);
    // Writing ends now, not when the lease is released below.
    this.setLeading(false);
    await this.events.flush();
    await this.elector?.stop(opts);
    this.metrics.setLeader(false);
    await this.server?.close();
    this.server = null;
  }
}
