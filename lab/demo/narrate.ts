// What the simulated cluster's controllers just did, in one line each, for
// the demo's terminal: the course's steps (scale, rollout restart) explained
// next to the agent's and worker's own lines. Pure: an event in, a line out.
import type { Obj } from "../cluster/api/selectors.ts";

export interface Change {
  kind: string;
  type: "ADDED" | "MODIFIED" | "DELETED";
  object: Obj;
  previous?: Obj | undefined;
}

const ready = (p: Obj | undefined) => (p?.status?.conditions ?? []).some((c: Obj) => c.type === "Ready" && c.status === "True");
const id = (o: Obj) => `${o.metadata.namespace}/${o.metadata.name}`;

export function narrate(c: Change): string | undefined {
  const o = c.object;
  if (c.kind === "Pod") {
    if (o.metadata.labels?.["edgelb.sim/service"]) return undefined; // placed by the pods annotation: said elsewhere
    if (c.type === "DELETED") return `pod ${id(o)} exited and is gone`;
    if (o.metadata.deletionTimestamp && !c.previous?.metadata.deletionTimestamp) {
      return `pod ${id(o)} on ${o.spec?.nodeName} terminating: its endpoint is serving but not ready, it drains, then exits`;
    }
    if (ready(o) && !ready(c.previous)) return `pod ${id(o)} on ${o.spec?.nodeName} is ready: its endpoint is ready`;
    return undefined;
  }
  if (c.kind === "Deployment" && c.type === "MODIFIED") {
    const s = o.status ?? {};
    const p = c.previous?.status ?? {};
    const want = o.spec?.replicas ?? 0;
    const line = (x: Obj) => `${x.availableReplicas ?? 0}/${o.spec?.replicas ?? 0} available, ${x.updatedReplicas ?? 0} updated`;
    if (want !== (c.previous?.spec?.replicas ?? want)) return `deployment ${id(o)} scaled to ${want}`;
    const progress = (x: Obj) => (x.conditions ?? []).find((k: Obj) => k.type === "Progressing")?.reason;
    if (progress(s) === "NewReplicaSetAvailable" && progress(p) !== "NewReplicaSetAvailable") return `deployment ${id(o)} rolled out: ${line(s)}`;
    if (o.spec?.template?.metadata?.annotations?.["kubectl.kubernetes.io/restartedAt"] !== c.previous?.spec?.template?.metadata?.annotations?.["kubectl.kubernetes.io/restartedAt"]) {
      return `deployment ${id(o)} restarted: a new ReplicaSet replaces its pods within maxSurge/maxUnavailable`;
    }
    if (line(s) !== line(p) && progress(s) !== "NewReplicaSetAvailable") return `deployment ${id(o)} rolling: ${line(s)}`;
  }
  return undefined;
}
