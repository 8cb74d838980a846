// apps/v1 Deployments and ReplicaSets: upstream's defaults (SetDefaults_*),
// the validation users meet first (selector must match the template, and is
// immutable), and the columns `kubectl get deploy,rs` print.
import { metadataCauses } from "./resources.ts";
import type { Obj } from "./selectors.ts";
import { cause, type StatusCause } from "./status.ts";
import type { TablePrinter } from "./table.ts";
import { ageOf, columnOf } from "./table.ts";

/** A lab limit, not upstream's: keeps one `kubectl scale --replicas=1000000` from taking the lab down. */
export const MAX_SIMULATED_REPLICAS = 500;

type AdmitArgs = { op: "create" | "update"; obj: Obj; old?: Obj | undefined };

/** Defaults a pod template's spec the way the API server does on write. */
export function defaultPodSpec(spec: Obj): void {
  spec.restartPolicy ??= "Always";
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= "ClusterFirst";
  spec.securityContext ??= {};
  spec.schedulerName ??= "default-scheduler";
  for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? [])] as Obj[]) {
    if (!c || typeof c !== "object") continue;
    c.terminationMessagePath ??= "/dev/termination-log";
    c.terminationMessagePolicy ??= "File";
    const tag = typeof c.image === "string" ? /:([^/:@]+)$/.exec(c.image)?.[1] : undefined;
    c.imagePullPolicy ??= !tag || tag === "latest" ? "Always" : "IfNotPresent";
    c.resources ??= {};
    for (const p of c.ports ?? []) if (p && typeof p === "object") p.protocol ??= "TCP";
  }
}

function podTemplateCauses(obj: Obj, prefix: string): StatusCause[] {
  const out: StatusCause[] = [];
  const containers = obj.spec?.template?.spec?.containers;
  if (!Array.isArray(containers) || containers.length === 0) {
    out.push(cause(`${prefix}.template.spec.containers`, "FieldValueRequired", "Required value"));
  } else {
    containers.forEach((c: Obj, i: number) => {
      if (!c?.name) out.push(cause(`${prefix}.template.spec.containers[${i}].name`, "FieldValueRequired", "Required value"));
      if (!c?.image) out.push(cause(`${prefix}.template.spec.containers[${i}].image`, "FieldValueRequired", "Required value"));
    });
  }
  return out;
}

/** Whether a label selector (matchLabels + matchExpressions) selects these labels. */
export function selectorMatches(selector: Obj | undefined, labels: Record<string, string> = {}): boolean {
  if (!selector) return false;
  const ml = Object.entries<string>(selector.matchLabels ?? {});
  const me: Obj[] = selector.matchExpressions ?? [];
  if (ml.length === 0 && me.length === 0) return false;
  if (!ml.every(([k, v]) => labels[k] === v)) return false;
  return me.every((e) => {
    const has = e.key in labels;
    switch (e.operator) {
      case "In":
        return has && (e.values ?? []).includes(labels[e.key]);
      case "NotIn":
        return !has || !(e.values ?? []).includes(labels[e.key]);
      case "Exists":
        return has;
      case "DoesNotExist":
        return !has;
      default:
        return false;
    }
  });
}

/** "app=web,tier in (a,b)": the selector as `kubectl` and the Scale status print it. */
export function selectorString(selector: Obj | undefined): string {
  const parts = Object.entries<string>(selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of (selector?.matchExpressions ?? []) as Obj[]) {
    if (e.operator === "Exists") parts.push(e.key);
    else if (e.operator === "DoesNotExist") parts.push(`!${e.key}`);
    else parts.push(`${e.key} ${e.operator === "In" ? "in" : "notin"} (${(e.values ?? []).join(",")})`);
  }
  return parts.join(",");
}

function selectorCauses({ op, obj, old }: AdmitArgs): StatusCause[] {
  const out: StatusCause[] = [];
  const sel = obj.spec?.selector;
  if (!sel || (Object.keys(sel.matchLabels ?? {}).length === 0 && (sel.matchExpressions ?? []).length === 0)) {
    out.push(cause("spec.selector", "FieldValueRequired", "Required value"));
  } else if (!selectorMatches(sel, obj.spec?.template?.metadata?.labels ?? {})) {
    out.push(cause("spec.template.metadata.labels", "FieldValueInvalid", `Invalid value: ${JSON.stringify(obj.spec?.template?.metadata?.labels ?? {})}: \`selector\` does not match template \`labels\``));
  }
  if (op === "update" && old && JSON.stringify(old.spec?.selector) !== JSON.stringify(sel)) {
    out.push(cause("spec.selector", "FieldValueInvalid", `Invalid value: ${JSON.stringify(sel)}: field is immutable`));
  }
  const r = obj.spec?.replicas;
  if (!Number.isInteger(r) || r < 0) out.push(cause("spec.replicas", "FieldValueInvalid", `Invalid value: ${JSON.stringify(r)}: must be greater than or equal to 0`));
  // Not upstream: every simulated pod is objects and timers in this one process.
  else if (r > MAX_SIMULATED_REPLICAS) out.push(cause("spec.replicas", "FieldValueInvalid", `Invalid value: ${r}: the simulated cluster runs at most ${MAX_SIMULATED_REPLICAS} replicas per workload`));
  return out;
}

const INT_OR_PERCENT = /^(\d+)%$/;

export function admitDeployment(args: AdmitArgs): StatusCause[] {
  const { obj, op } = args;
  obj.spec ??= {};
  const s = obj.spec;
  s.replicas ??= 1;
  s.strategy ??= {};
  s.strategy.type ??= "RollingUpdate";
  if (s.strategy.type === "RollingUpdate") {
    s.strategy.rollingUpdate ??= {};
    s.strategy.rollingUpdate.maxUnavailable ??= "25%";
    s.strategy.rollingUpdate.maxSurge ??= "25%";
  }
  s.revisionHistoryLimit ??= 10;
  s.progressDeadlineSeconds ??= 600;
  s.template ??= {};
  s.template.spec ??= {};
  defaultPodSpec(s.template.spec);
  if (op === "create") obj.status = {};
  const out = [...metadataCauses(obj, "subdomain"), ...selectorCauses(args), ...podTemplateCauses(obj, "spec")];
  if (!["RollingUpdate", "Recreate"].includes(s.strategy.type)) {
    out.push(cause("spec.strategy.type", "FieldValueNotSupported", `Unsupported value: "${s.strategy.type}": supported values: "Recreate", "RollingUpdate"`));
  }
  const ru = s.strategy.rollingUpdate;
  if (s.strategy.type === "Recreate" && ru) out.push(cause("spec.strategy.rollingUpdate", "FieldValueForbidden", "Forbidden: may not be specified when strategy `type` is 'Recreate'"));
  if (s.strategy.type === "RollingUpdate" && ru) {
    for (const f of ["maxUnavailable", "maxSurge"]) {
      const v = ru[f];
      const ok = (Number.isInteger(v) && v >= 0) || (typeof v === "string" && INT_OR_PERCENT.test(v) && Number(INT_OR_PERCENT.exec(v)![1]) <= (f === "maxUnavailable" ? 100 : Infinity));
      if (!ok) out.push(cause(`spec.strategy.rollingUpdate.${f}`, "FieldValueInvalid", `Invalid value: ${JSON.stringify(v)}: must be a non-negative integer or a percentage`));
    }
    if (resolveIntOrPercent(ru.maxUnavailable, 100, false) === 0 && resolveIntOrPercent(ru.maxSurge, 100, true) === 0) {
      out.push(cause("spec.strategy.rollingUpdate.maxUnavailable", "FieldValueInvalid", "Invalid value: 0: may not be 0 when `maxSurge` is 0"));
    }
  }
  return out;
}

export function admitReplicaSet(args: AdmitArgs): StatusCause[] {
  const { obj, op } = args;
  obj.spec ??= {};
  obj.spec.replicas ??= 1;
  if (obj.spec.template?.spec) defaultPodSpec(obj.spec.template.spec);
  if (op === "create") obj.status = { replicas: 0 };
  return [...metadataCauses(obj, "subdomain"), ...selectorCauses(args), ...podTemplateCauses(obj, "spec")];
}

/** An int-or-percent of `total`: surge rounds up, unavailability down (as upstream). */
export function resolveIntOrPercent(v: unknown, total: number, roundUp: boolean): number {
  if (typeof v === "number") return v;
  const m = typeof v === "string" ? INT_OR_PERCENT.exec(v) : null;
  if (!m) return 0;
  const x = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(x) : Math.floor(x);
}

const images = (o: Obj) => ((o.spec?.template?.spec?.containers ?? []) as Obj[]).map((c) => c.image).join(",");
const containerNames = (o: Obj) => ((o.spec?.template?.spec?.containers ?? []) as Obj[]).map((c) => c.name).join(",");

export const deploymentPrinter: TablePrinter = {
  columns: [
    columnOf("Name", "Name must be unique within a namespace."),
    columnOf("Ready", "Number of the pod with ready state"),
    columnOf("Up-to-date", "Total number of non-terminated pods targeted by this deployment that have the desired template spec.", 0, "integer"),
    columnOf("Available", "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.", 0, "integer"),
    columnOf("Age", "CreationTimestamp is a timestamp representing the server time when this object was created."),
    columnOf("Containers", "Names of each container in the template.", 1),
    columnOf("Images", "Images referenced by each container in the template.", 1),
    columnOf("Selector", "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.", 1),
  ],
  cells: (d, now) => [
    d.metadata?.name,
    `${d.status?.readyReplicas ?? 0}/${d.spec?.replicas ?? 0}`,
    d.status?.updatedReplicas ?? 0,
    d.status?.availableReplicas ?? 0,
    ageOf(d, now),
    containerNames(d),
    images(d),
    selectorString(d.spec?.selector),
  ],
};

export const replicaSetPrinter: TablePrinter = {
  columns: [
    columnOf("Name", "Name must be unique within a namespace."),
    columnOf("Desired", "Replicas is the number of desired replicas.", 0, "integer"),
    columnOf("Current", "Replicas is the most recently observed number of replicas.", 0, "integer"),
    columnOf("Ready", "The number of ready replicas for this replica set.", 0, "integer"),
    columnOf("Age", "CreationTimestamp is a timestamp representing the server time when this object was created."),
    columnOf("Containers", "Names of each container in the template.", 1),
    columnOf("Images", "Images referenced by each container in the template.", 1),
    columnOf("Selector", "Selector is a label query over pods that should match the replica count.", 1),
  ],
  cells: (r, now) => [
    r.metadata?.name,
    r.spec?.replicas ?? 0,
    r.status?.replicas ?? 0,
    r.status?.readyReplicas ?? 0,
    ageOf(r, now),
    containerNames(r),
    images(r),
    selectorString(r.spec?.selector),
  ],
};
