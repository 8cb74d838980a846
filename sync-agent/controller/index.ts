// The reconcile loop, level-triggered like a Kubernetes controller: every
// informer event or health transition only marks the state dirty; one
// reconcile computes the desired snapshot from the caches (pure, see
// ../model), diffs it with what is stored and, when it differs, writes it
// through the Sink — coalesced, rate-limited, retried with backoff. A retry
// always sends the newest desired snapshot, so no update is lost and none is
// sent stale.
//
// Extension points (used by leader election, Service status/Events, metrics):
// - `addHooks({...})`: onEvaluated, onServiceEvaluated, onPushed, onPushFailed,
//   onHealthTransition, onSynced — called synchronously, must not throw.
// - `shouldWrite`: a gate consulted before every write (leadership). When it
//   turns true again call `resume()`, which re-reads the stored snapshot
//   (continuing its generation) and reconciles.
// - `lastGeneration` / `lastPushed`: what is stored as far as we know.
import type { V1Service } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { OriginsMode, Snapshot } from "../../worker/snapshot/schema.ts";
import type { HealthTransition } from "../health/table.ts";
import { gatewayForSnapshot } from "../gateway/index.ts";
import {
  buildSnapshot,
  computeTopology,
  healthTargets,
  type ClusterState,
  type Desired,
  type DesiredOptions,
  type FinalVerdict,
  type HealthTarget,
  type HealthView,
  type Topology,
} from "../model/desired.ts";
import { contentKey, diffSnapshots, isEmptyDiff, summarizeDiff, type SnapshotDiff } from "../model/diff.ts";
import { Pacer, type PacerOptions } from "../model/pacer.ts";
import type { NodeVerdict } from "../model/node.ts";
import { serviceId } from "../model/service.ts";
import { holdNoEndpoint, NO_ENDPOINT_HOLD_MS, noEndpointAnywhere, type NoEndpointMemo } from "../model/no-endpoint-hold.ts";
import { ConflictLog } from "../sinks/conflicts.ts";
import { backoffDelay, type BackoffOptions } from "../sinks/retry.ts";
import { SinkError, type Sink } from "../sinks/types.ts";

export interface PushInfo {
  generation: number;
  bytes: number;
  ms: number;
  /** The receiver already had this content (worker push endpoint). */
  unchanged: boolean;
  dryRun: boolean;
}

export interface ControllerHooks {
  /** After every reconcile that saw synced caches, written or not. */
  onEvaluated(e: { topology: Topology; desired: Desired; services: readonly V1Service[]; /** contentKey(desired.body), computed once. */ key: string }): void;
  /** A Service's verdict changed (first sight included; deleted → verdict undefined). */
  onServiceEvaluated(e: { id: string; service: V1Service | undefined; verdict: FinalVerdict | undefined; previous: FinalVerdict | undefined }): void;
  onPushed(snapshot: Snapshot, diff: SnapshotDiff, info: PushInfo): void;
  onPushFailed(error: Error, info: { generation: number; nextAttemptAt: Date; attempt: number }): void;
  onHealthTransition(t: HealthTransition): void;
  /** Informers listed and the stored snapshot was read: the first reconcile follows. */
  onSynced(): void;
  /** resume() was called (this replica may write again): catch up on anything skipped while standing by. */
  onResumed(): void;
  /** Reading the stored snapshot failed (it is retried): what the edge holds stays unknown meanwhile. */
  onReadFailed(error: Error): void;
}

/** The health side as the controller sees it (HealthTable implements it). */
export interface HealthProvider extends HealthView {
  setTargets(targets: readonly HealthTarget[]): void;
}

export interface ControllerOptions extends DesiredOptions {
  pacer: PacerOptions;
  backoff: BackoffOptions;
  /** Hold the first push this long for targets whose first probe is running. */
  pendingHoldMs: number;
  /** Publish a Service's loss of its last ready endpoint only once it has lasted this long (model/no-endpoint-hold.ts); default NO_ENDPOINT_HOLD_MS. */
  noEndpointHoldMs?: number;
  dryRun: boolean;
  /** Published as the snapshot's `origins` (--origins gate); undefined: direct, and the field is left out. */
  origins?: OriginsMode | undefined;
  /** Print what a dry run would push (default: the logger). */
  printDryRun?: (snapshot: Snapshot, diff: SnapshotDiff) => void;
}

export interface ControllerDeps {
  state: () => ClusterState;
  synced: () => boolean;
  health: HealthProvider;
  sink: Sink;
  log: Logger;
  now?: () => number;
}


function sameVerdict(a: FinalVerdict | undefined, b: FinalVerdict | undefined): boolean {
  return JSON.stringify(a, (_k, v: unknown) => (v instanceof Map ? [...v] : v)) === JSON.stringify(b, (_k, v: unknown) => (v instanceof Map ? [...v] : v));
}

export class Controller {
  /** Leadership gate; a standby computes but never writes. */
  shouldWrite: () => boolean = () => true;
  /** Generation of the stored snapshot as far as we know. */
  lastGeneration = 0;
  /** The stored snapshot as far as we know (null: nothing stored). */
  get lastPushed(): Snapshot | null {
    return this.stored.snapshot;
  }
  /**
   * contentKey(lastPushed), undefined when nothing is stored: compare it with
   * onEvaluated's key to tell whether the edge already holds what is desired.
   * Computed once per stored snapshot here, so hooks keep no cache of their own.
   */
  get lastPushedKey(): string | undefined {
    return this.stored.key;
  }
  /**
   * Whether lastPushed is what the edge holds now: false until the stored
   * snapshot was read, and again from resume() until it is re-read (a standby's
   * copy is as old as its start; the old leader pushed since). Status computed
   * from it before then would flip what the previous leader wrote.
   */
  get storedKnown(): boolean {
    return this.storedRead;
  }
  /** Successful writes since start. */
  writes = 0;
  /** Evaluations of the desired snapshot since start (each is O(nodes + services)). */
  evaluations = 0;
  lastPushAt: Date | undefined;
  lastDesired: Desired | undefined;

  private readonly hooks: Partial<ControllerHooks>[] = [];
  /** Also paces the kv-api sink's heartbeats (agent.ts): they are KV writes against the same daily budget. */
  readonly pacer: Pacer;
  private readonly now: () => number;
  private stored: { snapshot: Snapshot | null; key: string | undefined } = { snapshot: null, key: undefined };
  private readonly noEndpointMemo: NoEndpointMemo = new Map();
  /** The shared probe addresses last warned about (JSON), so the warning is said once per change. */
  private sharedProbeAddresses = "[]";
  /** The same hold for Gateway API backends (per backend Service, apart from LoadBalancer Services). */
  private readonly gatewayNoEndpointMemo: NoEndpointMemo = new Map();
  private lastDesiredKey: string | undefined;
  private storedRead = false;
  private readingStored: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private busy = false;
  private again = false;
  private stopped = false;
  private announcedSync = false;
  private pendingSince: number | undefined;
  private retryAttempt = 0;
  private retryAt = 0;
  private readonly reported = new Set<string>();
  private readonly warned = new Set<string>();
  private readonly conflicts = new ConflictLog();
  private verdicts = new Map<string, FinalVerdict>();
  private nodeVerdicts = new Map<string, NodeVerdict>();
  private failOpen = false;
  private failOpenServices = new Set<string>();
  private failOpenBackends = new Set<string>();
  private budgetLogged = false;
  private lastEvaluationMs = 0;
  private lastEvaluationEnd = 0;

  constructor(
    private readonly opts: ControllerOptions,
    private readonly deps: ControllerDeps,
  ) {
    this.pacer = new Pacer(opts.pacer);
    this.now = deps.now ?? Date.now;
  }

  addHooks(h: Partial<ControllerHooks>): () => void {
    this.hooks.push(h);
    return () => {
      const i = this.hooks.indexOf(h);
      if (i >= 0) this.hooks.splice(i, 1);
    };
  }

  private emit<K extends keyof ControllerHooks>(name: K, ...args: Parameters<ControllerHooks[K]>): void {
    for (const h of this.hooks) {
      const fn = h[name] as ((...a: Parameters<ControllerHooks[K]>) => void) | undefined;
      if (!fn) continue;
      try {
        fn(...args);
      } catch (err) {
        this.deps.log.error({ err, hook: name }, `hook ${name} threw: ${(err as Error).message}`);
      }
    }
  }

  /** Reads the stored snapshot (retrying until it works) and starts reconciling. */
  start(): void {
    this.stopped = false;
    void this.readStored();
  }

  /** Something changed (informer event, health transition): reconcile soon. */
  markDirty(_reason = "change"): void {
    if (this.stopped) return;
    this.schedule(this.nextEvaluation());
  }

  /**
   * Evaluating is O(nodes + services) but not free (~0.5 s at 5,000 × 5,000
   * on a busy core): a burst of informer events (e.g. our own 5,000 status
   * writes coming back as watch events) must not evaluate back to back, which
   * starves lease renewals and lets garbage pile up faster than the GC returns
   * it. So the next evaluation waits as long as the last one took — at most
   * half the CPU, and no delay worth noticing on small clusters (~1 ms).
   */
  private nextEvaluation(): number {
    return Math.max(this.now(), this.lastEvaluationEnd + this.lastEvaluationMs);
  }

  /** Called by the health table on every state change. */
  healthChanged(t: HealthTransition): void {
    const where = t.target.kind === "node" ? `node ${t.target.node}` : `node ${t.target.node} (healthCheckNodePort ${t.target.port})`;
    const probe = t.target.kind === "node" ? "health check" : "local endpoint check";
    // `address` is where the probe went (the node's InternalIP by default, not always the published one).
    if (t.previous === false && !t.healthy) {
      // Only the reason changed: nothing to publish.
      this.deps.log.warn({ target: t.key, address: t.target.address, healthy: false, error: t.error }, `${where} still fails its ${probe}, now: ${t.error}: stays out of rotation`);
      return;
    }
    if (t.previous === undefined) {
      if (t.healthy) this.deps.log.debug({ target: t.key, healthy: true }, `${where} passed its first ${probe}`);
      else this.deps.log.warn({ target: t.key, address: t.target.address, healthy: false, error: t.error }, `${where} failed its first ${probe} (${t.error}): not in rotation`);
    } else if (t.healthy) {
      this.deps.log.info({ target: t.key, healthy: true }, `${where} passed its ${probe} again: back in rotation`);
    } else {
      this.deps.log.warn({ target: t.key, address: t.target.address, healthy: false, error: t.error }, `${where} failed its ${probe} (${t.error}): out of rotation`);
    }
    this.emit("onHealthTransition", t);
    this.markDirty("health");
  }

  /** After regaining the right to write: re-read what is stored, then reconcile. */
  async resume(): Promise<void> {
    this.emit("onResumed");
    this.storedRead = false;
    await this.readStored();
  }

  private readStored(): Promise<void> {
    this.readingStored ??= (async () => {
      let attempt = 0;
      while (!this.stopped) {
        try {
          const stored = await this.deps.sink.read();
          this.lastGeneration = Math.max(this.lastGeneration, stored.generation);
          this.rememberStored(stored.snapshot);
          // The one-write-per-second limit holds across restarts and failovers:
          // the stored snapshot says when it was written (capped at our now, for skew).
          const writtenAt = stored.snapshot ? Date.parse(stored.snapshot.publishedAt) : NaN;
          if (Number.isFinite(writtenAt)) this.pacer.lastWriteAt = Math.max(this.pacer.lastWriteAt ?? 0, Math.min(writtenAt, this.now()));
          if (stored.problem) {
            this.deps.log.warn({ generation: stored.generation, problem: stored.problem }, `the stored snapshot is not usable (${stored.problem}); it will be replaced`);
          }
          this.deps.log.info(
            { sink: this.deps.sink.description, generation: stored.generation, stored: stored.snapshot !== null },
            stored.snapshot
              ? `read stored snapshot generation ${stored.generation} (${stored.snapshot.services.length} services, ${stored.snapshot.nodes.length} nodes); continuing from it`
              : `nothing stored yet at ${this.deps.sink.description}; starting at generation ${stored.generation + 1}`,
          );
          this.storedRead = true;
          this.markDirty("stored snapshot read");
          return;
        } catch (err) {
          attempt++;
          const delay = backoffDelay(attempt, this.opts.backoff, (err as SinkError).details?.retryAfterMs);
          const at = new Date(this.now() + delay);
          this.report(err as Error, `cannot read the stored snapshot: ${(err as Error).message}; retrying at ${at.toISOString()}`, {
            nextAttemptAt: at.toISOString(),
          });
          this.emit("onReadFailed", err as Error);
          await new Promise((r) => setTimeout(r, delay).unref());
        }
      }
    })().finally(() => (this.readingStored = undefined));
    return this.readingStored;
  }

  /** Logs an error once per distinct message; repeats go to debug. */
  private report(err: Error, message: string, fields: Record<string, unknown> = {}): void {
    const kind = err instanceof SinkError ? err.kind : "retryable";
    const key = `${kind}:${err.message}`;
    if (this.reported.has(key)) {
      this.deps.log.debug({ ...fields, err: err.message }, message);
      return;
    }
    this.reported.add(key);
    if (kind === "fatal") this.deps.log.error({ ...fields, err: err.message }, `${message} — this will not heal by itself; fix the configuration`);
    else this.deps.log.error({ ...fields, err: err.message }, message);
  }

  private schedule(at: number): void {
    if (this.stopped) return;
    if (this.timer && this.timerAt <= at) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      void this.reconcile();
    }, Math.max(0, at - this.now()));
  }

  /** Computes desired, logs what changed in the verdicts, writes when due. */
  async reconcile(): Promise<void> {
    if (this.stopped) return;
    if (this.busy) {
      this.again = true;
      return;
    }
    if (!this.deps.synced()) return;
    this.busy = true;
    try {
      await this.reconcileOnce();
    } finally {
      this.busy = false;
      if (this.again && !this.stopped) {
        this.again = false;
        this.schedule(this.nextEvaluation());
      }
    }
  }

  private evaluate(): { topo: Topology; desired: Desired; services: readonly V1Service[] } {
    const started = performance.now();
    this.evaluations++;
    try {
      return this.evaluateNow();
    } finally {
      this.lastEvaluationMs = performance.now() - started;
      this.lastEvaluationEnd = this.now();
    }
  }

  private evaluateNow(): { topo: Topology; desired: Desired; services: readonly V1Service[] } {
    const state = this.deps.state();
    const topo = computeTopology(state, this.opts);
    const now = this.now();
    const holdMs = this.opts.noEndpointHoldMs ?? NO_ENDPOINT_HOLD_MS;
    const holdUntil = holdNoEndpoint(topo.served, this.noEndpointMemo, now, holdMs);
    if (holdUntil !== undefined) this.schedule(holdUntil);
    const gateway = state.gateway
      ? gatewayForSnapshot({ ...state, gateway: state.gateway }, topo, this.deps.health, { defaultDomain: this.opts.defaultDomain, allowed: this.opts.allowedHostnames }, { memo: this.gatewayNoEndpointMemo, now, holdMs })
      : undefined;
    if (gateway?.holdUntil !== undefined) this.schedule(gateway.holdUntil);
    this.deps.health.setTargets(gateway ? [...healthTargets(topo), ...gateway.targets] : healthTargets(topo));
    const desired = buildSnapshot(topo, this.deps.health, this.opts.cluster, this.opts);
    if (gateway) {
      desired.body.gateway = gateway.resolution.section;
      desired.gateway = gateway;
      this.logGatewayCaps(gateway.resolution.capped);
    }
    if (this.opts.origins?.mode === "gate") desired.body.origins = this.opts.origins;
    this.logVerdicts(topo, state.services);
    this.logFailOpen(desired);
    this.lastDesired = desired;
    return { topo, desired, services: state.services };
  }

  private async reconcileOnce(): Promise<void> {
    const { topo, desired, services } = this.evaluate();
    if (!this.announcedSync && this.storedRead) {
      this.announcedSync = true;
      this.emit("onSynced");
    }
    // Once per evaluation: it validates and serialises the whole snapshot.
    const key = contentKey(desired.body);
    this.emit("onEvaluated", { topology: topo, desired, services, key });
    if (!this.storedRead) return;

    const now = this.now();
    if (key === this.lastPushedKey) {
      this.pacer.settled();
      this.lastDesiredKey = key;
      this.pendingSince = undefined;
      return;
    }
    if (key !== this.lastDesiredKey) {
      this.pacer.changed(now);
      this.lastDesiredKey = key;
    }
    // Hold a moment for first probes of new targets, so a new node is not
    // published unhealthy and then healthy again (two writes for one change).
    if (desired.pending.length > 0) {
      this.pendingSince ??= now;
      const until = this.pendingSince + this.opts.pendingHoldMs;
      if (now < until) {
        this.schedule(until);
        return;
      }
    } else {
      this.pendingSince = undefined;
    }
    if (!this.shouldWrite()) return;
    if (now < this.retryAt) {
      this.schedule(this.retryAt);
      return;
    }
    const decision = this.pacer.decide(now);
    switch (decision.kind) {
      case "idle":
        return;
      case "wait":
        this.schedule(decision.at);
        return;
      case "budget":
        if (!this.budgetLogged) {
          this.budgetLogged = true;
          this.deps.log.error(
            { dailyWriteBudget: this.opts.pacer.dailyBudget, resumesAt: new Date(decision.at).toISOString() },
            `daily write budget of ${this.opts.pacer.dailyBudget} is spent; holding changes until ${new Date(decision.at).toISOString()}`,
          );
        }
        this.schedule(decision.at);
        return;
      case "write":
        this.budgetLogged = false;
        await this.push(desired, key);
        return;
    }
  }

  private async push(desired: Desired, key: string): Promise<void> {
    const started = this.now();
    const generation = this.lastGeneration + 1;
    const snapshot = { ...desired.body, generation, publishedAt: new Date(started).toISOString() } as Snapshot;
    const diff = diffSnapshots(this.lastPushed, snapshot);
    if (this.opts.dryRun) {
      this.pacer.wrote(started);
      (this.opts.printDryRun ?? ((s, d) => this.deps.log.info({ snapshot: s, diff: d }, `dry run: would push generation ${s.generation}: ${summarizeDiff(d)}`)))(snapshot, diff);
      this.accept(snapshot, key, diff, { generation, bytes: Buffer.byteLength(JSON.stringify(snapshot)), ms: 0, unchanged: false, dryRun: true });
      return;
    }
    this.pacer.wrote(started);
    try {
      const result = await this.deps.sink.write(snapshot);
      const ms = this.now() - started;
      this.writes++;
      if (result.warning && !this.warned.has(result.warning)) {
        this.warned.add(result.warning);
        this.deps.log.warn({ warning: result.warning }, `the edge accepted generation ${generation} but warns: ${result.warning}`);
      }
      this.accept(snapshot, key, diff, { generation, bytes: result.bytes, ms, unchanged: result.unchanged, dryRun: false });
    } catch (err) {
      await this.pushFailed(err as Error, generation);
    }
  }

  /** What the edge stores, with its content key (validating and serialising it costs ~1 MB of garbage at scale: once per snapshot). */
  private rememberStored(snapshot: Snapshot | null, key = snapshot ? contentKey(snapshot) : undefined): void {
    this.stored = { snapshot, key };
  }

  private accept(snapshot: Snapshot, key: string, diff: SnapshotDiff, info: PushInfo): void {
    this.lastGeneration = snapshot.generation;
    this.rememberStored(snapshot, key);
    this.lastPushAt = new Date(this.now());
    this.retryAttempt = 0;
    this.retryAt = 0;
    this.reported.clear();
    const conflicts = this.conflicts.resolved();
    if (conflicts > 1) this.deps.log.info({ generation: snapshot.generation, conflicts }, `generation ${snapshot.generation} accepted after ${conflicts} generation conflicts`);
    this.pacer.settled();
    const healthy = snapshot.nodes.filter((n) => n.healthy).length;
    const fields = {
      generation: snapshot.generation,
      services: snapshot.services.length,
      nodesHealthy: healthy,
      nodesTotal: snapshot.nodes.length,
      bytes: info.bytes,
      ms: info.ms,
      hostsAdded: diff.hostsAdded,
      hostsRemoved: diff.hostsRemoved,
      hostsChanged: diff.hostsChanged,
      nodesAdded: diff.nodesAdded,
      nodesRemoved: diff.nodesRemoved,
      nodesUnhealthy: diff.nodesUnhealthy,
      nodesBackHealthy: diff.nodesHealthy,
      ...(info.unchanged ? { unchanged: true } : {}),
    };
    if (!info.dryRun) {
      const what = isEmptyDiff(diff) ? "refreshed" : summarizeDiff(diff);
      this.deps.log.info(
        fields,
        `pushed generation ${snapshot.generation}: ${what} (${snapshot.services.length} services, ${healthy}/${snapshot.nodes.length} nodes healthy, ${info.bytes} bytes, ${info.ms} ms)`,
      );
    }
    this.emit("onPushed", snapshot, diff, info);
  }

  private async pushFailed(err: Error, generation: number): Promise<void> {
    const sinkErr = err instanceof SinkError ? err : undefined;
    if (sinkErr?.kind === "conflict") {
      // Someone (another agent, an older leader) stored a newer generation:
      // continue after it. Re-read so the diff and the "unchanged" check use it.
      const stored = sinkErr.details.storedGeneration;
      this.deps.log[this.conflicts.conflict()](
        { generation, storedGeneration: stored },
        `the edge has generation ${stored ?? "?"} (we sent ${generation}); re-reading it and pushing again`,
      );
      this.lastGeneration = Math.max(this.lastGeneration, stored ?? generation);
      try {
        const read = await this.deps.sink.read();
        this.lastGeneration = Math.max(this.lastGeneration, read.generation);
        this.rememberStored(read.snapshot);
      } catch {
        /* the next push will tell */
      }
      this.retryAttempt++;
      if (this.retryAttempt > 1) this.retryAt = this.now() + backoffDelay(this.retryAttempt - 1, this.opts.backoff);
      this.schedule(Math.max(this.retryAt, this.now()));
      return;
    }
    this.retryAttempt++;
    const delay = backoffDelay(this.retryAttempt, this.opts.backoff, sinkErr?.details.retryAfterMs);
    this.retryAt = this.now() + delay;
    const at = new Date(this.retryAt);
    this.report(err, `push of generation ${generation} failed: ${err.message}; next attempt at ${at.toISOString()}`, {
      generation,
      attempt: this.retryAttempt,
      nextAttemptAt: at.toISOString(),
    });
    this.emit("onPushFailed", err, { generation, nextAttemptAt: at, attempt: this.retryAttempt });
    this.schedule(this.retryAt);
  }

  private logVerdicts(topo: Topology, services: readonly V1Service[]): void {
    const byId = new Map(services.map((s) => [serviceId(s), s]));
    for (const [id, verdict] of topo.verdicts) {
      const previous = this.verdicts.get(id);
      if (sameVerdict(previous, verdict)) continue;
      if (verdict.kind === "skipped") {
        this.deps.log.warn({ service: id, reason: verdict.reason }, `service ${id} skipped: ${verdict.reason}`);
      } else if (verdict.kind === "served") {
        const lost = verdict.service.lostHostnames ?? [];
        for (const l of lost) {
          this.deps.log.warn({ service: id, hostname: l.hostname, owner: l.to }, `service ${id}: hostname ${l.hostname} is already served by ${l.to}; ignoring it here`);
        }
        if (previous?.kind !== "served") {
          this.deps.log.info(
            { service: id, hostnames: verdict.service.hostnames, nodePort: verdict.service.port.nodePort, trafficPolicy: verdict.service.trafficPolicy },
            `service ${id} served at ${verdict.service.hostnames.join(", ")} → nodePort ${verdict.service.port.nodePort} (${verdict.service.trafficPolicy})`,
          );
        }
        const none = noEndpointAnywhere(verdict.service);
        if (none && !(previous?.kind === "served" && noEndpointAnywhere(previous.service))) {
          this.deps.log.info(
            { service: id, hostnames: verdict.service.hostnames, endpoints: 0 },
            `service ${id} has no ready endpoint (scaled to 0, or no pod matches its selector): the edge answers 503 until a pod is ready`,
          );
        } else if (!none && previous?.kind === "served" && noEndpointAnywhere(previous.service)) {
          this.deps.log.info({ service: id, hostnames: verdict.service.hostnames }, `service ${id} has ready endpoints again: the edge serves it`);
        }
      } else if (previous && previous.kind !== "ignored") {
        this.deps.log.info({ service: id, reason: verdict.reason }, `service ${id} is no longer ours: ${verdict.reason}`);
      }
      this.emit("onServiceEvaluated", { id, service: byId.get(id), verdict, previous });
    }
    for (const [id, previous] of this.verdicts) {
      if (topo.verdicts.has(id)) continue;
      if (previous.kind === "served") this.deps.log.info({ service: id }, `service ${id} deleted`);
      this.emit("onServiceEvaluated", { id, service: undefined, verdict: undefined, previous });
    }
    this.verdicts = new Map(topo.verdicts);

    for (const [name, v] of topo.nodeVerdicts) {
      const prev = this.nodeVerdicts.get(name);
      if (prev && JSON.stringify(prev) === JSON.stringify(v)) continue;
      if (!v.eligible) this.deps.log.info({ node: name, reason: v.reason }, `node ${name} is not a backend: ${v.reason}`);
      else if (prev && !prev.eligible) this.deps.log.info({ node: name, address: v.address }, `node ${name} is a backend again (${v.address})`);
      else if (!prev) this.deps.log.debug({ node: name, address: v.address }, `node ${name} is a backend (${v.address})`);
      if (v.eligible && v.problem) this.deps.log.warn({ node: name, problem: v.problem }, `node ${name}: ${v.problem}`);
      // Said loudly, once per node and address (model/node.ts: unroutableReason).
      if (v.eligible && v.unroutable && !this.opts.allowPrivateAddresses && !(prev?.eligible && prev.address === v.address && prev.unroutable)) {
        const unroutable = v.unroutable;
        this.deps.log.warn(
          { node: name, address: v.address, unroutable },
          `node ${name} publishes ${v.address}, ${unroutable}: Cloudflare will refuse to connect to it; publish a public address (ExternalIP or the edgelb.dev/address annotation) or pass --allow-private-addresses in a lab`,
        );
      }
    }
    this.nodeVerdicts = new Map(topo.nodeVerdicts);
    // Once per change: nodes sharing an InternalIP are probed at their published address instead.
    const shared = JSON.stringify(topo.sharedProbeAddresses ?? []);
    if (shared !== this.sharedProbeAddresses) {
      for (const s of topo.sharedProbeAddresses ?? []) {
        this.deps.log.warn(
          { nodes: s.nodes, address: s.address },
          `nodes ${s.nodes.join(", ")} share the address ${s.address} (site-local InternalIPs, e.g. nodes joined over public addresses): probing them at their published addresses instead; if the agent cannot reach the other nodes' InternalIPs at all, run it with --probe-address-preference published`,
        );
      }
      this.sharedProbeAddresses = shared;
    }
  }

  /** Once per refusal (and once when it clears): routes the edge's table caps keep out of the snapshot. */
  private logGatewayCaps(capped: readonly { route: string; gateway: string; reason: string }[]): void {
    const now = new Map(capped.map((c) => [`${c.route} → ${c.gateway}`, c]));
    for (const [key, c] of now) {
      if (this.gatewayCapped.get(key)?.reason === c.reason) continue;
      this.deps.log.warn({ event: "gateway.route_capped", route: c.route, gateway: c.gateway, reason: c.reason }, `HTTPRoute ${c.route} (Gateway ${c.gateway}) not published: ${c.reason}`);
    }
    for (const [key, c] of this.gatewayCapped) {
      if (!now.has(key)) this.deps.log.info({ event: "gateway.route_uncapped", route: c.route, gateway: c.gateway }, `HTTPRoute ${c.route} (Gateway ${c.gateway}) fits the edge's tables again`);
    }
    this.gatewayCapped = now;
  }
  private gatewayCapped = new Map<string, { route: string; gateway: string; reason: string }>();

  private logFailOpen(desired: Desired): void {
    if (desired.failOpen && !this.failOpen) {
      const gate = this.opts.origins?.mode === "gate" ? this.opts.origins : undefined;
      this.deps.log.error(
        { nodes: desired.body.nodes.map((n) => n.name), ...(gate ? { origins: "gate", gatePort: gate.port } : {}) },
        (gate
          ? // Gate mode: the gate is probed first, and a gate that is down, keyless or firewalled off takes every node out.
            `EVERY node failed its health checks: publishing all ${desired.body.nodes.length} as healthy (fail open) — origins go through the node gates (port ${gate.port}): check the edgelb-node-gate DaemonSet (pods running, key Secret mounted, port ${gate.port} open to the agent), then kube-proxy / --health-check-* settings; each node's own reason is in its "failed its health check" line`
          : `EVERY node failed its health checks: publishing all ${desired.body.nodes.length} as healthy (fail open) — check kube-proxy / --health-check-* settings`) +
          // The usual cause (rv-ops 6): kube-proxy's healthz is not reachable at the node's address at all.
          ` (on k3s and RKE kube-proxy's healthz listens on 127.0.0.1 unless started with healthz-bind-address=0.0.0.0:10256; Cilium's kube-proxy replacement serves it only with kubeProxyReplacementHealthzBindAddr: see the health checks in docs/agent.md)`,
      );
    } else if (!desired.failOpen && this.failOpen) {
      this.deps.log.info("some nodes pass their health checks again: fail-open ended");
    }
    this.failOpen = desired.failOpen;
    const now = new Set(desired.failOpenServices);
    for (const id of now) {
      if (!this.failOpenServices.has(id)) {
        this.deps.log.error({ service: id }, `service ${id}: every node with local endpoints failed its check; publishing them all (fail open)`);
      }
    }
    this.failOpenServices = now;
    const backends = new Set(desired.gateway?.failOpenBackends ?? []);
    for (const id of backends) {
      if (!this.failOpenBackends.has(id)) {
        this.deps.log.error({ service: id, gatewayBackend: true }, `gateway backend ${id}: every node with local endpoints failed its check; publishing them all (fail open)`);
      }
    }
    this.failOpenBackends = backends;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
