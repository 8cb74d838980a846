// Wires the citizen modules into a created (not yet started) Agent through
// the controller's extension points: the write gate, hooks, resume().
import type { Agent } from "../agent.ts";
import { SinkError } from "../sinks/types.ts";
import type { Snapshot } from "../../worker/snapshot/schema.ts";
import type { Desired, Topology } from "../model/desired.ts";
import type { V1Service } from "@kubernetes/client-node";
import { Citizen, type CitizenOptions, type CitizenConfig } from "./index.ts";
import { registerReconcileMetrics } from "../controller/metrics.ts";
import { registerUnroutableNodes } from "../status/address-metric.ts";
import { registerFailOpen } from "../status/fail-open-metric.ts";

export type AttachOverrides = Partial<Pick<CitizenOptions, "leaseStore" | "eventSink" | "statusClient" | "correlator" | "metrics">>;

export interface AttachedCitizen {
  citizen: Citizen;
  /** Metrics server and the campaign for the lease; call before agent.start(). */
  start(): Promise<void>;
  /** Call on shutdown before agent.stop(): stops writing, releases the lease. */
  stop(): Promise<void>;
}

export function attachCitizen(agent: Agent, config: CitizenConfig, overrides: AttachOverrides = {}): AttachedCitizen {
  const { controller, log } = agent;
  // "the edge has what we want" since, and "a change is waiting" since.
  let pendingSince: number | null = null;
  const citizen = new Citizen({
    kubeConfig: agent.kubeConfig,
    config,
    logger: log,
    informersSynced: () => agent.informers.synced,
    pendingSince: () => pendingSince,
    ...overrides,
  });
  const { metrics } = citizen;
  metrics.observeInformerRestarts(() => agent.informers.restarts());
  registerReconcileMetrics(metrics.registry, { evaluations: () => controller.evaluations, updates: () => agent.informers.updates() });

  controller.shouldWrite = () => citizen.isLeader();
  // Gateway API statuses follow the same rule as Service status: --write-status and leading.
  agent.writeGatewayStatus = () => config.writeStatus && citizen.isLeader();
  // A push started while leading must be over before a standby could take the
  // lease (lastRenew + leaseDuration): otherwise a slow push from a partitioned
  // leader could land after the new leader's and, with the KV sink, which has
  // no generation check, roll the edge back. So every write carries a signal
  // that aborts at that deadline.
  const write = agent.sink.write.bind(agent.sink);
  agent.sink.write = (snapshot, signal) => {
    const left = citizen.writeTimeLeftMs();
    if (left === null) return Promise.reject(new SinkError("not leading any more: push dropped", "retryable"));
    if (!Number.isFinite(left)) return write(snapshot, signal);
    const bound = AbortSignal.timeout(Math.max(1, Math.floor(left)));
    return write(snapshot, signal ? AbortSignal.any([signal, bound]) : bound);
  };
  citizen.on("leadership", (leading) => {
    if (leading) {
      log.info({ identity: citizen.identity }, "leading: reading the stored snapshot and continuing from its generation");
      // Re-read what is stored (another replica may have pushed since) and reconcile.
      void controller.resume().catch((err: Error) => log.error({ err: err.message }, `resume failed: ${err.message}`));
    } else {
      if (citizen.stopping) log.info({ identity: citizen.identity }, "shutting down: no more pushes, Service status or Events from this replica");
      else log.warn({ identity: citizen.identity }, "not leading: pushes, Service status and Events stop until the lease is ours again");
    }
  });

  let latest: { topology: Topology; desired: Desired; services: readonly V1Service[] } | null = null;
  registerUnroutableNodes(metrics.registry, () => latest?.topology.nodes);
  registerFailOpen(metrics.registry, () => latest?.desired);
  // Until the stored snapshot has been read, what the edge serves is unknown
  // (null); afterwards "nothing stored" is an empty edge. Also from taking the
  // lease until the re-read: a standby's copy is as old as its start, and status
  // planned from it would clear the EXTERNAL-IP of Services pushed since.
  const EMPTY_EDGE = { nodes: [], services: [] };
  let pushError: string | null = null;
  const reconcileStatus = () => {
    if (!latest) return;
    const { topology, desired, services } = latest;
    void citizen
      .afterSync({
        services,
        verdicts: topology.verdicts,
        published: controller.storedKnown ? (controller.lastPushed ?? EMPTY_EDGE) : null,
        failOpen: desired.failOpen,
        failOpenServices: desired.failOpenServices,
        pushError,
      })
      .catch((err: Error) => log.error({ err: err.message }, `service status reconcile failed: ${err.message}`));
  };

  controller.addHooks({
    onEvaluated(e) {
      latest = e;
      const eligible = e.desired.body.nodes;
      metrics.setNodes({
        healthy: eligible.filter((n) => n.healthy).length,
        unhealthy: eligible.filter((n) => !n.healthy).length,
        excluded: [...e.topology.nodeVerdicts.values()].filter((v) => !v.eligible).length,
      });
      let skipped = 0;
      for (const v of e.topology.verdicts.values()) if (v.kind === "skipped") skipped++;
      metrics.setServices({ served: e.topology.served.length, skipped });
      const upToDate = controller.lastPushedKey === e.key;
      if (upToDate) {
        pendingSince = null;
        citizen.edgeConfirmed();
      } else pendingSince ??= Date.now();
      citizen.checkPushLag(pushError);
      reconcileStatus();
    },
    onPushed(snapshot: Snapshot, _diff, info) {
      pushError = null;
      pendingSince = null;
      if (!info.dryRun) {
        metrics.push(info.unchanged ? "unchanged" : "success", info.ms / 1000, snapshot.generation);
        if (!info.unchanged) metrics.kvWrite(agent.config.sink);
      }
      citizen.edgeConfirmed();
      citizen.checkPushLag(null);
      reconcileStatus();
    },
    onPushFailed(err) {
      pushError = err.message;
      metrics.push(err instanceof SinkError && err.kind !== "retryable" ? "rejected" : "error", undefined);
      citizen.checkPushLag(pushError);
      reconcileStatus();
    },
  });

  return { citizen, start: () => citizen.start(), stop: () => citizen.stop() };
}

/** The citizen modules as an agent plugin (see main.ts): started before the agent, stopped before it. */
export function citizenPlugin(config: CitizenConfig, overrides: AttachOverrides = {}): (agent: Agent) => Promise<() => Promise<void>> {
  return async (agent) => {
    const attached = attachCitizen(agent, config, overrides);
    await attached.start();
    return attached.stop;
  };
}
