// The decisions of the simulated control plane's controllers, as pure
// functions of what the store holds: the Deployment controller (ReplicaSets,
// rolling update within maxSurge/maxUnavailable), the ReplicaSet controller
// with a spreading scheduler (Pods), and the EndpointSlice controller.
// index.ts applies them; nothing here does I/O.
import { createHash } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import { resolveIntOrPercent, selectorMatches } from "../api/apps.ts";
import type { Obj } from "../api/selectors.ts";

export const HASH_LABEL = "pod-template-hash";
export const REVISION = "deployment.kubernetes.io/revision";
export const MANAGED_BY = "endpointslice.kubernetes.io/managed-by";
export const CONTROLLER = "endpointslice-controller.k8s.io";
/** Marks the slices this controller writes (placePods writes its own). */
export const SIM_SLICE = "sim.edgelb.dev/endpoint-controller";
/** On the slice that stands for the stand-in app (standIn clusters): lab/cluster/workloads. */
export const STAND_IN_SLICE = "sim.edgelb.dev/stand-in";

const SAFE = "bcdfghjklmnpqrstvwxz2456789";

/** pod-template-hash: a short, stable name for a template (upstream: fnv32a, safe-encoded). */
export function templateHash(template: Obj, collisionCount = 0): string {
  const h = createHash("sha256").update(JSON.stringify(canonical(template))).update(String(collisionCount)).digest();
  return [...h.subarray(0, 10)].map((b) => SAFE[b % SAFE.length]).join("");
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === "object") return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Obj)[k])]));
  return v;
}

export const ownedBy = (o: Obj, owner: Obj) => (o.metadata?.ownerReferences ?? []).some((r: Obj) => r.controller && r.uid === owner.metadata.uid);
export const isTerminating = (p: Obj) => Boolean(p.metadata?.deletionTimestamp);
export const isPodReady = (p: Obj) => (p.status?.conditions ?? []).some((c: Obj) => c.type === "Ready" && c.status === "True");

function withoutHash(template: Obj): Obj {
  const t = structuredClone(template ?? {});
  if (t.metadata?.labels) delete t.metadata.labels[HASH_LABEL];
  if (t.metadata?.creationTimestamp === null) delete t.metadata.creationTimestamp;
  return t;
}

/** The ReplicaSet whose template is the Deployment's (labels aside from the hash). */
export function findNewReplicaSet(d: Obj, sets: Obj[]): Obj | undefined {
  const want = withoutHash(d.spec.template);
  return sets.filter((rs) => isDeepStrictEqual(canonical(withoutHash(rs.spec.template)), canonical(want))).sort(byCreation)[0];
}

const byCreation = (a: Obj, b: Obj) =>
  (a.metadata.creationTimestamp ?? "").localeCompare(b.metadata.creationTimestamp ?? "") || a.metadata.name.localeCompare(b.metadata.name);

const revisionOf = (rs: Obj) => Number(rs.metadata?.annotations?.[REVISION] ?? 0) || 0;

export function newReplicaSetFor(d: Obj, sets: Obj[], replicas: number): Obj {
  const hash = templateHash(d.spec.template, d.status?.collisionCount ?? 0);
  const template = structuredClone(d.spec.template);
  template.metadata ??= {};
  template.metadata.labels = { ...template.metadata.labels, [HASH_LABEL]: hash };
  const revision = Math.max(0, ...sets.map(revisionOf)) + 1;
  return {
    apiVersion: "apps/v1",
    kind: "ReplicaSet",
    metadata: {
      name: `${d.metadata.name}-${hash}`,
      namespace: d.metadata.namespace,
      labels: { ...template.metadata.labels },
      annotations: {
        "deployment.kubernetes.io/desired-replicas": String(d.spec.replicas),
        "deployment.kubernetes.io/max-replicas": String(d.spec.replicas + maxSurgeOf(d)),
        [REVISION]: String(revision),
      },
      ownerReferences: [{ apiVersion: "apps/v1", kind: "Deployment", name: d.metadata.name, uid: d.metadata.uid, controller: true, blockOwnerDeletion: true }],
    },
    spec: {
      replicas,
      selector: { ...d.spec.selector, matchLabels: { ...d.spec.selector?.matchLabels, [HASH_LABEL]: hash } },
      template,
      ...(d.spec.minReadySeconds ? { minReadySeconds: d.spec.minReadySeconds } : {}),
    },
  };
}

function maxSurgeOf(d: Obj): number {
  const ru = d.spec.strategy?.rollingUpdate;
  return d.spec.strategy?.type === "RollingUpdate" ? resolveIntOrPercent(ru?.maxSurge, d.spec.replicas, true) : 0;
}
function maxUnavailableOf(d: Obj): number {
  const ru = d.spec.strategy?.rollingUpdate;
  if (d.spec.strategy?.type !== "RollingUpdate") return 0;
  const surge = maxSurgeOf(d);
  const unavailable = Math.min(resolveIntOrPercent(ru?.maxUnavailable, d.spec.replicas, false), d.spec.replicas);
  return surge === 0 && unavailable === 0 ? 1 : unavailable;
}

export interface DeploymentPlan {
  /** A ReplicaSet to create (the new template's), with its first replica count. */
  create?: Obj;
  /** spec.replicas to set on existing ReplicaSets, by name. */
  scale: Map<string, number>;
  /** The new ReplicaSet's revision annotation, when an old template came back (rollback). */
  revision?: { name: string; value: string };
  /** Old ReplicaSets past revisionHistoryLimit, scaled to 0 and without pods. */
  remove: string[];
  status: Obj;
}

const sum = (xs: Obj[], f: (o: Obj) => number) => xs.reduce((n, o) => n + (f(o) || 0), 0);
const specReplicas = (rs: Obj) => rs.spec?.replicas ?? 0;

/**
 * One step of the Deployment controller (upstream's rolling and recreate
 * strategies, simplified): decide ReplicaSet sizes from what is available
 * now; the next step runs when pods change.
 */
export function planDeployment(d: Obj, sets: Obj[], pods: Obj[], now: string): DeploymentPlan {
  const replicas: number = d.spec.replicas ?? 1;
  const plan: DeploymentPlan = { scale: new Map(), remove: [], status: {} };
  const existingNew = findNewReplicaSet(d, sets);
  const olds = sets.filter((rs) => rs !== existingNew).sort(byCreation);
  const setScale = (rs: Obj, n: number) => {
    if (specReplicas(rs) !== n) plan.scale.set(rs.metadata.name, n);
  };
  const sized = (rs: Obj) => plan.scale.get(rs.metadata.name) ?? specReplicas(rs);
  const available = (rs: Obj) => rs.status?.availableReplicas ?? 0;
  const paused = Boolean(d.spec.paused);

  let newRs = existingNew;
  if (!newRs && !paused) {
    const recreate = d.spec.strategy?.type === "Recreate";
    let first = replicas;
    if (!recreate && olds.some((rs) => specReplicas(rs) > 0)) {
      first = Math.max(0, Math.min(replicas, replicas + maxSurgeOf(d) - sum(olds, specReplicas)));
    }
    if (recreate && olds.some((rs) => specReplicas(rs) > 0 || pods.some((p) => ownedBy(p, rs)))) first = 0;
    plan.create = newReplicaSetFor(d, sets, first);
    newRs = plan.create;
  } else if (newRs && olds.length && revisionOf(newRs) < Math.max(...olds.map(revisionOf))) {
    plan.revision = { name: newRs.metadata.name, value: String(Math.max(...sets.map(revisionOf)) + 1) };
  }

  if (newRs && !paused) {
    const oldTotal = sum(olds, specReplicas);
    if (oldTotal === 0 && !plan.create) {
      // Nothing to roll: scaling is immediate.
      setScale(newRs, replicas);
    } else if (d.spec.strategy?.type === "Recreate") {
      for (const rs of olds) setScale(rs, 0);
      const oldPods = pods.filter((p) => olds.some((rs) => ownedBy(p, rs)));
      if (oldPods.length === 0 && !plan.create) setScale(newRs, replicas);
    } else if (!plan.create) {
      const surge = maxSurgeOf(d);
      const maxUnavailable = maxUnavailableOf(d);
      // Scale the new ReplicaSet up within maxSurge.
      const cur = specReplicas(newRs);
      if (cur > replicas) setScale(newRs, replicas);
      else if (cur < replicas) {
        const total = cur + oldTotal;
        const up = Math.min(replicas + surge - total, replicas - cur);
        if (up > 0) setScale(newRs, cur + up);
      }
      // Scale old ones down within maxUnavailable: never below replicas - maxUnavailable available.
      const all = [newRs, ...olds];
      const minAvailable = replicas - maxUnavailable;
      const newUnavailable = sized(newRs) - available(newRs);
      let budget = sum(all, sized) - minAvailable - Math.max(0, newUnavailable);
      // First the old replicas that are not available anyway (they cost nothing).
      for (const rs of olds) {
        if (budget <= 0) break;
        const unhealthy = Math.min(sized(rs) - available(rs), budget);
        if (unhealthy > 0) {
          plan.scale.set(rs.metadata.name, sized(rs) - unhealthy);
          budget -= unhealthy;
        }
      }
      let down = Math.min(budget, sum(all, available) - minAvailable);
      for (const rs of olds) {
        if (down <= 0) break;
        const n = Math.min(sized(rs), down);
        if (n > 0) {
          plan.scale.set(rs.metadata.name, sized(rs) - n);
          down -= n;
        }
      }
      for (const rs of olds) if (plan.scale.get(rs.metadata.name) === specReplicas(rs)) plan.scale.delete(rs.metadata.name);
    }
  }

  // History: old ReplicaSets at 0 with no pods, beyond revisionHistoryLimit, oldest first.
  const limit = d.spec.revisionHistoryLimit ?? 10;
  const idle = olds.filter((rs) => sized(rs) === 0 && !pods.some((p) => ownedBy(p, rs))).sort((a, b) => revisionOf(a) - revisionOf(b));
  plan.remove = idle.slice(0, Math.max(0, idle.length - limit)).map((rs) => rs.metadata.name);

  // Status, from the ReplicaSets' own status.
  const current = sets;
  const statusReplicas = sum(current, (rs) => rs.status?.replicas ?? 0);
  const updated = existingNew?.status?.replicas ?? 0;
  const ready = sum(current, (rs) => rs.status?.readyReplicas ?? 0);
  const avail = sum(current, available);
  const complete = existingNew !== undefined && updated === replicas && avail >= replicas && statusReplicas === replicas && sum(olds, specReplicas) === 0;
  const minOk = avail >= replicas - maxUnavailableOf(d);
  const prev: Obj[] = d.status?.conditions ?? [];
  const condition = (type: string, status: boolean, reason: string, message: string): Obj => {
    const old = prev.find((c) => c.type === type);
    const s = status ? "True" : "False";
    const same = old && old.status === s;
    return {
      type,
      status: s,
      lastUpdateTime: same && old.reason === reason ? old.lastUpdateTime : now,
      lastTransitionTime: same ? old.lastTransitionTime : now,
      reason,
      message,
    };
  };
  const rsName = newRs?.metadata.name ?? "";
  plan.status = {
    observedGeneration: d.metadata.generation,
    replicas: statusReplicas,
    updatedReplicas: updated,
    readyReplicas: ready,
    availableReplicas: avail,
    ...(replicas - avail > 0 ? { unavailableReplicas: replicas - avail } : {}),
    conditions: [
      condition("Available", minOk, minOk ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable", minOk ? "Deployment has minimum availability." : "Deployment does not have minimum availability."),
      complete
        ? condition("Progressing", true, "NewReplicaSetAvailable", `ReplicaSet "${rsName}" has successfully progressed.`)
        : plan.create
          ? condition("Progressing", true, "NewReplicaSetCreated", `Created new replica set "${rsName}"`)
          : condition("Progressing", true, "ReplicaSetUpdated", `ReplicaSet "${rsName}" is progressing.`),
    ],
    ...(d.status?.collisionCount ? { collisionCount: d.status.collisionCount } : {}),
  };
  for (const k of ["readyReplicas", "availableReplicas", "updatedReplicas", "replicas"]) if (plan.status[k] === 0) delete plan.status[k];
  return plan;
}

export interface SchedNode {
  name: string;
  schedulable: boolean;
}

export interface ReplicaSetPlan {
  /** Nodes to place one new pod each on ("" when no node is schedulable: Pending). */
  create: string[];
  /** Pods to delete (gracefully). */
  delete: string[];
  status: Obj;
}

/**
 * The ReplicaSet controller with the scheduler's spreading folded in: new
 * pods go to the schedulable node with the fewest pods of the same app
 * (pods matching the Deployment's selector), then the fewest pods at all.
 */
export function planReplicaSet(rs: Obj, owned: Obj[], allPods: Obj[], nodes: SchedNode[]): ReplicaSetPlan {
  const active = owned.filter((p) => !isTerminating(p) && p.status?.phase !== "Succeeded" && p.status?.phase !== "Failed");
  const want: number = rs.spec?.replicas ?? 0;
  const plan: ReplicaSetPlan = { create: [], delete: [], status: {} };
  const appSelector = { ...rs.spec.selector, matchLabels: { ...rs.spec.selector?.matchLabels } };
  delete appSelector.matchLabels[HASH_LABEL];
  const live = allPods.filter((p) => !isTerminating(p) && p.spec?.nodeName);
  const perNode = (name: string, of: Obj[]) => of.filter((p) => p.spec.nodeName === name).length;
  if (active.length < want) {
    const app = live.filter((p) => selectorMatches(appSelector, p.metadata?.labels));
    const candidates = nodes.filter((n) => n.schedulable);
    for (let i = active.length; i < want; i++) {
      const pick = [...candidates].sort((a, b) => perNode(a.name, app) - perNode(b.name, app) || perNode(a.name, live) - perNode(b.name, live) || a.name.localeCompare(b.name))[0];
      plan.create.push(pick?.name ?? "");
      if (pick) {
        const placeholder = { metadata: { labels: rs.spec.template?.metadata?.labels ?? {} }, spec: { nodeName: pick.name } };
        app.push(placeholder);
        live.push(placeholder);
      }
    }
  } else if (active.length > want) {
    // Upstream's ranking: unscheduled, then not ready, then crowded nodes, then newest.
    const ranked = [...active].sort(
      (a, b) =>
        Number(Boolean(a.spec?.nodeName)) - Number(Boolean(b.spec?.nodeName)) ||
        Number(isPodReady(a)) - Number(isPodReady(b)) ||
        perNode(b.spec?.nodeName, active) - perNode(a.spec?.nodeName, active) ||
        (b.metadata.creationTimestamp ?? "").localeCompare(a.metadata.creationTimestamp ?? "") ||
        b.metadata.name.localeCompare(a.metadata.name),
    );
    plan.delete = ranked.slice(0, active.length - want).map((p) => p.metadata.name);
  }
  const ready = active.filter(isPodReady).length;
  plan.status = {
    replicas: active.length,
    fullyLabeledReplicas: active.length,
    ...(ready ? { readyReplicas: ready, availableReplicas: ready } : {}),
    observedGeneration: rs.metadata.generation,
  };
  if (!plan.status.fullyLabeledReplicas) delete plan.status.fullyLabeledReplicas;
  return plan;
}

/** A Service's port on a pod: a number, or a named container port. */
function targetPortOf(svcPort: Obj, pod: Obj): number | undefined {
  const t = svcPort.targetPort ?? svcPort.port;
  if (typeof t === "number") return t;
  for (const c of pod.spec?.containers ?? []) for (const p of c.ports ?? []) if (p.name === t) return p.containerPort;
  return undefined;
}

/**
 * The EndpointSlice the controller keeps for a Service with a selector: one
 * endpoint per pod with an IP; ready = pod Ready and not terminating, serving
 * = pod Ready, terminating = being deleted (KEP-1669).
 */
export function endpointSliceFor(svc: Obj, pods: Obj[], name: string): Obj {
  const selected = pods
    .filter((p) => p.status?.podIP && p.status?.phase !== "Succeeded" && p.status?.phase !== "Failed")
    .filter((p) => Object.entries<string>(svc.spec.selector).every(([k, v]) => p.metadata?.labels?.[k] === v))
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const publish = Boolean(svc.spec.publishNotReadyAddresses);
  const first = selected[0];
  const ports = (svc.spec.ports ?? []).map((p: Obj) => ({ name: p.name ?? "", port: (first && targetPortOf(p, first)) ?? (typeof p.targetPort === "number" ? p.targetPort : p.port), protocol: p.protocol ?? "TCP" }));
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name,
      namespace: svc.metadata.namespace,
      labels: { "kubernetes.io/service-name": svc.metadata.name, [MANAGED_BY]: CONTROLLER, [SIM_SLICE]: "true" },
      ownerReferences: [{ apiVersion: "v1", kind: "Service", name: svc.metadata.name, uid: svc.metadata.uid, controller: true, blockOwnerDeletion: true }],
    },
    addressType: "IPv4",
    endpoints: selected.map((p) => {
      const terminating = isTerminating(p);
      const serving = isPodReady(p);
      return {
        addresses: [p.status.podIP],
        conditions: { ready: publish || (serving && !terminating), serving: publish || serving, terminating },
        nodeName: p.spec.nodeName,
        targetRef: { kind: "Pod", namespace: p.metadata.namespace, name: p.metadata.name, uid: p.metadata.uid },
      };
    }),
    ports,
  };
}

/** v1 Endpoints from the slice (what `kubectl describe svc` shows). */
export function endpointsFor(svc: Obj, slice: Obj): Obj {
  const addr = (e: Obj) => ({ ip: e.addresses[0], nodeName: e.nodeName, targetRef: e.targetRef });
  const live = (slice.endpoints as Obj[]).filter((e) => !e.conditions.terminating);
  const ready = live.filter((e) => e.conditions.ready).map(addr);
  const notReady = live.filter((e) => !e.conditions.ready).map(addr);
  return {
    metadata: { name: svc.metadata.name, namespace: svc.metadata.namespace, labels: { ...svc.metadata.labels } },
    subsets: ready.length || notReady.length ? [{ ...(ready.length ? { addresses: ready } : {}), ...(notReady.length ? { notReadyAddresses: notReady } : {}), ports: slice.ports }] : [],
  };
}

/**
 * The slice of a Cluster Service the stand-in app answers for: one ready
 * endpoint with no pod and no node (every node answers; nothing to weight).
 */
export function standInSliceFor(svc: Obj): Obj {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name: `${svc.metadata.name}-stand-in`,
      namespace: svc.metadata.namespace,
      labels: { "kubernetes.io/service-name": svc.metadata.name, [MANAGED_BY]: "sim.edgelb.dev", [STAND_IN_SLICE]: "true" },
      ownerReferences: [{ apiVersion: "v1", kind: "Service", name: svc.metadata.name, uid: svc.metadata.uid, controller: true, blockOwnerDeletion: true }],
    },
    addressType: "IPv4",
    endpoints: [{ addresses: ["10.244.255.254"], conditions: { ready: true, serving: true, terminating: false } }],
    ports: (svc.spec?.ports ?? []).map((p: Obj) => ({ name: p.name ?? "", port: typeof p.targetPort === "number" ? p.targetPort : p.port, protocol: p.protocol ?? "TCP" })),
  };
}
