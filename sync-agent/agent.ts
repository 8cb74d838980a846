// Composition root: informers → controller → sink, plus the health table.
// `createAgent(config)` wires everything without starting it, so leader
// election, Service status/Events and metrics can attach first:
//
//   const agent = createAgent(config, { log });
//   agent.controller.shouldWrite = () => elector.isLeader();   // gate writes
//   agent.controller.addHooks({ onPushed, onServiceEvaluated, … });
//   await agent.start();           // informers, health, reconcile loop
//   …; await agent.stop();
//
// `startAgent(config)` = createAgent + start.
import { DEFAULT_HEARTBEAT_MS, DEFAULT_KV_HEARTBEAT_MS, Heartbeat } from "./sinks/heartbeat.ts";
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { Snapshot } from "../worker/snapshot/schema.ts";
import { redactConfig, type AgentConfig } from "./config.ts";
import { Controller } from "./controller/index.ts";
import { HealthTable } from "./health/table.ts";
import { GatewayInformers, GatewayStatusWriter, type GatewayCaches, type GatewayResolution } from "./gateway/index.ts";
import type { EdgeState } from "./gateway/status.ts";
import { ClusterInformers } from "./informers/index.ts";
import { namespaceInformer } from "./namespaces/index.ts";
import { loadKubeConfig } from "./kubeconfig.ts";
import { createLogger } from "./log/index.ts";
import type { SnapshotDiff } from "./model/diff.ts";
import { DryRunSink } from "./sinks/dry-run.ts";
import { IdentitySink, kubeSystemUid } from "./sinks/identity/index.ts";
import { KvApiSink } from "./sinks/kv-api/index.ts";
import { SecretFile } from "./sinks/token/index.ts";
import type { Sink } from "./sinks/types.ts";
import { WorkerSink } from "./sinks/worker/index.ts";

export interface AgentDeps {
  log?: Logger;
  kubeConfig?: KubeConfig;
  /** Replaces the sink the config describes (tests, custom sinks). */
  sink?: Sink;
  /** The cluster's identity (default: the kube-system Namespace UID). */
  clusterIdentity?: () => Promise<string>;
  /** Where --dry-run prints (default stdout). */
  printDryRun?: (snapshot: Snapshot, diff: SnapshotDiff) => void;
}

export interface Agent {
  /** The heartbeat sender (counts for tests and metrics). */
  heartbeat: Heartbeat;
  config: AgentConfig;
  log: Logger;
  kubeConfig: KubeConfig;
  sink: Sink;
  informers: ClusterInformers;
  health: HealthTable;
  controller: Controller;
  /**
   * Whether Gateway API statuses may be written now (default: not in a dry
   * run, and while the controller may write). attachCitizen ties it to
   * --write-status and leadership, like Service status.
   */
  writeGatewayStatus: () => boolean;
  /** Logs the "starting: …" line (once): runAgent calls it before the plugins (leader election) log theirs. */
  announce(): void;
  start(): Promise<void>;
  /** Resolves when informers listed and the stored snapshot was read. */
  synced(): Promise<void>;
  /** Shutdown, first step: the controller stops (no new push) and a push in flight finishes. */
  stopWriting(): Promise<void>;
  stop(): Promise<void>;
}

/** A token from a file is re-read when the file changes (rotated Secret); from the environment it is fixed. */
function token(value: string | undefined, file: string | undefined, label: string, config: AgentConfig, log?: Logger): string | SecretFile | undefined {
  if (!file) return value;
  return new SecretFile({ path: file, label, initial: value, ...(config.tokenRecheckMs ? { recheckMs: config.tokenRecheckMs } : {}), ...(log ? { log } : {}) });
}

export function buildSink(config: AgentConfig, log?: Logger): Sink {
  if (config.sink === "worker") {
    if (!config.workerUrl) throw new Error("--worker-url is required with --sink worker");
    const pushToken = token(config.pushToken, config.pushTokenFile, "--push-token-file", config, log);
    if (!pushToken) throw new Error("a push token is required with --sink worker (--push-token-file or EDGELB_PUSH_TOKEN)");
    return new WorkerSink({ workerUrl: config.workerUrl, cluster: config.cluster, token: pushToken });
  }
  if (!config.accountId || !config.namespaceId) throw new Error("--account-id and --namespace-id are required with --sink kv-api");
  const apiToken = token(config.apiToken, config.apiTokenFile, "--api-token-file", config, log);
  if (!apiToken) throw new Error("an API token is required with --sink kv-api (--api-token-file or CLOUDFLARE_API_TOKEN)");
  return new KvApiSink({
    accountId: config.accountId,
    namespaceId: config.namespaceId,
    cluster: config.cluster,
    apiToken,
    ...(config.cloudflareApiUrl ? { baseUrl: config.cloudflareApiUrl } : {}),
    ...(log
      ? {
          onClockSkew: (skewMs: number) =>
            log.warn(
              { skewSeconds: Math.round(skewMs / 1000) },
              `this agent's clock is ${Math.round(Math.abs(skewMs) / 1000)} s ${skewMs > 0 ? "ahead of" : "behind"} Cloudflare's: heartbeats are dated with it, and the edge may count this cluster as stale (fix NTP on the node)`,
            ),
        }
      : {}),
  });
}

export function createAgent(config: AgentConfig, deps: AgentDeps = {}): Agent {
  const log = deps.log ?? createLogger({ format: config.logFormat, level: config.logLevel });
  const { kubeConfig, source } = deps.kubeConfig
    ? { kubeConfig: deps.kubeConfig, source: "provided" }
    : loadKubeConfig(config.kubeconfig);
  let sink: Sink;
  if (deps.sink) sink = deps.sink;
  else if (config.dryRun) {
    // Dry run reads what is stored when it can (for a real diff) but never writes.
    let inner: Sink | undefined;
    try {
      inner = buildSink(config, log);
    } catch {
      inner = undefined;
    }
    sink = new DryRunSink(inner);
  } else sink = buildSink(config, log);
  // Every snapshot says which cluster wrote it; a snapshot of another cluster under our name is never overwritten.
  sink = new IdentitySink(sink, {
    cluster: config.cluster,
    identity: deps.clusterIdentity ?? kubeSystemUid(kubeConfig),
    takeOver: config.takeOver ?? false,
    optional: config.dryRun,
    log,
  });

  // Pushes and heartbeats take turns on the sink: a kv-api heartbeat rewrites the whole value, and
  // one in flight while a push lands would roll KV back to the older generation (last write wins).
  let sinkTail: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = sinkTail.then(fn, fn);
    sinkTail = run.catch(() => undefined);
    return run;
  };
  // Pushes in flight, so shutdown can wait for them before the lease is released.
  const inflight = new Set<Promise<unknown>>();
  const write = sink.write.bind(sink);
  sink.write = (snapshot, signal) => {
    const p = exclusive(() => write(snapshot, signal));
    inflight.add(p);
    const done = () => inflight.delete(p);
    p.then(done, done);
    return p;
  };

  let controller!: Controller;
  const heartbeat = new Heartbeat({
    sink,
    intervalMs: config.dryRun ? 0 : (config.heartbeatMs ?? (config.sink === "kv-api" ? DEFAULT_KV_HEARTBEAT_MS : DEFAULT_HEARTBEAT_MS)),
    last: () => ({ snapshot: controller.lastPushed, pushedAt: controller.lastPushAt?.getTime() }),
    shouldWrite: () => controller.shouldWrite(),
    // The edge holds another generation or nothing (e.g. its KV value was removed): re-read it, then push.
    onRefused: () => void controller.resume(),
    log,
    exclusive,
    // kv-api heartbeats are KV writes: paced by the controller's daily write budget.
    ...(config.sink === "kv-api"
      ? { budget: { daily: config.dailyWriteBudget ?? 0, left: (now: number) => controller.pacer.budgetLeft(now), spend: (now: number) => controller.pacer.wrote(now) } }
      : {}),
  });
  const health = new HealthTable(
    {
      mode: config.health.mode,
      intervalMs: config.health.intervalMs,
      timeoutMs: config.health.timeoutMs,
      rise: config.health.rise,
      fall: config.health.fall,
      healthzPort: config.health.healthzPort,
      maxConcurrentProbes: config.health.maxConcurrentProbes,
      jitter: config.health.jitter,
      gatePort: config.origins?.mode === "gate" ? config.origins.port : undefined,
    },
    (t) => controller.healthChanged(t),
  );
  const informers = new ClusterInformers({
    kubeConfig,
    log,
    onChange: (reason) => controller.markDirty(reason),
    backoff: { initialMs: 250, maxMs: 30_000 },
    resyncMs: config.resyncMs,
    // Drift repair is a LIST of everything: only the replica that writes needs
    // it; a standby catches up when it takes over (onResumed below).
    resyncWhen: () => controller.shouldWrite(),
  });
  const namespaces = namespaceInformer({
    kubeConfig,
    log,
    onChange: (reason) => controller.markDirty(reason),
    backoff: { initialMs: 250, maxMs: 30_000 },
    resyncMs: config.resyncMs,
  });
  // Gateway API: watched only when the cluster has the CRDs (sync-agent/gateway).
  const gateway = new GatewayInformers({
    kubeConfig,
    log,
    onChange: (reason) => controller.markDirty(reason),
    backoff: { initialMs: 250, maxMs: 30_000 },
    resyncMs: config.resyncMs,
    ...(config.gatewayRecheckMs ? { recheckMs: config.gatewayRecheckMs } : {}),
  });
  const gatewayStatus = new GatewayStatusWriter({ kubeConfig, log, retry: () => controller.markDirty("gateway-status-retry") });
  controller = new Controller(
    {
      cluster: config.cluster,
      loadBalancerClass: config.loadBalancerClass,
      onlyClass: config.onlyClass,
      defaultDomain: config.defaultDomain,
      addressPreference: config.addressPreference,
      addressFamily: config.addressFamily,
      probeAddressPreference: config.probeAddressPreference,
      allowPrivateAddresses: config.allowPrivateAddresses,
      allowedHostnames: config.allowedHostnames,
      region: config.region,
      location: config.location,
      origins: config.origins,
      pacer: {
        quietMs: config.coalesceMs,
        maxDelayMs: config.maxDelayMs,
        minIntervalMs: config.minWriteIntervalMs,
        dailyBudget: config.dailyWriteBudget,
      },
      backoff: { initialMs: 500, maxMs: 60_000 },
      pendingHoldMs: config.health.timeoutMs + 100,
      ...(config.noEndpointHoldMs !== undefined ? { noEndpointHoldMs: config.noEndpointHoldMs } : {}),
      dryRun: config.dryRun,
      printDryRun:
        deps.printDryRun ??
        ((s, d) => {
          process.stdout.write(`# dry run: would push generation ${s.generation} (${JSON.stringify(d)})\n${JSON.stringify(s, null, 2)}\n`);
        }),
    },
    {
      state: () => ({ ...informers.state(), namespaces: namespaces.list(), gateway: gateway.caches() }),
      synced: () => informers.synced && namespaces.synced && gateway.synced,
      health,
      sink,
      log,
    },
  );

  let syncedResolve!: () => void;
  const syncedPromise = new Promise<void>((r) => (syncedResolve = r));
  controller.addHooks({ onSynced: () => syncedResolve(), onResumed: () => informers.resyncIfSkipped() });
  // Gateway Programmed follows the edge: True only once a push was accepted, False Pending (with the error) otherwise.
  let edgeState: EdgeState = { confirmed: false };
  let readError: string | undefined;
  let lastGateway: { resolution: GatewayResolution; caches: GatewayCaches } | undefined;
  const writeGateway = () => {
    if (!lastGateway || !agent.writeGatewayStatus()) return;
    // Until the stored snapshot is (re-)read (start, taking the lease), what the edge holds is unknown
    // unless this replica saw it accept a push: a Programmed True is left as found, not flipped on a
    // stale or empty picture of the edge.
    const edge: EdgeState = edgeState.confirmed || controller.storedKnown ? edgeState : { confirmed: false, unknown: true, error: readError };
    gatewayStatus.update(lastGateway.resolution, lastGateway.caches, edge);
  };
  controller.addHooks({
    onEvaluated: ({ desired, key }) => {
      lastGateway = desired.gateway;
      // A new agent (rollout, failover) that finds the edge already holding what it wants pushes
      // nothing: the edge has the routes all the same. One that finds Gateway routes of this cluster
      // stored (an older set) is where the old leader was: confirmed, a change on its way does not flip it.
      if (!edgeState.confirmed && controller.storedKnown && (controller.lastPushedKey === key || controller.lastPushed?.gateway !== undefined)) edgeState = { confirmed: true };
      writeGateway();
    },
    onReadFailed: (err) => {
      readError = `cannot read what the edge holds: ${err.message}`;
    },

    onPushed: () => {
      const was = edgeState.confirmed;
      edgeState = { confirmed: true };
      if (!was) writeGateway();
    },
    onPushFailed: (err) => {
      // Once confirmed, the edge keeps serving what it has through a failed push (the next one
      // retries; a long outage shows on Services as SyncLoadBalancerFailed): no flip on a blip.
      if (edgeState.confirmed) return;
      edgeState = { confirmed: false, error: err.message };
      writeGateway();
    },
  });

  let announced = false;
  const agent: Agent = {
    config,
    log,
    kubeConfig,
    sink,
    informers,
    health,
    controller,
    heartbeat,
    writeGatewayStatus: () => !config.dryRun && controller.shouldWrite(),
    announce() {
      if (announced) return;
      announced = true;
      log.info(
        { config: redactConfig(config), kubeconfig: source, server: kubeConfig.getCurrentCluster()?.server, sink: sink.description },
        `starting: cluster ${config.cluster}, sink ${sink.description}, API server ${kubeConfig.getCurrentCluster()?.server ?? "?"} (${source})${config.dryRun ? ", DRY RUN (nothing is written)" : ""}`,
      );
    },
    async start() {
      this.announce();
      const t0 = Date.now();
      informers.start();
      namespaces.start();
      gateway.start();
      controller.start();
      heartbeat.start();
      void Promise.all([informers.waitForSync(), namespaces.waitForSync()]).then(() => {
        const s = informers.state();
        log.info(
          { nodes: s.nodes.length, services: s.services.length, endpointSlices: s.endpointSlices.length, ms: Date.now() - t0 },
          `informers synced in ${Date.now() - t0} ms: ${s.nodes.length} nodes, ${s.services.length} services, ${s.endpointSlices.length} endpointslices`,
        );
        controller.markDirty("synced");
      });
    },
    synced: () => syncedPromise,
    async stopWriting() {
      heartbeat.stop();
      controller.stop();
      if (inflight.size > 0) {
        log.info({ pushes: inflight.size }, "shutting down: waiting for the push in flight");
        await Promise.allSettled([...inflight]);
      }
    },
    async stop() {
      await this.stopWriting();
      health.stop();
      gatewayStatus.stop();
      await Promise.all([informers.stop(), namespaces.stop(), gateway.stop()]);
      log.info("stopped");
    },
  };
  return agent;
}

export async function startAgent(config: AgentConfig, deps: AgentDeps = {}): Promise<Agent> {
  const agent = createAgent(config, deps);
  await agent.start();
  return agent;
}
