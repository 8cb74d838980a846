// Demo-only knobs, turned with kubectl so one tool does everything:
//
//   kubectl annotate node node-3 sim.edgelb.dev/fault=down     # the node stops answering
//   kubectl annotate node node-3 sim.edgelb.dev/fault-         # …and comes back
//   kubectl annotate service api sim.edgelb.dev/pods=node-1,node-3 --overwrite
//
// A real cluster needs neither: nodes fail by themselves and a Deployment
// places pods. The simulated cluster runs Deployments too; the pods
// annotation stays for Services no Deployment backs (it is refused, with a
// warning, on one that a Deployment does: scale the Deployment instead). Level-triggered like the rest: every change
// re-reads all Nodes and Services and applies what differs.
import { ENDPOINT_SLICES, NODES, SERVICES } from "../cluster/api/resources.ts";
import { SIM_SLICE } from "../cluster/workloads/plan.ts";
import type { Obj } from "../cluster/api/selectors.ts";
import type { SimCluster } from "../cluster/cluster.ts";
import type { NodeBehavior } from "../cluster/sim-node.ts";
import type { DemoGates } from "./gates.ts";

export const FAULT_ANNOTATION = "sim.edgelb.dev/fault";
export const PODS_ANNOTATION = "sim.edgelb.dev/pods";

export const FAULTS = {
  none: "answers normally",
  down: "refuses connections, and kube-proxy's /healthz fails",
  unhealthy: "kube-proxy's /healthz answers 503; the app still answers",
  error: "the app answers every request with 503",
  slow: "the app answers after 3 seconds",
} as const;
export type Fault = keyof typeof FAULTS;

export type FaultParse = { ok: true; fault: Fault } | { ok: false; error: string };

/** The annotation's value → a fault; absent means none. */
export function parseFault(value: string | undefined): FaultParse {
  const v = (value ?? "none").trim().toLowerCase();
  if (v === "" || v === "ok" || v === "up") return { ok: true, fault: "none" };
  if (v in FAULTS) return { ok: true, fault: v as Fault };
  return { ok: false, error: `unknown ${FAULT_ANNOTATION} "${value}": use one of ${Object.keys(FAULTS).join(", ")}` };
}

export type PodsParse = { ok: true; nodes: string[] } | { ok: false; error: string };

/** "node-1,node-1,node-3" → one pod per entry; "" or "none" → no pods. */
export function parsePods(value: string, knownNodes: string[]): PodsParse {
  const v = value.trim();
  if (v === "" || v.toLowerCase() === "none") return { ok: true, nodes: [] };
  const nodes = v.split(",").map((s) => s.trim());
  const unknown = nodes.filter((n) => !knownNodes.includes(n));
  if (unknown.length) {
    return { ok: false, error: `${PODS_ANNOTATION} "${value}" names unknown node(s) ${unknown.join(", ")}; nodes are ${knownNodes.join(", ")}` };
  }
  return { ok: true, nodes };
}

function behaviorOf(fault: Fault): { behavior: NodeBehavior; healthy: boolean } {
  switch (fault) {
    case "down":
      return { behavior: { mode: "refuse" }, healthy: false };
    case "unhealthy":
      return { behavior: { mode: "ok" }, healthy: false };
    case "error":
      return { behavior: { mode: "error", status: 503 }, healthy: true };
    case "slow":
      return { behavior: { mode: "slow", delayMs: 3_000 }, healthy: true };
    default:
      return { behavior: { mode: "ok" }, healthy: true };
  }
}

export interface KnobEvents {
  info(text: string): void;
  warn(text: string): void;
}

export interface Knobs {
  /** Resolves when every annotation seen so far has been applied. */
  settled(): Promise<void>;
  /** Stops watching; waits for work in progress. */
  stop(): Promise<void>;
}

/**
 * Applies the annotations to the simulated nodes and Services. With `gates`
 * (`npm start -- --gate`), a node that is down takes its gate down too, as a
 * dead machine would, and comes back with it.
 */
export function watchKnobs(cluster: SimCluster, events: KnobEvents, gates?: Pick<DemoGates, "setNodeDown">): Knobs {
  const faults = new Map<string, string>(); // node -> fault applied (or the bad value last warned about)
  const pods = new Map<string, string>(); // namespace/name -> annotation value applied (or warned about)
  let running: Promise<void> = Promise.resolve();
  let dirty = false;
  let busy = false;
  let stopped = false;

  const reconcile = async () => {
    for (const node of cluster.nodes) {
      const obj = cluster.store.tryGet(NODES, "", node.name);
      const raw = obj?.metadata?.annotations?.[FAULT_ANNOTATION] as string | undefined;
      const key = raw ?? "none";
      if (faults.get(node.name) === key) continue;
      faults.set(node.name, key);
      const parsed = parseFault(raw);
      if (!parsed.ok) {
        events.warn(`node ${node.name}: ${parsed.error}; keeping its current behaviour`);
        continue;
      }
      const { behavior, healthy } = behaviorOf(parsed.fault);
      await node.setBehavior(behavior);
      node.setHealthy(healthy);
      await gates?.setNodeDown(node.name, parsed.fault === "down");
      const gate = gates ? (parsed.fault === "down" ? ", and so does its node gate" : "") : "";
      events.info(`simulated node ${node.name} (${node.address}) now ${parsed.fault === "none" ? "answers normally" : `is "${parsed.fault}": ${FAULTS[parsed.fault]}${gate}`}`);
    }
    const names = cluster.nodes.map((n) => n.name);
    for (const svc of cluster.store.list(SERVICES).items as Obj[]) {
      const raw = svc.metadata?.annotations?.[PODS_ANNOTATION] as string | undefined;
      const id = `${svc.metadata.namespace}/${svc.metadata.name}`;
      if (raw === undefined || pods.get(id) === raw) continue;
      pods.set(id, raw);
      const backed = cluster.store
        .list(ENDPOINT_SLICES, svc.metadata.namespace)
        .items.some((sl) => sl.metadata.labels?.[SIM_SLICE] && sl.metadata.labels?.["kubernetes.io/service-name"] === svc.metadata.name && (sl.endpoints ?? []).length > 0);
      if (backed) {
        events.warn(`service ${id}: ${PODS_ANNOTATION} ignored: a Deployment's pods back this Service (kubectl scale deployment … instead)`);
        continue;
      }
      const parsed = parsePods(raw, names);
      if (!parsed.ok) {
        events.warn(`service ${id}: ${parsed.error}; keeping its pods where they are`);
        continue;
      }
      await cluster.placePods({ namespace: svc.metadata.namespace, name: svc.metadata.name }, parsed.nodes);
      events.info(
        parsed.nodes.length
          ? `service ${id} now has ${parsed.nodes.length} ready pod(s): ${parsed.nodes.join(", ")}`
          : `service ${id} now has no pods`,
      );
    }
  };

  const kick = () => {
    dirty = true;
    if (busy || stopped) return;
    busy = true;
    running = (async () => {
      try {
        while (dirty && !stopped) {
          dirty = false;
          await reconcile().catch((err: Error) => events.warn(`simulator: ${err.message}`));
        }
      } finally {
        busy = false;
      }
    })();
  };

  const unsubscribe = cluster.store.subscribe((e) => {
    if (e.resource === NODES || e.resource === SERVICES) kick();
  });
  kick();
  return {
    async settled() {
      while (busy || dirty) await running;
    },
    async stop() {
      stopped = true;
      unsubscribe();
      await running;
    },
  };
}
