// The simulated cluster's control plane and kubelets, level-triggered from
// the store: the Deployment, ReplicaSet and EndpointSlice controllers
// (decisions in plan.ts), the garbage collector for what they own, and a
// kubelet per node that starts pods (Running, Ready after a start-up delay)
// and stops them (a terminating pod keeps serving while it drains, then
// exits and is removed). Pods run the echo app the simulated nodes serve
// (sim-node.ts); what each pod served is its log (`kubectl logs`).
import { randomBytes } from "node:crypto";
import { ENDPOINT_SLICES, ENDPOINTS, DEPLOYMENTS, NODES, PODS, REPLICA_SETS, SERVICES } from "../api/resources.ts";
import type { Obj } from "../api/selectors.ts";
import type { Store } from "../api/store.ts";
import { selectorMatches } from "../api/apps.ts";
import {
  endpointSliceFor,
  endpointsFor,
  isPodReady,
  isTerminating,
  ownedBy,
  planDeployment,
  planReplicaSet,
  SIM_SLICE,
  STAND_IN_SLICE,
  standInSliceFor,
  type SchedNode,
} from "./plan.ts";

export interface WorkloadOptions {
  /** How long a new pod takes to become Ready (default 500 ms). */
  podStartupMs?: number;
  /** How long a terminating pod keeps serving before it exits, capped by its grace period (default 2 s). */
  podDrainMs?: number;
  /** Pod IP allocation (the cluster's). */
  allocateIp: () => string;
  /** Address of a node by name (status.hostIP). */
  hostIp: (node: string) => string | undefined;
  /** Lines kept per pod log. */
  logLines?: number;
  /**
   * Services with a selector that no workload ever matched keep the stand-in
   * app (every node answers for them), for suites that test the agent and need
   * Services, not pods. Default false: such a Service gets an empty
   * EndpointSlice and its NodePort refuses, as kube-proxy does.
   */
  standIn?: boolean;
}

const stamp = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");
/** The demo's pods knob (lab/demo/knobs.ts): a Service carrying it is answered by the stand-in app. */
const PODS_KNOB = "sim.edgelb.dev/pods";
const key = (o: Obj) => `${o.metadata.namespace}/${o.metadata.name}`;

/** The echo app's version: the image's tag (edgelb/echo:2 → "2"), or "latest". */
export function versionOf(pod: Obj): string {
  const image: string = pod.spec?.containers?.[0]?.image ?? "";
  const tag = /:([^/:@]+)$/.exec(image)?.[1];
  const env = (pod.spec?.containers?.[0]?.env ?? []).find((e: Obj) => e.name === "VERSION")?.value;
  return env ?? tag ?? "latest";
}

export class Workloads {
  private dirty = false;
  private busy = false;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly timers = new Map<string, NodeJS.Timeout>(); // pod uid + phase
  private readonly logs = new Map<string, string[]>(); // namespace/name -> lines
  private readonly unsubscribe: () => void;
  private readonly failures: string[] = [];

  constructor(
    private readonly store: Store,
    private readonly opts: WorkloadOptions,
  ) {
    this.unsubscribe = store.subscribe((e) => {
      if ([DEPLOYMENTS, REPLICA_SETS, PODS, SERVICES, NODES].includes(e.resource)) this.kick();
      // A slice written by hand (or by placePods) takes over from the stand-in's.
      else if (opts.standIn && e.resource === ENDPOINT_SLICES && !e.object.metadata?.labels?.[STAND_IN_SLICE]) this.kick();
      if (e.resource === PODS && e.type === "DELETED") this.forget(e.object);
    });
    this.kick();
  }

  /** A pod's log as `kubectl logs` prints it. */
  podLog(namespace: string, name: string, tailLines?: number): string | undefined {
    const lines = this.logs.get(`${namespace}/${name}`);
    if (!lines) return undefined;
    const shown = tailLines === undefined ? lines : lines.slice(-tailLines);
    return shown.map((l) => `${l}\n`).join("");
  }

  /** Appends a line to a pod's log. */
  log(namespace: string, pod: string, line: string): void {
    const k = `${namespace}/${pod}`;
    const lines = this.logs.get(k);
    if (!lines) return;
    lines.push(`${new Date().toISOString()} ${line}`);
    const max = this.opts.logLines ?? 1000;
    if (lines.length > max) lines.splice(0, lines.length - max);
  }

  /** Resolves when every change seen so far has been acted on (timers aside). */
  async settled(): Promise<void> {
    while (this.busy || this.dirty) {
      if (!this.busy) this.kick();
      await this.running;
    }
    if (this.failures.length) throw new Error(`simulated controllers failed: ${this.failures.splice(0).join("; ")}`);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe();
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await this.running.catch(() => {});
  }

  private kick(): void {
    this.dirty = true;
    if (this.busy || this.stopped) return;
    this.busy = true;
    this.running = (async () => {
      try {
        // Out of the store's listener: controllers write, and each write is an event.
        await new Promise((r) => setImmediate(r));
        while (this.dirty && !this.stopped) {
          this.dirty = false;
          try {
            this.reconcile();
          } catch (err) {
            this.failures.push(String((err as Error).stack ?? err));
          }
        }
      } finally {
        this.busy = false;
      }
    })();
  }

  private forget(pod: Obj): void {
    this.logs.delete(key(pod));
    for (const phase of ["ready", "exit"]) {
      const k = `${pod.metadata.uid}/${phase}`;
      clearTimeout(this.timers.get(k));
      this.timers.delete(k);
    }
  }

  private after(pod: Obj, phase: string, ms: number, fn: () => void): void {
    const k = `${pod.metadata.uid}/${phase}`;
    if (this.timers.has(k) || this.stopped) return;
    this.timers.set(
      k,
      setTimeout(() => {
        this.timers.delete(k);
        if (this.stopped) return;
        try {
          fn();
        } catch {
          // the pod went meanwhile: nothing to do
        }
      }, ms),
    );
  }

  private reconcile(): void {
    const s = this.store;
    const now = stamp();
    const deployments = s.list(DEPLOYMENTS).items;
    let sets = s.list(REPLICA_SETS).items;
    let pods = s.list(PODS).items;
    this.standInSlices();
    if (this.opts.standIn && deployments.length === 0 && sets.length === 0 && pods.length === 0 && !s.list(ENDPOINT_SLICES).items.some((x) => x.metadata.labels?.[SIM_SLICE])) return;
    const nodeObjs = s.list(NODES).items;
    const nodes: SchedNode[] = nodeObjs.map((n) => ({
      name: n.metadata.name,
      schedulable: !n.spec?.unschedulable && !n.metadata.deletionTimestamp && (n.status?.conditions ?? []).some((c: Obj) => c.type === "Ready" && c.status === "True"),
    }));

    // Pod GC: pods bound to a node that no longer exists are gone with it (their ReplicaSet replaces them).
    const known = new Set(nodeObjs.map((n) => n.metadata.name));
    for (const p of pods) {
      if (p.spec?.nodeName && !known.has(p.spec.nodeName) && !p.metadata.labels?.["edgelb.sim/service"]) {
        s.delete(PODS, p.metadata.namespace, p.metadata.name, { gracePeriodSeconds: 0 });
      }
    }
    pods = s.list(PODS).items;
    // Garbage collection (background propagation): owned objects whose controller is gone.
    const uids = new Set([...deployments, ...sets].map((o) => o.metadata.uid));
    for (const rs of sets) {
      const owner = (rs.metadata.ownerReferences ?? []).find((r: Obj) => r.controller && r.kind === "Deployment");
      if (owner && !uids.has(owner.uid)) s.delete(REPLICA_SETS, rs.metadata.namespace, rs.metadata.name);
    }
    for (const p of pods) {
      const owner = (p.metadata.ownerReferences ?? []).find((r: Obj) => r.controller && r.kind === "ReplicaSet");
      if (owner && !uids.has(owner.uid) && !isTerminating(p)) s.delete(PODS, p.metadata.namespace, p.metadata.name);
    }
    sets = s.list(REPLICA_SETS).items;

    // Deployments → ReplicaSets.
    for (const d of deployments) {
      const own = sets.filter((rs) => rs.metadata.namespace === d.metadata.namespace && ownedBy(rs, d));
      const ownPods = pods.filter((p) => own.some((rs) => ownedBy(p, rs)));
      const plan = planDeployment(d, own, ownPods, now);
      const ns = d.metadata.namespace;
      if (plan.create) {
        if (s.tryGet(REPLICA_SETS, ns, plan.create.metadata.name)) {
          // A ReplicaSet of that name with another template: upstream bumps collisionCount.
          s.mutate(DEPLOYMENTS, ns, d.metadata.name, (o) => (o.status = { ...o.status, collisionCount: (o.status?.collisionCount ?? 0) + 1 }), { subresource: "status" });
          continue;
        }
        s.create(REPLICA_SETS, ns, plan.create);
      }
      for (const [name, replicas] of plan.scale) s.mutate(REPLICA_SETS, ns, name, (o) => (o.spec.replicas = replicas));
      if (plan.revision) {
        const { name, value } = plan.revision;
        s.mutate(REPLICA_SETS, ns, name, (o) => (o.metadata.annotations = { ...o.metadata.annotations, "deployment.kubernetes.io/revision": value }));
      }
      for (const name of plan.remove) s.delete(REPLICA_SETS, ns, name);
      const newest = own.map((rs) => Number(rs.metadata.annotations?.["deployment.kubernetes.io/revision"] ?? 0));
      const revision = String(Math.max(0, ...newest, plan.create ? Number(plan.create.metadata.annotations["deployment.kubernetes.io/revision"]) : 0));
      if (JSON.stringify(d.status ?? {}) !== JSON.stringify(plan.status) || d.metadata.annotations?.["deployment.kubernetes.io/revision"] !== revision) {
        if (d.metadata.annotations?.["deployment.kubernetes.io/revision"] !== revision && revision !== "0") {
          s.mutate(DEPLOYMENTS, ns, d.metadata.name, (o) => (o.metadata.annotations = { ...o.metadata.annotations, "deployment.kubernetes.io/revision": revision }));
        }
        s.mutate(DEPLOYMENTS, ns, d.metadata.name, (o) => (o.status = plan.status), { subresource: "status" });
      }
    }
    sets = s.list(REPLICA_SETS).items;

    // ReplicaSets → Pods (scheduled at creation).
    for (const rs of sets) {
      const ns = rs.metadata.namespace;
      const owned = pods.filter((p) => p.metadata.namespace === ns && ownedBy(p, rs));
      const plan = planReplicaSet(rs, owned, pods, nodes);
      for (const node of plan.create) {
        const t = rs.spec.template ?? {};
        const pod = s.create(PODS, ns, {
          metadata: {
            name: `${rs.metadata.name}-${randomBytes(4).toString("hex").slice(0, 5)}`,
            labels: { ...t.metadata?.labels },
            ...(t.metadata?.annotations ? { annotations: { ...t.metadata.annotations } } : {}),
            ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: rs.metadata.name, uid: rs.metadata.uid, controller: true, blockOwnerDeletion: true }],
          },
          spec: { ...structuredClone(t.spec), ...(node ? { nodeName: node } : {}) },
        });
        pods.push(pod);
      }
      for (const name of plan.delete) s.delete(PODS, ns, name);
      const status = { ...plan.status };
      if (JSON.stringify(rs.status ?? {}) !== JSON.stringify(status)) {
        s.mutate(REPLICA_SETS, ns, rs.metadata.name, (o) => (o.status = status), { subresource: "status" });
      }
    }
    pods = s.list(PODS).items;

    // Kubelets.
    for (const p of pods) this.kubelet(p);
    pods = s.list(PODS).items;

    // EndpointSlices for Services whose selector a workload's pods match.
    this.endpoints(pods, deployments, sets);
  }

  private kubelet(p: Obj): void {
    const s = this.store;
    const ns = p.metadata.namespace;
    const name = p.metadata.name;
    if (!p.spec?.nodeName) return; // unscheduled: Pending
    if (isTerminating(p)) {
      const grace = (p.metadata.deletionGracePeriodSeconds ?? 30) * 1000;
      const drain = Math.min(grace, this.opts.podDrainMs ?? 2_000);
      if (!this.timers.has(`${p.metadata.uid}/exit`)) this.log(ns, name, `SIGTERM: draining for ${(drain / 1000).toFixed(1)} s, still serving in-flight and new requests`);
      this.after(p, "exit", drain, () => {
        this.log(ns, name, "exiting");
        s.delete(PODS, ns, name, { gracePeriodSeconds: 0 });
      });
      return;
    }
    if (p.metadata.labels?.["edgelb.sim/service"]) return; // placed by placePods: already running
    if (p.status?.phase === "Running") {
      if (!isPodReady(p)) {
        this.after(p, "ready", this.opts.podStartupMs ?? 500, () => {
          s.mutate(PODS, ns, name, (o) => setReady(o, true, stamp()), { subresource: "status" });
          this.log(ns, name, "ready");
        });
      }
      return;
    }
    const ip = this.opts.allocateIp();
    const at = stamp();
    const c = p.spec.containers?.[0] ?? {};
    this.logs.set(key(p), []);
    this.log(ns, name, `echo ${versionOf(p)} (image ${c.image}) started on ${p.spec.nodeName}, pod IP ${ip}; serving every port`);
    s.mutate(
      PODS,
      ns,
      name,
      (o) => {
        o.status = {
          phase: "Running",
          hostIP: this.opts.hostIp(p.spec.nodeName),
          podIP: ip,
          podIPs: [{ ip }],
          startTime: at,
          qosClass: "BestEffort",
          conditions: [],
          containerStatuses: (p.spec.containers ?? []).map((x: Obj) => ({ name: x.name, image: x.image, imageID: "", ready: false, started: true, restartCount: 0, state: { running: { startedAt: at } } })),
        };
        setReady(o, false, at);
      },
      { subresource: "status" },
    );
  }

  /**
   * standIn: the stand-in app answers on every node for a Cluster Service that
   * no workload, placed pod or hand-written slice backs. Its EndpointSlice says
   * so (one ready endpoint), as a real cluster's would, so an agent that reads
   * endpoints sees a Service that serves. Local Services get none: their nodes
   * come from pods (placePods).
   */
  private standInSlices(): void {
    if (!this.opts.standIn) return;
    const s = this.store;
    const standIns = new Map<string, Obj>();
    const backed = new Set<string>();
    for (const sl of s.list(ENDPOINT_SLICES).items) {
      const id = `${sl.metadata.namespace}/${sl.metadata.labels?.["kubernetes.io/service-name"]}`;
      if (sl.metadata.labels?.[STAND_IN_SLICE]) standIns.set(id, sl);
      else backed.add(id);
    }
    const pods = s.list(PODS).items;
    const placed = new Set(pods.filter((p) => p.metadata.labels?.["edgelb.sim/service"]).map((p) => `${p.metadata.namespace}/${p.metadata.labels["edgelb.sim/service"]}`));
    for (const svc of s.list(SERVICES).items) {
      const id = key(svc);
      const have = standIns.get(id);
      standIns.delete(id);
      const want =
        Object.keys(svc.spec?.selector ?? {}).length > 0 &&
        (svc.spec?.externalTrafficPolicy ?? "Cluster") !== "Local" &&
        !backed.has(id) &&
        !placed.has(id) &&
        svc.metadata.annotations?.[PODS_KNOB] === undefined;
      if (want && !have) s.create(ENDPOINT_SLICES, svc.metadata.namespace, standInSliceFor(svc));
      else if (!want && have) s.delete(ENDPOINT_SLICES, have.metadata.namespace, have.metadata.name);
    }
    for (const gone of standIns.values()) s.delete(ENDPOINT_SLICES, gone.metadata.namespace, gone.metadata.name);
  }

  private endpoints(pods: Obj[], deployments: Obj[], sets: Obj[]): void {
    const s = this.store;
    // Indexed: suites with thousands of Services and no workload pay one pass, not a product.
    const ours = new Map<string, Obj>();
    for (const sl of s.list(ENDPOINT_SLICES).items) {
      if (sl.metadata.labels?.[SIM_SLICE]) ours.set(`${sl.metadata.namespace}/${sl.metadata.labels["kubernetes.io/service-name"]}`, sl);
    }
    const workloadPods = pods.filter((p) => !p.metadata.labels?.["edgelb.sim/service"]);
    // Services whose pods placePods (or the demo's sim.edgelb.dev/pods knob) placed: the stand-in answers for them.
    const placed = new Set(pods.filter((p) => p.metadata.labels?.["edgelb.sim/service"]).map((p) => `${p.metadata.namespace}/${p.metadata.labels["edgelb.sim/service"]}`));
    const templates = [...deployments, ...sets].map((w) => ({ ns: w.metadata.namespace, labels: w.spec?.template?.metadata?.labels ?? {} }));
    const services = s.list(SERVICES).items;
    if (this.opts.standIn && ours.size === 0 && templates.length === 0 && workloadPods.length === 0) return;
    for (const svc of services) {
      const sel = svc.spec?.selector;
      if (!sel || Object.keys(sel).length === 0) continue; // no selector: endpoints are managed by hand
      const ns = svc.metadata.namespace;
      const mine = ours.get(`${ns}/${svc.metadata.name}`);
      const asSelector = { matchLabels: sel };
      const workload =
        templates.some((t) => t.ns === ns && selectorMatches(asSelector, t.labels)) ||
        workloadPods.some((p) => p.metadata.namespace === ns && selectorMatches(asSelector, p.metadata.labels));
      // No workload backs it and it opted in to the stand-in app (the pods
      // knob, pods from placePods, or a standIn cluster): no slice of ours.
      const optedIn = svc.metadata.annotations?.[PODS_KNOB] !== undefined || placed.has(`${ns}/${svc.metadata.name}`) || (this.opts.standIn && !mine);
      if (!workload && optedIn) {
        if (mine) {
          s.delete(ENDPOINT_SLICES, ns, mine.metadata.name);
          ours.delete(`${ns}/${svc.metadata.name}`);
        }
        continue;
      }
      // Every other Service with a selector gets a slice, empty when no pod
      // matches, so its NodePort refuses like kube-proxy's REJECT rule.
      const name = mine?.metadata.name ?? `${svc.metadata.name}-${randomBytes(3).toString("hex").slice(0, 5)}`;
      const want = endpointSliceFor(svc, workloadPods.filter((p) => p.metadata.namespace === ns), name);
      if (!mine) s.create(ENDPOINT_SLICES, ns, want);
      else if (JSON.stringify([mine.endpoints ?? [], mine.ports]) !== JSON.stringify([want.endpoints, want.ports])) {
        s.update(ENDPOINT_SLICES, ns, name, { ...want, metadata: { ...want.metadata, resourceVersion: mine.metadata.resourceVersion } });
      }
      const ep = endpointsFor(svc, want);
      const cur = s.tryGet(ENDPOINTS, ns, svc.metadata.name);
      if (!cur || JSON.stringify(cur.subsets ?? []) !== JSON.stringify(ep.subsets)) s.update(ENDPOINTS, ns, svc.metadata.name, ep);
    }
    // A deleted Service's slice goes with it (owner reference).
    const uids = new Set(services.map((x) => x.metadata.uid));
    for (const sl of ours.values()) {
      const owner = (sl.metadata.ownerReferences ?? [])[0];
      if (owner && !uids.has(owner.uid)) s.delete(ENDPOINT_SLICES, sl.metadata.namespace, sl.metadata.name);
    }
  }
}

function setReady(pod: Obj, ready: boolean, at: string): void {
  const cond = (type: string, status: boolean) => ({ type, status: status ? "True" : "False", lastProbeTime: null, lastTransitionTime: at });
  pod.status.conditions = [cond("PodReadyToStartContainers", true), cond("Initialized", true), cond("Ready", ready), cond("ContainersReady", ready), cond("PodScheduled", true)];
  for (const c of pod.status.containerStatuses ?? []) c.ready = ready;
}
