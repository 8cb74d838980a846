// Leader election on a coordination.k8s.io/v1 Lease. Only the leader pushes
// snapshots and writes Service status; standbys keep their informers warm and
// take over within one lease duration when the leader dies or is partitioned.
// @kubernetes/client-node has no leader-election helper, so this is the shell
// around the pure decisions in decide.ts.
import { EventEmitter } from "node:events";
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { readFileSync } from "node:fs";
import { ApiException, CoordinationV1Api, type KubeConfig, type V1Lease } from "@kubernetes/client-node";
import { pino, type Logger } from "pino";
import {
  DEFAULT_TIMINGS,
  JITTER_FACTOR,
  decide,
  leadershipValidUntil,
  observe,
  releaseSpec,
  validateTimings,
  writeDeadline,
  type LeaderTimings,
  type Observation,
} from "./decide.ts";

export * from "./decide.ts";

/** The Lease operations the elector needs; `kubeLeaseStore` implements them against the API. */
export interface LeaseStore {
  /** null when the Lease does not exist. */
  get(): Promise<V1Lease | null>;
  /** Throws LeaseConflict when someone else created it first. */
  create(lease: V1Lease): Promise<V1Lease>;
  /** Optimistic-concurrency replace (metadata.resourceVersion); throws LeaseConflict on 409. */
  replace(lease: V1Lease): Promise<V1Lease>;
  readonly namespace: string;
  readonly name: string;
}

/** 409 Conflict: another candidate wrote the Lease first; we lost this round. */
export class LeaseConflict extends Error {
  override name = "LeaseConflict";
}

export function kubeLeaseStore(kc: KubeConfig, namespace: string, name: string): LeaseStore {
  const api = kc.makeApiClient(CoordinationV1Api);
  const where = `lease ${namespace}/${name}`;
  const conflict = (err: unknown): never => {
    if (err instanceof ApiException && err.code === 409) throw new LeaseConflict(`${where} changed under us`);
    throw readable(err, where);
  };
  return {
    namespace,
    name,
    async get() {
      try {
        return await api.readNamespacedLease({ name, namespace });
      } catch (err) {
        if (err instanceof ApiException && err.code === 404) return null;
        throw readable(err, where);
      }
    },
    create: (lease) => api.createNamespacedLease({ namespace, body: lease }).catch(conflict),
    replace: (lease) => api.replaceNamespacedLease({ name, namespace, body: lease }).catch(conflict),
  };
}

/** ApiException messages carry the whole response; keep the status and the API's own message. */
function readable(err: unknown, where: string): Error {
  if (!(err instanceof ApiException)) return err instanceof Error ? err : new Error(String(err));
  let body: unknown = err.body;
  if (typeof body === "string") {
    try {
      body = JSON.parse(body);
    } catch {
      // plain text
    }
  }
  const msg = typeof body === "object" && body && "message" in body ? String((body as { message: unknown }).message) : "";
  const hint = err.code === 403 ? " (check the Role for the Lease)" : err.code === 404 ? " (does the namespace exist?)" : "";
  return new Error(`${where}: HTTP ${err.code}${msg ? `: ${msg}` : ""}${hint}`);
}

/**
 * Who we are in the Lease: the pod name (downward API `POD_NAME`, else the
 * hostname, which is the pod name in Kubernetes) plus a random suffix so a
 * restarted container never mistakes its predecessor's lease for its own.
 */
export function defaultIdentity(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.POD_NAME || hostname() || "edgelb-sync-agent";
  return `${base}_${randomBytes(4).toString("hex")}`;
}

/** The namespace the agent runs in: `POD_NAMESPACE`, the service account's namespace file, else `edgelb`. */
export function defaultLeaseNamespace(env: NodeJS.ProcessEnv = process.env): string {
  if (env.POD_NAMESPACE) return env.POD_NAMESPACE;
  try {
    const ns = readFileSync("/var/run/secrets/kubernetes.io/serviceaccount/namespace", "utf8").trim();
    if (ns) return ns;
  } catch {
    // not in a pod
  }
  return "edgelb";
}

export const DEFAULT_LEASE_NAME = "edgelb-sync-agent";

export interface LeaderElectorOptions {
  store: LeaseStore;
  identity: string;
  timings?: Partial<LeaderTimings>;
  /** Release the lease on stop() so a standby takes over at once (default true). */
  releaseOnStop?: boolean;
  logger?: Logger;
  /**
   * Monotonic clock for every duration (default performance.now()): an NTP
   * step or a suspended VM must neither depose a healthy leader nor keep a
   * stale one leading. Injectable for tests.
   */
  now?: () => number;
  /** Wall clock, only for the times written into the Lease (default Date.now). */
  wallNow?: () => number;
}

export interface LeaderElectorEvents {
  /** This process became leader: start pushing and writing status. */
  started: [];
  /** This process is no longer leader: stop writing immediately. */
  stopped: [];
  /** The observed holder changed (may be us). */
  newLeader: [identity: string];
}

type Role = "candidate" | "leader";

export class LeaderElector extends EventEmitter<LeaderElectorEvents> {
  readonly identity: string;
  readonly timings: LeaderTimings;
  private readonly store: LeaseStore;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly wallNow: () => number;
  private readonly releaseOnStop: boolean;
  private role: Role = "candidate";
  private lastRenewStartedAt = 0;
  private observation: Observation | null = null;
  private lastHolder: string | null = null;
  private running = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private deadlineTimer: NodeJS.Timeout | null = null;
  private lastError: string | null = null;
  private lastCandidateError: string | null = null;

  constructor(opts: LeaderElectorOptions) {
    super();
    this.timings = { ...DEFAULT_TIMINGS, ...opts.timings };
    const invalid = validateTimings(this.timings);
    if (invalid) throw new Error(invalid);
    if (!opts.identity) throw new Error("leader election: identity must not be empty");
    this.identity = opts.identity;
    this.store = opts.store;
    this.releaseOnStop = opts.releaseOnStop ?? true;
    this.now = opts.now ?? (() => performance.now());
    this.wallNow = opts.wallNow ?? (() => Date.now());
    this.log = (opts.logger ?? pino({ level: "silent" })).child({ component: "leader-election" });
  }

  /**
   * True only while the last renewal is younger than the renew deadline —
   * computed from the clock, so it turns false on time even if a request hangs.
   */
  isLeader(): boolean {
    return this.role === "leader" && this.now() < leadershipValidUntil(this.lastRenewStartedAt, this.timings);
  }

  /** Milliseconds within which a write started now must have finished, or null when not leader. */
  writeTimeLeftMs(): number | null {
    return this.isLeader() ? writeDeadline(this.lastRenewStartedAt, this.timings) - this.now() : null;
  }

  /** The holder we last saw in the Lease ("" when free, null before the first read). */
  currentHolder(): string | null {
    return this.lastHolder;
  }

  /** Starts campaigning in the background; resolves once the loop is running. */
  run(): void {
    if (this.running) return;
    this.running = true;
    const lease = `${this.store.namespace}/${this.store.name}`;
    const t = this.timings;
    this.log.info(
      { identity: this.identity, lease, ...t },
      `leader election: campaigning for lease ${lease} as ${this.identity} (lease ${t.leaseDurationMs / 1000}s, renew deadline ${t.renewDeadlineMs / 1000}s, retry ${t.retryPeriodMs / 1000}s)`,
    );
    this.loop = this.campaign();
  }

  /**
   * Stops campaigning. A leader stops leading first (listeners of `stopped`
   * must stop writing), then releases the lease so a standby need not wait.
   */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wake?.();
    await this.loop;
    const wasLeader = this.role === "leader";
    const validWhenStopping = this.isLeader();
    this.stepDown("shutting down");
    if (wasLeader && validWhenStopping && (opts.release ?? this.releaseOnStop)) await this.release();
  }

  private async campaign(): Promise<void> {
    while (this.running) {
      await this.attempt();
      if (!this.running) break;
      const jitter = this.role === "leader" ? 1 : 1 + Math.random() * (JITTER_FACTOR - 1);
      await this.sleep(this.timings.retryPeriodMs * jitter);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }

  /** One read-decide-write round. A request slower than the renew deadline counts as failed. */
  private async attempt(): Promise<void> {
    const startedAt = this.now();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), this.timings.renewDeadlineMs);
    });
    try {
      const result = await Promise.race([this.tryAcquireOrRenew(startedAt), timeout]);
      if (result === "timeout") this.failed(new Error(`lease request took longer than ${this.timings.renewDeadlineMs} ms`));
    } catch (err) {
      this.failed(err);
    } finally {
      clearTimeout(timer);
    }
  }

  private async tryAcquireOrRenew(startedAt: number): Promise<void> {
    const lease = await this.store.get();
    const now = this.now();
    this.observation = observe(this.observation, lease, now);
    this.noteHolder(lease?.spec?.holderIdentity ?? "");
    const decision = decide({ lease, identity: this.identity, now, wallNow: this.wallNow(), observation: this.observation, timings: this.timings });
    if (decision.action === "wait") {
      // Someone else holds a live lease. If we thought we led, we were deposed.
      if (this.role === "leader") this.stepDown(`lease now held by ${decision.holder}`);
      return;
    }
    const body: V1Lease = {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: lease?.metadata ? { ...lease.metadata } : { name: this.store.name, namespace: this.store.namespace },
      spec: decision.spec,
    };
    try {
      const written = decision.action === "create" ? await this.store.create(body) : await this.store.replace(body);
      this.observation = observe(this.observation, written, this.now());
    } catch (err) {
      if (err instanceof LeaseConflict) {
        this.log.debug({ action: decision.action }, "lost the race for the lease (409 Conflict)");
        if (this.role === "leader") this.stepDown("lease was changed by another candidate");
        return;
      }
      throw err;
    }
    // A success that arrives after our deadline does not make us leader again
    // retroactively; the next round will renew from a fresh start time.
    if (this.now() >= leadershipValidUntil(startedAt, this.timings)) return;
    this.lastRenewStartedAt = startedAt;
    this.lastError = null;
    this.lastCandidateError = null;
    this.noteHolder(this.identity);
    if (this.role !== "leader") {
      this.role = "leader";
      this.log.info(
        {
          identity: this.identity,
          action: decision.action,
          previousHolder: decision.action === "takeover" ? decision.previousHolder || null : null,
          leaseTransitions: decision.spec.leaseTransitions,
        },
        `became leader${decision.action === "takeover" && decision.previousHolder ? ` (took over from ${decision.previousHolder})` : ""}`,
      );
      this.emit("started");
    }
    this.armDeadline();
  }

  /** Steps down exactly when leadership expires, even if a renewal is stuck. */
  private armDeadline(): void {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    const ms = leadershipValidUntil(this.lastRenewStartedAt, this.timings) - this.now();
    this.deadlineTimer = setTimeout(() => {
      if (this.role === "leader" && !this.isLeader()) {
        this.stepDown(`could not renew the lease within ${this.timings.renewDeadlineMs} ms${this.lastError ? `: ${this.lastError}` : ""}`);
      }
    }, Math.max(0, ms));
    this.deadlineTimer.unref?.();
  }

  private failed(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.lastError = message;
    const fields = { err: message, role: this.role, nextRetryInMs: this.timings.retryPeriodMs };
    if (this.role === "leader") this.log.warn(fields, `could not renew the lease: ${message}`);
    // A candidate that cannot even reach its Lease (RBAC, missing namespace)
    // would never lead: say so once per distinct error, not every retry.
    else if (message !== this.lastCandidateError) this.log.warn(fields, `could not read or acquire the lease: ${message}`);
    else this.log.debug(fields, `could not read or acquire the lease: ${message}`);
    if (this.role !== "leader") this.lastCandidateError = message;
    if (this.role === "leader" && !this.isLeader()) this.stepDown(`could not renew the lease: ${message}`);
  }

  private stepDown(reason: string): void {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = null;
    if (this.role !== "leader") return;
    this.role = "candidate";
    this.lastRenewStartedAt = 0;
    const level = this.running ? "warn" : "info"; // expected when we are the ones stopping
    this.log[level]({ identity: this.identity, reason }, `stopped leading: ${reason}`);
    this.emit("stopped");
  }

  private noteHolder(holder: string): void {
    if (holder === this.lastHolder) return;
    this.lastHolder = holder;
    if (holder) {
      if (holder !== this.identity) this.log.info({ holder }, `the lease is held by ${holder}; standing by`);
      this.emit("newLeader", holder);
    }
  }

  private async release(): Promise<void> {
    try {
      const lease = await this.store.get();
      if (!lease || lease.spec?.holderIdentity !== this.identity) return;
      await this.store.replace({ ...lease, spec: releaseSpec(lease, this.wallNow()) });
      this.log.info({ lease: `${this.store.namespace}/${this.store.name}` }, "released the lease: a standby takes over at once");
    } catch (err) {
      this.log.warn({ err: err instanceof Error ? err.message : String(err) }, "could not release the lease; a standby takes over when it expires");
    }
  }
}
